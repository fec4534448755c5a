//! Fleet output: each host's step events as they stream in (prefixed with
//! the host), then one recap line per host and the totals.

use super::host::HostOutcome;
use serde_json::Value;

/// `text` safe for the operator's terminal: control characters (escape
/// sequences, carriage returns, bells) from a remote host are shown as
/// `\u{..}`, never interpreted; newlines stay.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A streamed remote event as a human line (None: not worth a line); every
/// part that came from the host is made `printable`.
pub fn event_line(host: &str, event: &Value) -> Option<String> {
    event_text(host, event).map(|line| printable(&line))
}

fn event_text(host: &str, event: &Value) -> Option<String> {
    match event["event"].as_str()? {
        "step" => {
            let status = event["status"].as_str().unwrap_or("?");
            if status == "skipped" {
                return None;
            }
            let label = if event["handler"] == true {
                format!("handler: {}", event["name"].as_str().unwrap_or(""))
            } else {
                format!(
                    "[{}/{}] {}",
                    event["index"],
                    event["total"],
                    event["name"].as_str().unwrap_or("")
                )
            };
            let mut line = format!("{host}: {label} ... {status}");
            if status == "failed"
                && let Some(message) = event["message"].as_str()
            {
                line.push_str(&format!(
                    "\n{host}:     {}",
                    message.replace('\n', &format!("\n{host}:     "))
                ));
            }
            Some(line)
        }
        "warning" => Some(format!(
            "{host}: warning: {}",
            event["message"].as_str().unwrap_or("")
        )),
        "error" => Some(format!(
            "{host}: error: {}",
            event["message"].as_str().unwrap_or("")
        )),
        "output" => Some(format!("{host}: {}", event["line"].as_str().unwrap_or(""))),
        _ => None,
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Totals {
    pub ok: u64,
    pub changed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub unreachable: usize,
    pub hosts_failed: usize,
}

/// The host did not converge: a step failed there, its edgeup did not end
/// well, or it could not be run at all.
pub fn failed(o: &HostOutcome) -> bool {
    match &o.result {
        Ok(done) => done.recap["failed"].as_u64().unwrap_or(0) > 0 || !matches!(done.exit, 0 | 3),
        Err(_) => true,
    }
}

pub fn totals(outcomes: &[HostOutcome]) -> Totals {
    let mut t = Totals::default();
    for o in outcomes {
        match &o.result {
            Ok(done) => {
                // The host's own figures: a lying one cannot overflow the sums.
                let n = |k: &str| done.recap[k].as_u64().unwrap_or(0);
                t.ok = t.ok.saturating_add(n("ok"));
                t.changed = t.changed.saturating_add(n("changed"));
                t.failed = t.failed.saturating_add(n("failed"));
                t.skipped = t.skipped.saturating_add(n("skipped"));
                if failed(o) {
                    t.hosts_failed += 1;
                }
            }
            Err(e) if e.starts_with("unreachable") => t.unreachable += 1,
            Err(_) => t.hosts_failed += 1,
        }
    }
    t
}

/// How one host ended, in one line (names padded to `width`).
pub fn host_line(o: &HostOutcome, width: usize) -> String {
    match &o.result {
        Ok(done) => {
            let n = |k: &str| done.recap[k].as_u64().unwrap_or(0);
            let copied = if done.copied.is_empty() {
                "copied nothing".to_string()
            } else {
                format!("copied {}", done.copied.join(", "))
            };
            // What the host reports about its run, and what we copied.
            format!(
                "{:width$}  ok={} changed={} failed={} skipped={} (as the host reports)  ({copied})",
                o.name,
                n("ok"),
                n("changed"),
                n("failed"),
                n("skipped")
            )
        }
        Err(e) => format!("{:width$}  {}", o.name, printable(e)),
    }
}

/// One line per host, then the totals.
pub fn recap_lines(outcomes: &[HostOutcome]) -> Vec<String> {
    let width = outcomes.iter().map(|o| o.name.len()).max().unwrap_or(0);
    let mut lines: Vec<String> = outcomes.iter().map(|o| host_line(o, width)).collect();
    lines.push(total_line(outcomes));
    lines
}

/// The fleet's totals.
pub fn total_line(outcomes: &[HostOutcome]) -> String {
    let t = totals(outcomes);
    format!(
        "total: {} hosts  ok={} changed={} failed={} skipped={} unreachable={}",
        outcomes.len(),
        t.ok,
        t.changed,
        t.failed,
        t.skipped,
        t.unreachable
    )
}
