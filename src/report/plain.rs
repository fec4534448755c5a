//! Human output: a progress bar per step on a terminal (indicatif: the
//! step's place in the run, its name and its elapsed time), plain lines when
//! piped or with TERM=dumb. Colour only on a terminal and never with
//! NO_COLOR set. The recap ends with the slowest steps (every step with -v).

use super::{Event, Reporter, Status, Verbosity};
use crate::steps::Diff;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether a stream that is (or is not) a terminal may be coloured:
/// never with NO_COLOR set to a non-empty value (no-color.org) or TERM=dumb.
pub fn color_enabled(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && !dumb_terminal()
}

/// TERM=dumb: a terminal that cannot move the cursor (no spinners, no colour).
pub fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// How many of the slowest steps the recap names without -v.
const SLOWEST_SHOWN: usize = 3;
/// Steps faster than this are not worth naming in the recap without -v.
const SLOW_MS: u64 = 500;

pub struct PlainReporter {
    verbosity: Verbosity,
    show_diffs: bool,
    color: bool,
    spinner: Option<ProgressBar>,
    tty: bool,
    /// (label, duration) of every step and handler reported, in order.
    timings: Vec<(String, u64)>,
}

impl PlainReporter {
    pub fn new(verbosity: Verbosity, show_diffs: bool) -> PlainReporter {
        let terminal = std::io::stderr().is_terminal();
        PlainReporter {
            verbosity,
            show_diffs,
            color: color_enabled(terminal),
            spinner: None,
            tty: terminal && !dumb_terminal(),
            timings: Vec::new(),
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn status_word(&self, status: Status) -> String {
        match status {
            Status::Ok => self.paint("ok", "32"),
            Status::Changed => self.paint("changed", "33"),
            Status::Failed => self.paint("FAILED", "31;1"),
            Status::Skipped => self.paint("skipped", "2"),
        }
    }

    fn finish_spinner(&mut self) {
        if let Some(pb) = self.spinner.take() {
            pb.finish_and_clear();
        }
    }

    /// The per-step durations for the recap: every step with -v, else the
    /// slowest few that took noticeable time.
    fn durations_line(&self) -> Option<String> {
        let mut shown: Vec<&(String, u64)> = self.timings.iter().collect();
        if self.verbosity != Verbosity::Verbose {
            shown.sort_by_key(|(_, ms)| std::cmp::Reverse(*ms));
            shown.retain(|(_, ms)| *ms >= SLOW_MS);
            shown.truncate(SLOWEST_SHOWN);
        }
        if shown.is_empty() {
            return None;
        }
        let parts: Vec<String> = shown
            .iter()
            .map(|(label, ms)| format!("{label} {}", seconds(*ms)))
            .collect();
        let title = if self.verbosity == Verbosity::Verbose {
            "durations"
        } else {
            "slowest"
        };
        Some(format!("  {title}: {}", parts.join(", ")))
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The progress line of a running step: `⠋ [=====>    ] 3/12 NAME 4s`.
fn progress_style(color: bool) -> Option<ProgressStyle> {
    let template = if color {
        "{spinner:.cyan} [{bar:20.cyan/blue}] {pos}/{len} {wide_msg} {elapsed:.dim}"
    } else {
        "{spinner} [{bar:20}] {pos}/{len} {wide_msg} {elapsed}"
    };
    ProgressStyle::with_template(template)
        .ok()
        .map(|style| style.progress_chars("=> "))
}

impl Reporter for PlainReporter {
    fn begin(&mut self, index: usize, total: usize, name: &str) {
        if !self.tty || self.verbosity == Verbosity::Quiet {
            return;
        }
        self.finish_spinner();
        let pb = ProgressBar::new(total as u64);
        if let Some(style) = progress_style(self.color) {
            pb.set_style(style);
        }
        pb.set_position(index.saturating_sub(1) as u64);
        pb.set_message(name.to_string());
        pb.enable_steady_tick(Duration::from_millis(100));
        self.spinner = Some(pb);
    }

    fn event(&mut self, event: &Event) {
        self.finish_spinner();
        match event {
            Event::Start {
                command,
                playbook,
                distro,
                steps,
            } => {
                if self.verbosity != Verbosity::Quiet {
                    crate::outln!(
                        "edgeup {command}: playbook {playbook} on {distro} ({steps} steps)"
                    );
                }
            }
            Event::Warning { message } => {
                eprintln!("{} {message}", self.paint("warning:", "33;1"));
            }
            Event::Step {
                index,
                total,
                name,
                site,
                status,
                handler,
                changes,
                diff,
                message,
                duration_ms,
            } => {
                // Every line of a site's step names the site.
                let name = match site {
                    Some(site) => format!("{site}: {name}"),
                    None => name.clone(),
                };
                if *status != Status::Skipped {
                    let short = if *handler {
                        format!("handler {name}")
                    } else {
                        name.clone()
                    };
                    self.timings.push((short, *duration_ms));
                }
                let quiet_ok = self.verbosity == Verbosity::Quiet && *status != Status::Failed;
                // Steps whose condition is not met only with -v (the recap counts
                // them); a step skipped for another reason (no systemd) is shown.
                let hidden_skip = *status == Status::Skipped
                    && self.verbosity != Verbosity::Verbose
                    && message
                        .as_deref()
                        .is_none_or(|m| m.starts_with("condition not met"));
                if quiet_ok || hidden_skip {
                    return;
                }
                let label = if *handler {
                    format!("handler: {name}")
                } else {
                    format!("[{index}/{total}] {name}")
                };
                crate::outln!(
                    "{label} ... {} ({})",
                    self.status_word(*status),
                    seconds(*duration_ms)
                );
                if *status != Status::Ok || self.verbosity == Verbosity::Verbose {
                    for change in changes {
                        crate::outln!("    - {change}");
                    }
                }
                if let Some(message) = message {
                    if *status == Status::Failed {
                        for line in message.lines() {
                            eprintln!("    {line}");
                        }
                    } else if self.verbosity == Verbosity::Verbose || *status == Status::Skipped {
                        crate::outln!("    {message}");
                    }
                }
                if !self.show_diffs
                    && let Some(Diff::Text(text)) = diff
                    && let Some(size) = diff_size(text)
                {
                    crate::outln!("    {size} (--diff shows them)");
                }
                if self.show_diffs {
                    match diff {
                        Some(Diff::Text(text)) => {
                            for line in text.lines() {
                                let colored = match line.chars().next() {
                                    Some('+') if !line.starts_with("+++") => self.paint(line, "32"),
                                    Some('-') if !line.starts_with("---") => self.paint(line, "31"),
                                    _ => line.to_string(),
                                };
                                crate::outln!("    {colored}");
                            }
                        }
                        Some(Diff::Secret) => {
                            crate::outln!("    (content changed: secret, not shown)")
                        }
                        None => {}
                    }
                }
            }
            Event::Recap {
                ok,
                changed,
                failed,
                skipped,
                failed_sites,
                mode,
                duration_ms,
            } => {
                // -q on a run that did nothing prints nothing (timers, cron).
                if self.verbosity == Verbosity::Quiet && *changed == 0 && *failed == 0 {
                    return;
                }
                let changed_word = if mode == "plan" {
                    "to change"
                } else {
                    "changed"
                };
                crate::outln!(
                    "recap: ok={ok} {changed_word}={changed} failed={failed} skipped={skipped} ({})",
                    seconds(*duration_ms)
                );
                if !failed_sites.is_empty() {
                    crate::outln!(
                        "failed sites: {} (the other sites were converged)",
                        failed_sites.join(", ")
                    );
                }
                if let Some(line) = self.durations_line() {
                    crate::outln!("{line}");
                }
            }
            // Printed by their commands (main, uninstall, fleet), not by a run.
            Event::Error { .. }
            | Event::Uninstall { .. }
            | Event::Output { .. }
            | Event::HostRecap(_)
            | Event::FleetRecap(_) => {}
        }
    }
}

/// `+3 -1 lines` of a unified diff (headers not counted); None for no change.
fn diff_size(text: &str) -> Option<String> {
    let count = |sign: char, header: &str| {
        text.lines()
            .filter(|l| l.starts_with(sign) && !l.starts_with(header))
            .count()
    };
    let (added, removed) = (count('+', "+++"), count('-', "---"));
    (added + removed > 0).then(|| format!("+{added} -{removed} lines"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_is_summed_up_in_lines_added_and_removed() {
        let diff = "--- a\n+++ a\n@@ -1,2 +1,3 @@\n keep\n-old\n+new\n+more\n";
        assert_eq!(diff_size(diff).as_deref(), Some("+2 -1 lines"));
        assert_eq!(diff_size("--- a\n+++ a\n"), None);
    }

    fn reporter(verbosity: Verbosity) -> PlainReporter {
        PlainReporter {
            verbosity,
            show_diffs: false,
            color: false,
            spinner: None,
            tty: false,
            timings: vec![
                ("Install haproxy".into(), 12_300),
                ("haproxy.cfg".into(), 40),
                ("CA-issued certificate".into(), 8_100),
                ("Certificate directory".into(), 600),
                ("handler reload haproxy".into(), 900),
            ],
        }
    }

    #[test]
    fn recap_names_the_slowest_steps_and_every_step_with_verbose() {
        assert_eq!(
            reporter(Verbosity::Normal).durations_line().as_deref(),
            Some(
                "  slowest: Install haproxy 12.3s, CA-issued certificate 8.1s, handler reload haproxy 0.9s"
            )
        );
        let verbose = reporter(Verbosity::Verbose)
            .durations_line()
            .unwrap_or_default();
        assert!(verbose.starts_with("  durations: Install haproxy 12.3s, haproxy.cfg 0.0s"));
        assert!(verbose.contains("Certificate directory 0.6s"));
        let mut fast = reporter(Verbosity::Normal);
        fast.timings.retain(|(_, ms)| *ms < SLOW_MS);
        assert_eq!(fast.durations_line(), None, "nothing slow, nothing to name");
    }

    #[test]
    fn no_colour_off_a_terminal() {
        assert!(!color_enabled(false));
        let r = reporter(Verbosity::Normal);
        assert_eq!(r.status_word(Status::Failed), "FAILED");
        assert!(progress_style(false).is_some() && progress_style(true).is_some());
    }
}
