//! One edgeup run at a time per host: an exclusive lock on a file in the
//! state directory, held for the whole run and released by the kernel even
//! when the process is killed.

use super::Host;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::time::{Duration, Instant};

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
        let (host_path, mut file) = self.lock_file(state_dir)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockHeld {
                    holder: self.lock_holder(state_dir),
                    path: host_path,
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

    /// Takes the run lock, waiting up to `patience` for another run to end
    /// (certbot's deploy hook: its certificate must not be lost to a run
    /// that happened to be going on), then fails with `LockHeld`.
    pub fn lock_patiently(&self, state_dir: &str, patience: Duration) -> Result<RunLock> {
        let deadline = Instant::now() + patience;
        loop {
            match self.lock(state_dir) {
                Err(e) if e.is::<LockHeld>() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                taken => return taken,
            }
        }
    }

    /// The pid the lock file names, when a run that is this process's
    /// ancestor holds it: certbot, started by that run, runs its deploy
    /// hook, and the hook's edgeup must neither wait for its own grandparent
    /// nor do that run's work twice.
    pub fn lock_held_by_ancestor(&self, state_dir: &str) -> Option<u32> {
        // Read-only and never created: a question changes nothing.
        let file = File::open(self.path(&format!("{state_dir}/lock"))).ok()?;
        if file.try_lock().is_ok() {
            return None;
        }
        let pid = holder_pid(&self.lock_holder(state_dir))?;
        is_ancestor(pid).then_some(pid)
    }

    fn lock_file(&self, state_dir: &str) -> Result<(String, File)> {
        std::fs::create_dir_all(self.path(state_dir))
            .with_context(|| format!("creating {state_dir}"))?;
        let host_path = format!("{state_dir}/lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(&host_path))
            .with_context(|| format!("opening lock file {host_path}"))?;
        Ok((host_path, file))
    }

    /// What the lock file says about its holder (`pid N`).
    fn lock_holder(&self, state_dir: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{state_dir}/lock")))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "pid unknown".into())
    }
}

fn holder_pid(holder: &str) -> Option<u32> {
    holder.strip_prefix("pid ")?.trim().parse().ok()
}

/// Whether `pid` is this process's parent, or its parent's, and so on.
fn is_ancestor(pid: u32) -> bool {
    let mut current = std::process::id();
    // A chain is never deeper than the pid space; the bound only guards a
    // /proc that changes under us.
    for _ in 0..4096 {
        match parent_of(current) {
            Some(parent) if parent == pid => return true,
            Some(parent) if parent > 1 => current = parent,
            _ => return false,
        }
    }
    false
}

/// The parent pid in /proc/PID/stat: the fourth field, counted after the
/// command name, which is in parentheses and may hold spaces and ")".
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_an_ancestor_and_a_child_is_not() {
        let parent = parent_of(std::process::id()).expect("a parent");
        assert!(is_ancestor(parent));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        let child_is = is_ancestor(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(!child_is);
        assert!(!is_ancestor(std::process::id()), "not its own ancestor");
    }

    #[test]
    fn the_lock_names_its_holder_and_only_an_ancestor_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let host = Host::new(
            root.clone(),
            Box::new(crate::host::scripted::ScriptedRunner::new(root)),
        );
        assert_eq!(
            host.lock_held_by_ancestor("/state"),
            None,
            "nobody holds it"
        );
        let held = host.lock("/state").expect("lock");
        // Held by this very process: not an ancestor of itself.
        assert_eq!(host.lock_held_by_ancestor("/state"), None);
        let parent = parent_of(std::process::id()).expect("a parent");
        std::fs::write(dir.path().join("state/lock"), format!("pid {parent}")).expect("write");
        assert_eq!(host.lock_held_by_ancestor("/state"), Some(parent));
        let err = host
            .lock_patiently("/state", Duration::from_millis(700))
            .err()
            .expect("still held");
        assert!(err.is::<LockHeld>(), "{err:#}");
        drop(held);
        host.lock_patiently("/state", Duration::from_secs(5))
            .expect("free again");
        assert_eq!(holder_pid("pid 42"), Some(42));
        assert_eq!(holder_pid("pid unknown"), None);
    }
}
