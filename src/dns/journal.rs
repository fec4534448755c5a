//! The records edgeup has put in (or is putting in) a zone and not yet
//! taken out: `STATE_DIR/dns/pending.json` (0600), written atomically. A
//! record is journaled before it is written and leaves the journal once it
//! is gone, so a killed run's records are found and removed by the next.

use crate::host::{DuctRunner, FileAttrs, Host};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

/// One record: which provider (and credentials) wrote it, its name, value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub provider: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    records: Vec<Entry>,
}

/// Every read-modify-write of a journal in this process goes through this
/// lock (orders run in parallel; the run lock keeps other edgeups out).
static LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone)]
pub struct Journal {
    /// The host's root (Host is not Sync; its file helpers are rebuilt from it).
    root: PathBuf,
    /// Host path of pending.json.
    path: String,
    dir: String,
}

impl Journal {
    pub fn new(host: &Host, state_dir: &str) -> Journal {
        let dir = format!("{}/dns", state_dir.trim_end_matches('/'));
        Journal {
            root: host.root().to_path_buf(),
            path: format!("{dir}/pending.json"),
            dir,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn host(&self) -> Host {
        Host::new(self.root.clone(), Box::new(DuctRunner))
    }

    fn read(&self, host: &Host) -> Result<File> {
        match host.read_no_follow(&self.path)? {
            None => Ok(File::default()),
            Some(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a journal edgeup wrote; move it aside (the records it lists may still \
                     be in the zone: remove TXT records named _acme-challenge.* there by hand)",
                    self.path
                )
            }),
        }
    }

    fn write(&self, host: &Host, file: &File) -> Result<()> {
        host.ensure_dir(
            &self.dir,
            &FileAttrs {
                mode: 0o700,
                ..owner()
            },
        )?;
        let text = serde_json::to_vec_pretty(file).context("encoding the DNS journal")?;
        host.write_atomic(&self.path, &text, &owner(), None)
    }

    pub fn entries(&self) -> Result<Vec<Entry>> {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.read(&self.host())?.records)
    }

    /// Adds `entry` (once: the same record twice is one entry).
    pub fn add(&self, entry: &Entry) -> Result<()> {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let host = self.host();
        let mut file = self.read(&host)?;
        if !file.records.contains(entry) {
            file.records.push(entry.clone());
            self.write(&host, &file)?;
        }
        Ok(())
    }

    /// Removes `entry`; absent is fine.
    pub fn remove(&self, entry: &Entry) -> Result<()> {
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let host = self.host();
        let mut file = self.read(&host)?;
        let before = file.records.len();
        file.records.retain(|e| e != entry);
        if file.records.len() != before {
            self.write(&host, &file)?;
        }
        Ok(())
    }
}

/// 0600 and owned by whoever runs edgeup (root in production; the test
/// user in tests, who cannot chown to root).
fn owner() -> FileAttrs {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    FileAttrs {
        mode: 0o600,
        uid,
        gid,
    }
}
