//! What the user sees: progress on a terminal, plain lines otherwise, JSON
//! lines with --json. The engine emits events; a reporter renders them.

pub mod json;
pub mod plain;

use crate::steps::Diff;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        command: String,
        playbook: String,
        distro: String,
        steps: usize,
    },
    Warning {
        message: String,
    },
    Step {
        index: usize,
        total: usize,
        name: String,
        /// The site the step belongs to (None: host-wide).
        #[serde(skip_serializing_if = "Option::is_none")]
        site: Option<String>,
        /// In `plan`, `changed` means "would change".
        status: Status,
        handler: bool,
        changes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<Diff>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        duration_ms: u64,
    },
    Recap {
        ok: usize,
        changed: usize,
        failed: usize,
        skipped: usize,
        /// Sites with a failed step (the other sites were converged).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        failed_sites: Vec<String>,
        mode: String,
        duration_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

pub trait Reporter {
    /// A step is about to be checked (drives spinners; no output otherwise).
    fn begin(&mut self, _index: usize, _total: usize, _name: &str) {}
    fn event(&mut self, event: &Event);
}

/// The reporter for this invocation: JSON lines, or human output (with a
/// spinner only when stderr is a terminal).
pub fn for_output(json: bool, verbosity: Verbosity, show_diffs: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(json::JsonReporter)
    } else {
        Box::new(plain::PlainReporter::new(verbosity, show_diffs))
    }
}
