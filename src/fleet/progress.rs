//! `edgeup fleet` on a terminal: one live line (hosts done, running,
//! failed) and one line per host when it finishes, with what failed there;
//! no step lines, which a large fleet would interleave into a wall. Off a
//! terminal, with -v or --json, the step events stream as before.

use super::host::HostOutcome;
use super::report;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
struct Counts {
    running: usize,
    done: usize,
    failed: usize,
}

pub struct Progress {
    bar: ProgressBar,
    total: usize,
    width: usize,
    counts: Mutex<Counts>,
}

impl Progress {
    /// `width`: the longest host name (lines line up).
    pub fn new(total: usize, width: usize) -> Progress {
        // On stdout, with the lines it prints above itself (stdout is the terminal).
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        let progress = Progress {
            bar,
            total,
            width,
            counts: Mutex::new(Counts::default()),
        };
        progress.show(&Counts::default());
        progress
    }

    fn show(&self, c: &Counts) {
        self.bar.set_message(format!(
            "fleet: {}/{} hosts done, {} running, {} failed",
            c.done, self.total, c.running, c.failed
        ));
    }

    fn update(&self, f: impl FnOnce(&mut Counts)) {
        if let Ok(mut c) = self.counts.lock() {
            f(&mut c);
            self.show(&c);
        }
    }

    pub fn started(&self) {
        self.update(|c| c.running += 1);
    }

    /// The host's line, the lines that say what failed on it, and how long it took.
    pub fn finished(&self, outcome: &HostOutcome, failures: &[String], took: Duration) {
        let failed = report::failed(outcome);
        self.bar.println(format!(
            "{}  ({:.1} s)",
            report::host_line(outcome, self.width),
            took.as_secs_f64()
        ));
        for line in failures {
            self.bar.println(line);
        }
        self.update(|c| {
            c.running = c.running.saturating_sub(1);
            c.done += 1;
            if failed {
                c.failed += 1;
            }
        });
    }

    pub fn close(&self) {
        self.bar.finish_and_clear();
    }
}
