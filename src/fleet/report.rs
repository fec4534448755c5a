//! Fleet output: each host's step events as they stream in (prefixed with
//! the host), then one recap line per host and the totals.

use super::host::HostOutcome;
use super::printable;
use crate::report::{Event, FleetRecap, HostRecap, Status};

/// A streamed remote event as a human line (None: not worth a line); every
/// part that came from the host is made `printable`.
pub fn line_for(host: &str, event: &Event) -> Option<String> {
    event_text(host, event).map(|line| printable(&line))
}

fn event_text(host: &str, event: &Event) -> Option<String> {
    match event {
        Event::Step {
            index,
            total,
            name,
            status,
            handler,
            message,
            ..
        } => {
            if *status == Status::Skipped {
                return None;
            }
            let label = if *handler {
                format!("handler: {name}")
            } else {
                format!("[{index}/{total}] {name}")
            };
            let mut line = format!("{host}: {label} ... {}", status.as_str());
            if *status == Status::Failed
                && let Some(message) = message
            {
                line.push_str(&format!(
                    "\n{host}:     {}",
                    message.replace('\n', &format!("\n{host}:     "))
                ));
            }
            Some(line)
        }
        Event::Warning { message } => Some(format!("{host}: warning: {message}")),
        Event::Error { message, .. } => Some(format!("{host}: error: {message}")),
        Event::Output { line } => Some(format!("{host}: {line}")),
        Event::Start { .. }
        | Event::Recap { .. }
        | Event::Uninstall { .. }
        | Event::HostRecap(_)
        | Event::FleetRecap(_) => None,
    }
}

/// A host's recap figures as it claims them (0 for an event that is not a
/// recap: `Finished` holds only recaps).
#[derive(Default)]
struct Figures {
    ok: u64,
    changed: u64,
    failed: u64,
    skipped: u64,
}

fn figures(recap: &Event) -> Figures {
    let n = |count: &usize| u64::try_from(*count).unwrap_or(u64::MAX);
    match recap {
        Event::Recap {
            ok,
            changed,
            failed,
            skipped,
            ..
        } => Figures {
            ok: n(ok),
            changed: n(changed),
            failed: n(failed),
            skipped: n(skipped),
        },
        _ => Figures::default(),
    }
}

/// The host could not be reached (a network failure, not a refusal).
fn unreachable(error: &str) -> bool {
    error.starts_with("unreachable")
}

/// The host did not converge: a step failed there, its edgeup did not end
/// well, or it could not be run at all.
pub fn failed(o: &HostOutcome) -> bool {
    match &o.result {
        Ok(done) => figures(&done.recap).failed > 0 || !matches!(done.exit, 0 | 3),
        Err(_) => true,
    }
}

pub fn totals(outcomes: &[HostOutcome]) -> FleetRecap {
    let mut t = FleetRecap {
        hosts: outcomes.len(),
        ..FleetRecap::default()
    };
    for o in outcomes {
        match &o.result {
            Ok(done) => {
                // The host's own figures: a lying one cannot overflow the sums.
                let f = figures(&done.recap);
                t.ok = t.ok.saturating_add(f.ok);
                t.changed = t.changed.saturating_add(f.changed);
                t.failed = t.failed.saturating_add(f.failed);
                t.skipped = t.skipped.saturating_add(f.skipped);
                if failed(o) {
                    t.hosts_failed += 1;
                }
            }
            Err(e) if unreachable(e) => t.unreachable += 1,
            Err(_) => t.hosts_failed += 1,
        }
    }
    t
}

/// How one host ended, as its `host_recap` line says it.
pub fn host_recap(o: &HostOutcome) -> HostRecap {
    match &o.result {
        Ok(done) => HostRecap::Ran {
            recap: Box::new(done.recap.clone()),
            exit_code: done.exit,
            copied: done.copied.clone(),
        },
        Err(e) => HostRecap::Failed {
            error: e.clone(),
            unreachable: unreachable(e),
        },
    }
}

/// How one host ended, in one line (names padded to `width`).
pub fn host_line(o: &HostOutcome, width: usize) -> String {
    match &o.result {
        Ok(done) => {
            let f = figures(&done.recap);
            let copied = if done.copied.is_empty() {
                "copied nothing".to_string()
            } else {
                format!("copied {}", done.copied.join(", "))
            };
            // What the host reports about its run, and what we copied.
            format!(
                "{:width$}  ok={} changed={} failed={} skipped={} (as the host reports)  ({copied})",
                o.name, f.ok, f.changed, f.failed, f.skipped
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::host::Finished;

    fn ran(name: &str, ok: usize, failed: usize, exit: i32) -> HostOutcome {
        HostOutcome {
            name: name.into(),
            result: Ok(Finished {
                recap: Event::Recap {
                    ok,
                    changed: 0,
                    failed,
                    skipped: 0,
                    failed_sites: vec![],
                    mode: "apply".into(),
                    duration_ms: 1,
                },
                exit,
                copied: vec![],
            }),
        }
    }

    #[test]
    fn totals_come_from_the_typed_recaps_and_saturate() {
        let outcomes = [
            ran("a", usize::MAX, 0, 0),
            ran("b", 3, 1, 1),
            HostOutcome {
                name: "c".into(),
                result: Err("unreachable: ssh: connect".into()),
            },
            HostOutcome {
                name: "d".into(),
                result: Err("the host key changed".into()),
            },
        ];
        let t = totals(&outcomes);
        assert_eq!(
            t,
            FleetRecap {
                hosts: 4,
                ok: u64::MAX,
                changed: 0,
                failed: 1,
                skipped: 0,
                unreachable: 1,
                hosts_failed: 2,
            }
        );
        assert!(matches!(
            host_recap(&outcomes[2]),
            HostRecap::Failed {
                unreachable: true,
                ..
            }
        ));
        assert!(matches!(
            host_recap(&outcomes[3]),
            HostRecap::Failed {
                unreachable: false,
                ..
            }
        ));
    }

    #[test]
    fn a_failed_steps_line_names_the_host_on_every_line_and_escapes_controls() {
        let step = Event::Step {
            index: 2,
            total: 5,
            name: "\u{1b}[2Jname".into(),
            site: None,
            status: Status::Failed,
            handler: false,
            changes: vec![],
            diff: None,
            message: Some("one\ntwo\r".into()),
            duration_ms: 1,
        };
        assert_eq!(
            line_for("web1", &step).as_deref(),
            Some("web1: [2/5] \\u{1b}[2Jname ... failed\nweb1:     one\nweb1:     two\\u{d}")
        );
        let output = Event::Output {
            line: "raw \u{7}".into(),
        };
        assert_eq!(
            line_for("web1", &output).as_deref(),
            Some("web1: raw \\u{7}")
        );
    }
}
