//! Human output: a spinner per step on a terminal (indicatif), plain lines
//! when piped. Colour only on a terminal and never with NO_COLOR set.

use super::{Event, Reporter, Status, Verbosity};
use crate::steps::Diff;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct PlainReporter {
    verbosity: Verbosity,
    show_diffs: bool,
    color: bool,
    spinner: Option<ProgressBar>,
    tty: bool,
}

impl PlainReporter {
    pub fn new(verbosity: Verbosity, show_diffs: bool) -> PlainReporter {
        let tty = std::io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        PlainReporter {
            verbosity,
            show_diffs,
            color,
            spinner: None,
            tty,
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
}

impl Reporter for PlainReporter {
    fn begin(&mut self, index: usize, total: usize, name: &str) {
        if !self.tty || self.verbosity == Verbosity::Quiet {
            return;
        }
        let pb = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            pb.set_style(style);
        }
        pb.set_message(format!("[{index}/{total}] {name}"));
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
                    println!("edgeup {command}: playbook {playbook} on {distro} ({steps} steps)");
                }
            }
            Event::Warning { message } => {
                eprintln!("{} {message}", self.paint("warning:", "33;1"));
            }
            Event::Step {
                index,
                total,
                name,
                status,
                handler,
                changes,
                diff,
                message,
                duration_ms,
            } => {
                let quiet_ok = self.verbosity == Verbosity::Quiet && *status != Status::Failed;
                // Skipped steps (conditions not met) only with -v; the recap counts them.
                let hidden_skip =
                    *status == Status::Skipped && self.verbosity != Verbosity::Verbose;
                if quiet_ok || hidden_skip {
                    return;
                }
                let label = if *handler {
                    format!("handler: {name}")
                } else {
                    format!("[{index}/{total}] {name}")
                };
                println!(
                    "{label} ... {} ({:.1}s)",
                    self.status_word(*status),
                    *duration_ms as f64 / 1000.0
                );
                if *status != Status::Ok || self.verbosity == Verbosity::Verbose {
                    for change in changes {
                        println!("    - {change}");
                    }
                }
                if let Some(message) = message {
                    if *status == Status::Failed {
                        for line in message.lines() {
                            eprintln!("    {line}");
                        }
                    } else if self.verbosity == Verbosity::Verbose || *status == Status::Skipped {
                        println!("    {message}");
                    }
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
                                println!("    {colored}");
                            }
                        }
                        Some(Diff::Secret) => println!("    (content changed: secret, not shown)"),
                        None => {}
                    }
                }
            }
            Event::Recap {
                ok,
                changed,
                failed,
                skipped,
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
                println!(
                    "recap: ok={ok} {changed_word}={changed} failed={failed} skipped={skipped} ({:.1}s)",
                    *duration_ms as f64 / 1000.0
                );
            }
        }
    }
}
