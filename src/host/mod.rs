//! The host as steps see it: a command runner plus a file system rooted at
//! `root` ("/" for real; a fixture tree in transcript tests). Steps never
//! shell out or touch files directly, so the same step code runs against the
//! real machine and against a scripted one.

pub mod command;
pub mod files;
pub mod lock;
pub mod pkgdb;
pub mod scripted;
pub mod systemd;
pub mod users;

pub use command::{Cmd, CmdOutput, DuctRunner, Runner};
pub use files::{FileAttrs, FileStat, Staged, Swap};

use anyhow::Result;
use std::path::{Path, PathBuf};

pub struct Host {
    root: PathBuf,
    runner: Box<dyn Runner>,
    /// Set by `keep_ledger`: every change through this Host is recorded first.
    ledger: std::sync::OnceLock<Ledgered>,
    /// The edgeup binary of this run (None: it cannot be found).
    running_binary: Option<PathBuf>,
}

struct Ledgered {
    state_dir: String,
    recorder: std::sync::Mutex<crate::ledger::Recorder>,
}

impl Host {
    /// The machine edgeup runs on.
    pub fn real() -> Host {
        Host::new(PathBuf::from("/"), Box::new(DuctRunner))
    }

    pub fn new(root: PathBuf, runner: Box<dyn Runner>) -> Host {
        Host {
            root,
            runner,
            ledger: std::sync::OnceLock::new(),
            running_binary: std::env::current_exe().ok(),
        }
    }

    /// The same host, run by the edgeup at `path` (a file under a fixture
    /// root in tests, where the running binary is the test's own).
    pub fn with_running_binary(mut self, path: PathBuf) -> Host {
        self.running_binary = Some(path);
        self
    }

    /// The edgeup binary of this run, as the kernel names it (`/proc/self/exe`).
    pub fn running_binary(&self) -> Option<&Path> {
        self.running_binary.as_deref()
    }

    /// From now on, record the state before each change into the ledger
    /// (`apply`, `renew`, `site`: never `plan` or `uninstall`).
    pub fn keep_ledger(&self, state_dir: &str) -> Result<()> {
        if self.ledger.get().is_none() {
            let recorder = crate::ledger::Recorder::open(self, state_dir)?;
            let _ = self.ledger.set(Ledgered {
                state_dir: state_dir.to_string(),
                recorder: std::sync::Mutex::new(recorder),
            });
        }
        Ok(())
    }

    /// Records `entry` (first time only) when a ledger is kept.
    pub fn note(&self, entry: crate::ledger::Entry) -> Result<()> {
        self.with_recorder(None, |r| r.note(self, entry))
    }

    /// Records what is at `path` before it is written, changed or removed.
    pub fn note_file(&self, path: &str) -> Result<()> {
        self.with_recorder(Some(path), |r| r.file_before(self, path))
    }

    /// Records the directories `path` needs that do not exist yet.
    pub fn note_dirs(&self, path: &str) -> Result<()> {
        self.with_recorder(Some(path), |r| r.dirs_before(self, path))
    }

    /// Runs `f` on the recorder, unless none is kept or `path` is in
    /// edgeup's own trees (the recorder's own writes land there: checked
    /// before locking, so they never wait on themselves).
    fn with_recorder(
        &self,
        path: Option<&str>,
        f: impl FnOnce(&mut crate::ledger::Recorder) -> Result<()>,
    ) -> Result<()> {
        let Some(ledgered) = self.ledger.get() else {
            return Ok(());
        };
        if path.is_some_and(|p| crate::ledger::is_own(p, &ledgered.state_dir)) {
            return Ok(());
        }
        let mut recorder = ledgered
            .recorder
            .lock()
            .map_err(|_| anyhow::anyhow!("the ledger's recorder failed in another thread"))?;
        f(&mut recorder)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An absolute host path (`/etc/haproxy/haproxy.cfg`) under this host's root.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Runs a command; a non-zero exit is not an error here (see `run_ok`).
    pub fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        self.runner.run(cmd)
    }

    /// Runs a command and turns a non-zero exit into an error carrying stderr.
    pub fn run_ok(&self, cmd: &Cmd) -> Result<CmdOutput> {
        self.runner.run(cmd)?.success_of(cmd)
    }

    /// Whether `program` is on the standard PATH of this host.
    pub fn has_program(&self, program: &str) -> bool {
        [
            "usr/local/sbin",
            "usr/local/bin",
            "usr/sbin",
            "usr/bin",
            "sbin",
            "bin",
        ]
        .iter()
        .any(|dir| self.root.join(dir).join(program).is_file())
    }
}
