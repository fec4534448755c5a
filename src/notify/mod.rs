//! Alerts about certificates: `renewal_failed`, `expiry_near` and `renewed`
//! events, as JSON on a command's stdin or POSTed to a webhook.
//!
//! The ACME step records each (re)issuance with [`record_attempt`]; `status`
//! reads [`last_attempt`]; [`events_for`] decides a run's events (pure).

mod event;
mod state;

pub use event::{Cert, Event, EventKind, Run, events_for, rfc3339};
pub use state::{Attempt, Outcome, State, StateFile, last_attempt, one_line, record_attempt};

use std::path::PathBuf;

/// The host's `notify:` settings, typed (`site::validate` parses them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub targets: Vec<Target>,
    /// `expiry_near` once a day when a certificate has fewer days left.
    pub days_before_expiry: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An absolute path, run with the event's JSON on stdin.
    Command(PathBuf),
    /// An http:// or https:// URL the event's JSON is POSTed to.
    Webhook(String),
}
