//! One edgeup run at a time per host: an exclusive lock on a file in the
//! state directory, held for the whole run and released by the kernel even
//! when the process is killed.

use super::Host;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;

pub struct RunLock {
    _file: File,
}

#[derive(Debug)]
pub struct LockHeld {
    pub path: String,
    pub holder: String,
}

impl std::fmt::Display for LockHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another edgeup run holds {} ({}); wait for it to finish, then run again",
            self.path, self.holder
        )
    }
}

impl std::error::Error for LockHeld {}

impl Host {
    /// Takes the run lock or fails with `LockHeld` (never waits: a second
    /// run started by a timer or a person should say so, not queue up).
    pub fn lock(&self, state_dir: &str) -> Result<RunLock> {
        std::fs::create_dir_all(self.path(state_dir))
            .with_context(|| format!("creating {state_dir}"))?;
        let host_path = format!("{state_dir}/lock");
        let path = self.path(&host_path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening lock file {host_path}"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "pid unknown".into());
                return Err(LockHeld {
                    path: host_path,
                    holder,
                }
                .into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {host_path}"));
            }
        }
        file.set_len(0)?;
        write!(file, "pid {}", std::process::id())?;
        Ok(RunLock { _file: file })
    }
}
