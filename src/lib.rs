//! edgeup: converge a host to "HAProxy in front of a web app, with HTTPS".

/// `println!` that never panics: when the reader of stdout goes away
/// (`edgeup apply | head`), output is dropped but the run goes on to the end,
/// so a closed pipe can never leave a host half-converged.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod acme;
pub mod app;
pub mod assets;
pub mod cli;
pub mod distro;
pub mod dns;
pub mod engine;
pub mod exit;
pub mod facts;
pub mod fleet;
pub mod host;
pub mod ledger;
pub mod notify;
pub mod paths;
pub mod pki;
pub mod playbook;
pub mod random;
pub mod render;
pub mod report;
pub mod run;
pub mod site;
pub mod steps;
pub mod uninstall;
