//! `edgeup status` for people: one line per check, then the verdict.

use super::Report;
use super::checks::Level;
use crate::report::Verbosity;
use crate::report::plain::color_enabled;
use std::io::IsTerminal;

pub fn human(report: &Report, verbosity: Verbosity) {
    let color = color_enabled(std::io::stdout().is_terminal());
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    if verbosity != Verbosity::Quiet {
        crate::outln!("edgeup status: {}", report.domain);
    }
    for check in &report.checks {
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
