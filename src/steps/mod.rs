//! Step kinds. Each one: `check` reads the host and never changes it, and
//! says what differs in a type of its own; `apply` acts on that value. The
//! engine re-checks after apply.

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
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

/// Everything a step may look at.
pub struct Ctx<'a> {
    pub host: &'a Host,
    pub vars: &'a Vars,
    pub assets: &'a Assets,
    /// edgeup's own state (/var/lib/edgeup): backups, pending handlers, lock.
    pub state_dir: &'a str,
    /// What steps leave for the engine during the run.
    pub journal: &'a Journal,
    /// What certificate steps may do in this run. The engine's re-check
    /// after apply sees `WhenDue`: it judges what apply left, so a forced
    /// step converges.
    pub renewal: Renewal,
}

/// What a run lets certificate steps do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Renewal {
    /// Ask the CA where a certificate is missing, wrong or due.
    #[default]
    WhenDue,
    /// Ask the CA even where the certificate looks fine (`edgeup renew --force`).
    Forced,
    /// Never ask the CA: install the certificate certbot already holds
    /// (`edgeup renew DOMAIN --from-certbot`, what certbot's deploy hook runs).
    FromCertbot,
}

impl Ctx<'_> {
    /// The one way a step puts a file in place that a failed reload must be
    /// able to undo: backs up what is there, renames the staged file over
    /// it, and records the swap for the engine's rollback.
    pub fn replace(&self, staged: crate::host::Staged) -> Result<()> {
        self.host
            .replace(staged, self.state_dir, &self.journal.swaps)
    }

    /// Something that went wrong without failing the step (an alert that
    /// could not be delivered must not fail a renewal): shown as a warning
    /// after the step's line, whatever its outcome.
    pub fn warn(&self, message: String) {
        self.journal.warnings.borrow_mut().push(message);
    }
}

/// What steps leave for the engine during a run (the step specs stay data).
#[derive(Default)]
pub struct Journal {
    /// Files replaced, so a failed reload can put them back.
    pub swaps: RefCell<Vec<Swap>>,
    /// `Ctx::warn`'s messages, taken by the engine after each step.
    pub warnings: RefCell<Vec<String>>,
}

impl Journal {
    /// The warnings left since the last call, joined (None: there were none).
    pub fn take_warnings(&self) -> Option<String> {
        let warnings = self.warnings.take();
        (!warnings.is_empty()).then(|| warnings.join("; "))
    }
}

pub use crate::host::Swap;

/// What a check found. A step kind's check returns its own drift type
/// (`State<Self::Drift>`); the engine sees it as [`Drift`].
#[derive(Debug, Clone, PartialEq)]
pub enum State<D = Drift> {
    /// Nothing to do; the note says what was found (e.g. "no active firewall").
    Converged(String),
    Drift(D),
}

/// How a drift is shown: one line per difference ("install haproxy",
/// "/etc/haproxy/certs: mode 0755 -> 0700") and, for a file's content, a
/// diff (a secret's content is never shown).
pub trait Describe {
    fn lines(&self) -> Vec<String>;
    fn diff(&self) -> Option<Diff> {
        None
    }
}

/// A drift as the engine holds it: described once for the report, and
/// kept typed for the apply of the step that found it.
#[derive(Clone)]
pub struct Drift {
    pub changes: Vec<String>,
    pub diff: Option<Diff>,
    found: Rc<dyn Any>,
}

impl Drift {
    fn of<D: Describe + 'static>(found: D) -> Drift {
        Drift {
            changes: found.lines(),
            diff: found.diff(),
            found: Rc::new(found),
        }
    }

    /// The step kind's own drift value.
    fn typed<D: 'static>(&self) -> Option<&D> {
        self.found.downcast_ref()
    }
}

/// Only the description: the typed value may hold what the diff redacts.
impl std::fmt::Debug for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drift")
            .field("changes", &self.changes)
            .field("diff", &self.diff)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diff {
    /// A unified diff of a text file.
    Text(String),
    /// The file holds a secret: its content is never shown.
    Secret,
}

/// What a step kind implements. `check` reads the host and returns the
/// kind's own drift; `apply` acts on exactly that value (it never decodes
/// report lines nor asks the host again what check already found).
pub trait Step: Any {
    type Drift: Describe + 'static;
    fn check(&self, ctx: &Ctx) -> Result<State<Self::Drift>>;
    fn apply(&self, ctx: &Ctx, drift: &Self::Drift) -> Result<()>;
    /// Steps that talk to systemd; `apply` refuses to start without it.
    fn needs_systemd(&self) -> bool {
        false
    }
}

/// A step of any kind, as the engine walks it. `Any` so the engine can
/// recognise the one kind it applies in batches (certificates,
/// engine/batch.rs) without a method every kind would carry.
pub trait AnyStep: Any {
    fn check(&self, ctx: &Ctx) -> Result<State>;
    fn apply(&self, ctx: &Ctx, drift: &Drift) -> Result<()>;
    fn needs_systemd(&self) -> bool;
}

impl<S: Step> AnyStep for S {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        Ok(match Step::check(self, ctx)? {
            State::Converged(note) => State::Converged(note),
            State::Drift(found) => State::Drift(Drift::of(found)),
        })
    }

    fn apply(&self, ctx: &Ctx, drift: &Drift) -> Result<()> {
        let found = drift.typed::<S::Drift>().with_context(|| {
            format!(
                "internal error: a drift of another step kind was handed to {}",
                std::any::type_name::<S>()
            )
        })?;
        Step::apply(self, ctx, found)
    }

    fn needs_systemd(&self) -> bool {
        Step::needs_systemd(self)
    }
}

/// The drift of a step that never drifts (`flush_handlers`).
impl Describe for std::convert::Infallible {
    fn lines(&self) -> Vec<String> {
        match *self {}
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
