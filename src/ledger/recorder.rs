//! Records into the ledger for one run: loads `ledger.json` (or starts one),
//! adds an entry the first time its key is seen, and rewrites the file
//! atomically (0600) before the change it describes is made.

use super::{Before, Doc, Entry, MANAGED_MARK};
use crate::host::{FileAttrs, Host};
use anyhow::{Context, Result};

const VERSION: u32 = 1;

const ROOT_ONLY: FileAttrs = FileAttrs {
    mode: 0o600,
    uid: 0,
    gid: 0,
};

pub struct Recorder {
    state_dir: String,
    doc: Doc,
}

impl Recorder {
    /// The host's ledger, or a new one: complete unless an earlier edgeup
    /// has left state behind (anything in the state dir but the lock).
    pub fn open(host: &Host, state_dir: &str) -> Result<Recorder> {
        let path = super::path(state_dir);
        let doc = match host.read_string(&path)? {
            Some(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{path} is not a ledger this edgeup can read (move it away to start a new one)"
                )
            })?,
            None => Doc {
                version: VERSION,
                complete: !earlier_state(host, state_dir),
                started: now(),
                entries: Vec::new(),
            },
        };
        Ok(Recorder {
            state_dir: state_dir.to_string(),
            doc,
        })
    }

    pub fn note(&mut self, host: &Host, entry: Entry) -> Result<()> {
        if self.doc.add(entry) {
            self.save(host)?;
        }
        Ok(())
    }

    /// Before `path` is written, changed or removed: what is there now.
    pub fn file_before(&mut self, host: &Host, path: &str) -> Result<()> {
        if self.doc.file(path).is_some() {
            return Ok(());
        }
        let before = match host.stat(path)? {
            None => Before::Absent,
            // A link or a directory is refused by the write itself.
            Some(stat) if stat.is_dir => return Ok(()),
            Some(stat) => match host.read_no_follow(path)? {
                None => return Ok(()),
                Some(content) if content.starts_with(MANAGED_MARK.as_bytes()) => Before::Edgeup,
                Some(content) => {
                    let copy = format!(
                        "{}/{}",
                        super::originals_dir(&self.state_dir),
                        crate::host::files::flat_name(path)
                    );
                    host.ensure_dir(
                        &super::originals_dir(&self.state_dir),
                        &FileAttrs {
                            mode: 0o700,
                            ..ROOT_ONLY
                        },
                    )?;
                    let attrs = stat.attrs();
                    host.write_atomic(&copy, &content, &attrs, None)?;
                    Before::Saved {
                        copy,
                        mode: attrs.mode,
                        uid: attrs.uid,
                        gid: attrs.gid,
                    }
                }
            },
        };
        self.note(
            host,
            Entry::File {
                path: path.to_string(),
                before,
            },
        )
    }

    /// Before directories are created: each one of `path` and its parents
    /// that does not exist (outermost first).
    pub fn dirs_before(&mut self, host: &Host, path: &str) -> Result<()> {
        let mut missing = Vec::new();
        let mut at = std::path::Path::new(path);
        while at.as_os_str().len() > 1 && host.stat(&at.to_string_lossy())?.is_none() {
            missing.push(at.to_string_lossy().into_owned());
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            self.note(host, Entry::Dir { path: dir })?;
        }
        Ok(())
    }

    fn save(&self, host: &Host) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.doc).context("encoding the ledger")?;
        host.write_atomic(
            &super::path(&self.state_dir),
            format!("{text}\n").as_bytes(),
            &ROOT_ONLY,
            None,
        )
    }
}

fn earlier_state(host: &Host, state_dir: &str) -> bool {
    std::fs::read_dir(host.path(state_dir)).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy() != "lock")
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;
    use std::fs;

    #[test]
    fn the_state_before_the_first_change_is_recorded_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let host = Host::new(root.clone(), Box::new(ScriptedRunner::new(root.clone())));
        fs::create_dir_all(root.join("etc/haproxy"))?;
        fs::write(root.join("etc/haproxy/haproxy.cfg"), "# by hand\n")?;
        fs::write(
            root.join("etc/haproxy/old.map"),
            format!("{MANAGED_MARK}\n"),
        )?;
        let uid = nix_uid();
        let attrs = FileAttrs {
            mode: 0o640,
            uid,
            gid: uid,
        };
        // Not kept yet: nothing recorded.
        host.write_atomic("/etc/haproxy/early", b"x", &attrs, None)?;
        host.keep_ledger("/var/lib/edgeup")?;
        host.write_atomic("/etc/haproxy/haproxy.cfg", b"edgeup's", &attrs, None)?;
        host.write_atomic("/etc/haproxy/haproxy.cfg", b"edgeup's again", &attrs, None)?;
        host.write_atomic("/etc/haproxy/old.map", b"new", &attrs, None)?;
        host.ensure_dir("/etc/haproxy/certs/deep", &attrs)?;
        host.write_atomic("/var/lib/edgeup/own", b"own", &attrs, None)?;
        let doc: Doc = serde_json::from_str(&fs::read_to_string(
            root.join("var/lib/edgeup/ledger.json"),
        )?)?;
        assert!(doc.complete, "nothing of an earlier edgeup was there");
        let copy = "/var/lib/edgeup/ledger/originals/etc%haproxy%haproxy.cfg";
        assert!(matches!(
            doc.file("/etc/haproxy/haproxy.cfg"),
            Some(Before::Saved { copy: c, .. }) if c == copy
        ));
        assert_eq!(fs::read_to_string(host.path(copy))?, "# by hand\n");
        assert_eq!(doc.file("/etc/haproxy/old.map"), Some(&Before::Edgeup));
        assert_eq!(doc.file("/etc/haproxy/early"), None);
        assert_eq!(doc.file("/var/lib/edgeup/own"), None);
        let dirs: Vec<&Entry> = doc
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Dir { .. }))
            .collect();
        assert_eq!(
            dirs,
            [
                &Entry::Dir {
                    path: "/etc/haproxy/certs".into()
                },
                &Entry::Dir {
                    path: "/etc/haproxy/certs/deep".into()
                }
            ]
        );
        Ok(())
    }

    fn nix_uid() -> u32 {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }
}
