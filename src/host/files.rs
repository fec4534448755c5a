//! File operations with the safety rules edgeup promises: new content is
//! staged in a temp file (created with its final mode, so a key is never
//! readable by others), fsynced, renamed over the target, and the directory
//! fsynced. The replaced file is kept as a backup.

use super::Host;
use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode and owner a managed file or directory must have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileAttrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileStat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub is_dir: bool,
}

impl FileStat {
    pub fn matches(&self, attrs: &FileAttrs) -> bool {
        self.attrs() == *attrs
    }

    /// Its permission bits and owner, as a file written in its place keeps them.
    pub fn attrs(&self) -> FileAttrs {
        FileAttrs {
            mode: self.mode & 0o7777,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// How many backups of one file are kept.
const BACKUPS_KEPT: usize = 5;

impl Host {
    pub fn read(&self, host_path: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.path(host_path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {host_path}")),
        }
    }

    pub fn read_string(&self, host_path: &str) -> Result<Option<String>> {
        Ok(self
            .read(host_path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub fn stat(&self, host_path: &str) -> Result<Option<FileStat>> {
        match fs::symlink_metadata(self.path(host_path)) {
            Ok(m) => Ok(Some(FileStat {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                is_dir: m.is_dir(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("inspecting {host_path}")),
        }
    }

    /// Sets mode and owner of an existing file or directory, on an open
    /// handle of the path itself: a symbolic link there (swapped in by
    /// whoever can write the directory) is refused, never followed.
    pub fn set_attrs(&self, host_path: &str, attrs: &FileAttrs) -> Result<()> {
        self.note_file(host_path)?;
        let file = self.open_no_follow(host_path)?;
        std::os::unix::fs::fchown(&file, Some(attrs.uid), Some(attrs.gid))
            .with_context(|| format!("changing owner of {host_path}"))?;
        file.set_permissions(fs::Permissions::from_mode(attrs.mode))
            .with_context(|| format!("changing mode of {host_path}"))
    }

    /// The content of the regular file at `host_path`; None when there is
    /// none, or when a symbolic link or anything else stands there (never
    /// read through: for files in directories others could write).
    pub fn read_no_follow(&self, host_path: &str) -> Result<Option<Vec<u8>>> {
        match fs::symlink_metadata(self.path(host_path)) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("inspecting {host_path}")),
        }
        let mut file = self.open_no_follow(host_path)?;
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .with_context(|| format!("reading {host_path}"))?;
        Ok(Some(content))
    }

    /// Opens `host_path` for reading without following a final symbolic
    /// link (O_NOFOLLOW; O_NONBLOCK so a FIFO planted there cannot block).
    fn open_no_follow(&self, host_path: &str) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.path(host_path))
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    anyhow::anyhow!(
                        "{host_path} is a symbolic link; edgeup does not follow links it did not create \
                         (remove it and run again)"
                    )
                } else {
                    anyhow::Error::new(e).context(format!("opening {host_path}"))
                }
            })
    }

    /// Creates a directory (and missing parents) and sets its mode and owner.
    pub fn ensure_dir(&self, host_path: &str, attrs: &FileAttrs) -> Result<()> {
        self.note_dirs(host_path)?;
        let path = self.path(host_path);
        fs::create_dir_all(&path).with_context(|| format!("creating directory {host_path}"))?;
        self.set_attrs(host_path, attrs)
    }

    pub fn remove_file(&self, host_path: &str) -> Result<()> {
        self.note_file(host_path)?;
        match fs::remove_file(self.path(host_path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {host_path}")),
        }
    }

    /// Writes `content` to a temp file in `stage_dir` (default: the target's
    /// directory), ready to be validated and then committed over `dest`.
    pub fn stage(
        &self,
        dest: &str,
        content: &[u8],
        attrs: &FileAttrs,
        stage_dir: Option<&str>,
    ) -> Result<Staged> {
        let dest_path = self.path(dest);
        let name = dest_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{dest} has no file name"))?;
        let dir_host = match stage_dir {
            Some(d) => d.to_string(),
            None => Path::new(dest)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .with_context(|| format!("{dest} has no parent directory"))?,
        };
        self.note_dirs(&dir_host)?;
        self.note_file(dest)?;
        let dir = self.path(&dir_host);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Temp files of runs that were killed (the run lock guarantees none is
        // live): one may hold a copy of a private key, so they never pile up.
        let prefix = format!(".{name}.edgeup-");
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let temp = dir.join(format!("{prefix}{}", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(attrs.mode)
            .open(&temp)
            .with_context(|| format!("creating temp file {}", temp.display()))?;
        // Mode first (umask may have narrowed it), owner next, content last.
        let staged = Staged {
            temp: temp.clone(),
            dest: dest_path,
            host_dest: dest.to_string(),
            committed: false,
        };
        fs::set_permissions(&temp, fs::Permissions::from_mode(attrs.mode))?;
        std::os::unix::fs::chown(&temp, Some(attrs.uid), Some(attrs.gid))
            .with_context(|| format!("changing owner of {}", temp.display()))?;
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        Ok(staged)
    }

    /// Backs up what is at the staged file's destination, renames the staged
    /// file over it, and records the swap in `swaps`, so a failed reload can
    /// put every file of the run back (engine rollback).
    pub fn replace(
        &self,
        staged: Staged,
        state_dir: &str,
        swaps: &std::cell::RefCell<Vec<Swap>>,
    ) -> Result<()> {
        let dest = staged.host_dest.clone();
        let backup = self.backup(&dest, state_dir)?;
        staged.commit()?;
        swaps.borrow_mut().push(Swap { dest, backup });
        Ok(())
    }

    /// Stage + commit in one go, for files that need no validation and that
    /// no reload depends on (state, records of edgeup's own).
    pub fn write_atomic(
        &self,
        dest: &str,
        content: &[u8],
        attrs: &FileAttrs,
        stage_dir: Option<&str>,
    ) -> Result<()> {
        self.stage(dest, content, attrs, stage_dir)?.commit()
    }

    /// Copies `host_path` into the backup area; returns the backup's host path.
    /// The copy keeps the original's mode (keys stay 0600).
    /// A symbolic link is not backed up (nothing is ever read through one).
    pub fn backup(&self, host_path: &str, state_dir: &str) -> Result<Option<String>> {
        let Some(stat) = self.stat(host_path)? else {
            return Ok(None);
        };
        if fs::symlink_metadata(self.path(host_path)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(None);
        }
        let flat = flat_name(host_path);
        let stamp = unique_stamp();
        let dir = format!("{state_dir}/backups");
        self.ensure_dir(
            &dir,
            &FileAttrs {
                mode: 0o700,
                uid: 0,
                gid: 0,
            },
        )?;
        // A backup's temp file is named after that backup's own stamp, so the
        // clean-up in `stage` never meets one left by a killed run: remove
        // them here (the run lock guarantees none is live; one may hold a key).
        if let Ok(entries) = fs::read_dir(self.path(&dir)) {
            let prefix = format!(".{flat}.");
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name.contains(".edgeup-") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        let backup = format!("{dir}/{flat}.{stamp}");
        // Read through a handle of the path itself: a link there is refused,
        // so no other file's content ever lands in a backup (or a restore).
        let mut source = self.open_no_follow(host_path)?;
        if !source.metadata().is_ok_and(|m| m.is_file()) {
            bail!("{host_path} is not a regular file; refusing to back it up");
        }
        let mut content = Vec::new();
        source
            .read_to_end(&mut content)
            .with_context(|| format!("reading {host_path}"))?;
        self.write_atomic(&backup, &content, &stat.attrs(), None)?;
        self.prune_backups(host_path, state_dir)?;
        Ok(Some(backup))
    }

    /// Puts a backup back in place (atomically), keeping its mode and owner.
    pub fn restore(&self, backup: &str, dest: &str) -> Result<()> {
        let Some(stat) = self.stat(backup)? else {
            bail!("backup {backup} is missing; cannot restore {dest}");
        };
        let content = fs::read(self.path(backup)).with_context(|| format!("reading {backup}"))?;
        self.write_atomic(dest, &content, &stat.attrs(), None)
    }

    /// The backups of `host_path` in `STATE_DIR/backups`, oldest first (host
    /// paths); none when there is no backup directory.
    pub fn backups_of(&self, host_path: &str, state_dir: &str) -> Result<Vec<String>> {
        let dir = format!("{state_dir}/backups");
        let flat = flat_name(host_path);
        let entries = match fs::read_dir(self.path(&dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {dir}")),
        };
        let mut found: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix(&flat)
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|n| format!("{dir}/{n}"))
            .collect();
        found.sort();
        Ok(found)
    }

    fn prune_backups(&self, host_path: &str, state_dir: &str) -> Result<()> {
        let found = self.backups_of(host_path, state_dir)?;
        for oldest in found.iter().take(found.len().saturating_sub(BACKUPS_KEPT)) {
            let _ = fs::remove_file(self.path(oldest));
        }
        Ok(())
    }
}

/// A file replaced during a run, and where its previous content went.
#[derive(Debug, Clone)]
pub struct Swap {
    pub dest: String,
    /// None: the file did not exist before (rollback removes it).
    pub backup: Option<String>,
}

/// `host_path` as one file name (`/etc/haproxy/haproxy.cfg` becomes
/// `etc%haproxy%haproxy.cfg`): how backups and the ledger's originals are named.
pub fn flat_name(host_path: &str) -> String {
    host_path.trim_start_matches('/').replace('/', "%")
}

/// Sortable, unique per call: seconds and nanoseconds since the epoch.
fn unique_stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:011}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// A temp file holding new content; removed unless committed. Only
/// `Host::replace` (which records the swap) and `write_atomic` (files no
/// reload depends on) commit one.
pub struct Staged {
    temp: PathBuf,
    dest: PathBuf,
    /// `dest` as the host names it (without the root).
    host_dest: String,
    committed: bool,
}

impl Staged {
    /// The temp file's real path (to hand to a validator such as `haproxy -c`).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Renames the temp file over the destination and fsyncs the directory.
    fn commit(mut self) -> Result<()> {
        fs::rename(&self.temp, &self.dest).with_context(|| {
            format!(
                "moving {} into place as {}",
                self.temp.display(),
                self.dest.display()
            )
        })?;
        self.committed = true;
        if let Some(dir) = self.dest.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;

    #[test]
    fn links_are_refused_or_read_as_absent_never_followed() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let host = Host::new(root.clone(), Box::new(ScriptedRunner::new(root.clone())));
        let target = root.join("secret");
        fs::write(&target, "root:hash")?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640))?;
        fs::create_dir(root.join("certs"))?;
        std::os::unix::fs::symlink(&target, root.join("certs/a.pem"))?;
        let attrs = FileAttrs {
            mode: 0o666,
            uid: 0,
            gid: 0,
        };
        let err = format!(
            "{:#}",
            host.set_attrs("/certs/a.pem", &attrs).expect_err("a link")
        );
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(
            fs::metadata(&target)?.permissions().mode() & 0o777,
            0o640,
            "target untouched"
        );
        assert_eq!(host.read_no_follow("/certs/a.pem")?, None);
        assert_eq!(
            host.backup("/certs/a.pem", "/state")?,
            None,
            "a link is not backed up"
        );
        fs::write(root.join("certs/b.pem"), "pem")?;
        assert_eq!(host.read_no_follow("/certs/b.pem")?, Some(b"pem".to_vec()));
        // A backup's temp file left by a killed run is removed by the next backup.
        fs::create_dir_all(root.join("state/backups"))?;
        let stale = root.join("state/backups/.certs%b.pem.01796121641.788418422.edgeup-3768");
        fs::write(&stale, "key")?;
        assert!(host.backup("/certs/b.pem", "/state")?.is_some());
        assert!(!stale.exists(), "stale backup temp file left behind");
        Ok(())
    }
}
