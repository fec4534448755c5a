//! Step kinds. Each one: `check` reads the host and never changes it;
//! `apply` acts on the drift `check` found. The engine re-checks after apply.

pub mod acme_certificate;
pub mod alerts;
pub mod directory;
pub mod firewall;
pub mod install_self;
pub mod packages;
pub mod pem_file;
pub mod placeholder_cert;
pub mod retire_site;
pub mod selinux;
pub mod service;
pub mod site_record;
pub mod template;

use crate::assets::Assets;
use crate::host::Host;
use crate::render::Vars;
use anyhow::Result;
use serde::Serialize;
use std::cell::RefCell;

/// Everything a step may look at.
pub struct Ctx<'a> {
    pub host: &'a Host,
    pub vars: &'a Vars,
    pub assets: &'a Assets,
    /// edgeup's own state (/var/lib/edgeup): backups, pending handlers, lock.
    pub state_dir: &'a str,
    /// Files replaced during this run, so a failed reload can put them back.
    pub swaps: &'a RefCell<Vec<Swap>>,
    /// Act even where the host looks converged (`edgeup renew --force`).
    /// The engine's re-check after apply sees it false: it judges what
    /// apply left, so a forced step converges.
    pub force: bool,
}

impl Ctx<'_> {
    /// The one way a step puts a file in place that a failed reload must be
    /// able to undo: backs up what is there, renames the staged file over
    /// it, and records the swap for the engine's rollback.
    pub fn replace(&self, staged: crate::host::Staged) -> Result<()> {
        self.host.replace(staged, self.state_dir, self.swaps)
    }
}

pub use crate::host::Swap;

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Nothing to do; the note says what was found (e.g. "no active firewall").
    Converged(String),
    Drift(Drift),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// What differs, one line each ("haproxy not installed", "mode 0644 != 0600").
    pub changes: Vec<String>,
    pub diff: Option<Diff>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Diff {
    /// A unified diff of a text file.
    Text(String),
    /// The file holds a secret: its content is never shown.
    Secret,
}

impl Drift {
    pub fn new(changes: Vec<String>) -> Drift {
        Drift {
            changes,
            diff: None,
        }
    }

    pub fn one(change: impl Into<String>) -> Drift {
        Drift::new(vec![change.into()])
    }
}

/// `Any` so the engine can recognise the one kind it applies in batches
/// (certificates, engine/batch.rs) without a method every kind would carry.
pub trait Step: std::any::Any {
    fn check(&self, ctx: &Ctx) -> Result<State>;
    fn apply(&self, ctx: &Ctx, drift: &Drift) -> Result<()>;
    /// Steps that talk to systemd; `apply` refuses to start without it.
    fn needs_systemd(&self) -> bool {
        false
    }
    /// After a successful `apply`: something that went wrong without
    /// failing the step (an alert that could not be delivered must not fail
    /// a renewal), shown as a warning.
    fn warning(&self) -> Option<String> {
        None
    }
}

/// Unified diff between two texts, labelled with the file's path. Lines
/// that carry HAProxy passwords (`stats auth`, a `userlist`'s `user ...
/// password|insecure-password`), as a hand-written config being replaced
/// may hold, are shown with the secret masked.
pub fn text_diff(path: &str, old: &str, new: &str) -> String {
    let (old, new) = (mask_secrets(old), mask_secrets(new));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}

fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line.split_whitespace().collect();
        let keep = match words.as_slice() {
            ["stats", "auth", ..] => Some(2),
            ["user", _, rest @ ..] => rest
                .iter()
                .position(|w| *w == "password" || *w == "insecure-password")
                .map(|i| i + 3),
            _ => None,
        };
        match keep {
            Some(n) if words.len() > n => {
                let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
                let shown = words.iter().take(n).copied().collect::<Vec<_>>().join(" ");
                out.push_str(&format!("{indent}{shown} <secret hidden>\n"));
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn diffs_mask_haproxy_passwords() {
        let old = "global\n    stats auth admin:hunter2\nuserlist ops\n    user bob password $6$salted\n    user eve insecure-password plain groups g\n    group g\n";
        let diff = super::text_diff("/etc/haproxy/haproxy.cfg", old, "global\n");
        for secret in ["hunter2", "admin:", "$6$salted", "plain"] {
            assert!(!diff.contains(secret), "{secret} shown:\n{diff}");
        }
        assert!(diff.contains("-    stats auth <secret hidden>"), "{diff}");
        assert!(
            diff.contains("-    user bob password <secret hidden>"),
            "{diff}"
        );
        assert!(diff.contains("-    group g"), "{diff}");
    }
}
