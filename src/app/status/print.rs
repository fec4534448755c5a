//! `edgeup status` for people: one line per check, then the verdict. With
//! several sites the host's checks come once, above the sites' blocks.

use super::SiteStatus;
use super::checks::{Check, Level};
use crate::report::Verbosity;
use crate::report::plain::color_enabled;
use std::io::IsTerminal;

fn paint(text: &str, code: &str) -> String {
    if color_enabled(std::io::stdout().is_terminal()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn lines(checks: &[Check], verbosity: Verbosity) {
    for check in checks {
        let word = match check.level {
            Level::Ok => paint("ok  ", "32"),
            Level::Warn => paint("warn", "33"),
            Level::Fail => paint("FAIL", "31;1"),
        };
        if verbosity == Verbosity::Quiet && check.level == Level::Ok {
            continue;
        }
        crate::outln!("  {word}  {:<12} {}", check.name, check.message);
    }
}

/// The host's block (several sites: shown once).
pub fn host(checks: &[Check], verbosity: Verbosity) {
    if verbosity != Verbosity::Quiet {
        crate::outln!("edgeup status: this host");
    }
    lines(checks, verbosity);
}

/// One site's block; `host_shown`: the host's checks were printed above.
pub fn human(report: &SiteStatus, verbosity: Verbosity, host_shown: bool) {
    if verbosity != Verbosity::Quiet {
        crate::outln!("edgeup status: {}", report.domain);
    }
    let skip = if host_shown { report.host_checks } else { 0 };
    lines(report.checks.get(skip..).unwrap_or_default(), verbosity);
    if verbosity == Verbosity::Verbose {
        if let Some(cert) = &report.certificate {
            crate::outln!(
                "  certificate: {} ({}), names {}, issuer {}",
                cert.path,
                cert.source,
                cert.info.names.join(", "),
                cert.info.issuer
            );
        }
        for probe in [&report.https, &report.websocket] {
            crate::outln!(
                "  probe {} via {}: {}",
                probe.url,
                probe.via,
                probe
                    .status_line
                    .as_deref()
                    .or(probe.error.as_deref())
                    .unwrap_or("no answer")
            );
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.level == Level::Fail)
        .count();
    if report.healthy {
        crate::outln!("{}", paint("healthy", "32;1"));
    } else {
        crate::outln!(
            "{} ({failed} check{} failed)",
            paint("NOT healthy", "31;1"),
            if failed == 1 { "" } else { "s" }
        );
    }
}

/// The line after every site's block: how many sites, which are not healthy.
pub fn summary(sites: usize, unhealthy: &[String]) {
    if unhealthy.is_empty() {
        crate::outln!("{sites} sites, all healthy");
    } else {
        crate::outln!(
            "{sites} sites, {} NOT healthy: {}",
            unhealthy.len(),
            unhealthy.join(", ")
        );
    }
}
