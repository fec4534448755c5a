//! Step kinds. Each one: `check` reads the host and never changes it;
//! `apply` acts on the drift `check` found. The engine re-checks after apply.

pub mod acme_account;
pub mod acme_certificate;
pub mod directory;
pub mod firewall;
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
}

#[derive(Debug, Clone)]
pub struct Swap {
    pub dest: String,
    /// None: the file did not exist before (rollback removes it).
    pub backup: Option<String>,
}

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

pub trait Step {
    fn check(&self, ctx: &Ctx) -> Result<State>;
    fn apply(&self, ctx: &Ctx, drift: &Drift) -> Result<()>;
    /// Steps that talk to systemd; `apply` refuses to start without it.
    fn needs_systemd(&self) -> bool {
        false
    }
}

/// Unified diff between two texts, labelled with the file's path.
pub fn text_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}
