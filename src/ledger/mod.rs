//! The ledger: what the host was like before edgeup first changed it, kept
//! for `edgeup uninstall`. `apply` (and `renew`, `site`) record into it
//! through the Host before each change, atomically, the first time only: a
//! file's original content (a copy under `STATE_DIR/ledger/originals`, mode
//! and owner kept) or that it did not exist, the directories edgeup created,
//! the packages it installed, each unit's enabled/active state before edgeup
//! changed it, the firewall rules and SELinux booleans it set where they
//! were not set already, and the certbot lineages it created. edgeup's own
//! trees (`STATE_DIR`, `/etc/edgeup`) are not recorded: uninstall archives
//! or removes them whole.
//!
//! A host converged by a release without the ledger gets one at its next
//! apply, marked incomplete: its files that already carry edgeup's
//! "Managed by edgeup" header are recorded as edgeup's own (`Before::Edgeup`),
//! never as originals.

mod recorder;

pub use recorder::Recorder;

use serde::{Deserialize, Serialize};

/// `STATE_DIR/ledger.json`.
pub fn path(state_dir: &str) -> String {
    format!("{state_dir}/ledger.json")
}

/// Where original files are copied.
pub fn originals_dir(state_dir: &str) -> String {
    format!("{state_dir}/ledger/originals")
}

use crate::paths::CONFIG_DIR;

/// The first line of every file edgeup renders.
pub const MANAGED_MARK: &str = "# Managed by edgeup";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Doc {
    pub version: u32,
    /// False when the ledger was started on a host edgeup had already
    /// changed (an earlier release): what it did then is not known.
    pub complete: bool,
    /// Unix seconds of the first record.
    pub started: i64,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    File {
        path: String,
        before: Before,
    },
    /// A directory edgeup created (it did not exist).
    Dir {
        path: String,
    },
    /// Packages edgeup installed (and, on dpkg hosts, the dependencies that
    /// came with them).
    Packages {
        manager: crate::distro::PackageManager,
        names: Vec<String>,
    },
    /// A unit's state before edgeup enabled/disabled/started/stopped it.
    Unit {
        name: String,
        enabled: bool,
        active: bool,
    },
    /// `ufw allow PORT/tcp`, not allowed before.
    Ufw {
        port: u16,
    },
    /// A firewalld service edgeup added (permanent and runtime).
    Firewalld {
        service: String,
    },
    /// An SELinux boolean and the value it had.
    SelinuxBoolean {
        name: String,
        value: bool,
    },
    /// A certbot lineage (`--cert-name`) edgeup created.
    CertbotLineage {
        name: String,
        /// certbot's config directory (`/etc/letsencrypt`).
        #[serde(alias = "letsencrypt")]
        certbot_dir: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum Before {
    /// No file there.
    Absent,
    /// The original, copied to `copy` (a host path under the originals dir).
    Saved {
        copy: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Already edgeup's (its header) when the ledger was started: the
    /// original is not known.
    Edgeup,
}

impl Before {
    /// The saved copy and the attributes the original had.
    pub fn saved(&self) -> Option<(&str, crate::host::FileAttrs)> {
        match self {
            Before::Saved {
                copy,
                mode,
                uid,
                gid,
            } => Some((
                copy,
                crate::host::FileAttrs {
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                },
            )),
            _ => None,
        }
    }
}

impl Entry {
    /// Two entries with the same key describe the same thing: the first
    /// one recorded is the state before edgeup, and stays.
    fn key(&self) -> String {
        match self {
            Entry::File { path, .. } => format!("file {path}"),
            Entry::Dir { path } => format!("dir {path}"),
            Entry::Packages { .. } => "packages".into(),
            Entry::Unit { name, .. } => format!("unit {name}"),
            Entry::Ufw { port } => format!("ufw {port}"),
            Entry::Firewalld { service } => format!("firewalld {service}"),
            Entry::SelinuxBoolean { name, .. } => format!("selinux {name}"),
            Entry::CertbotLineage { name, .. } => format!("certbot {name}"),
        }
    }
}

impl Doc {
    /// Adds `entry` unless its key is there already; package names are
    /// merged. True when the document changed.
    pub fn add(&mut self, entry: Entry) -> bool {
        if let Entry::Packages { names, .. } = &entry
            && let Some(Entry::Packages { names: have, .. }) = self
                .entries
                .iter_mut()
                .find(|e| matches!(e, Entry::Packages { .. }))
        {
            let before = have.len();
            for n in names {
                if !have.contains(n) {
                    have.push(n.clone());
                }
            }
            return have.len() != before;
        }
        let key = entry.key();
        if self.entries.iter().any(|e| e.key() == key) {
            return false;
        }
        self.entries.push(entry);
        true
    }

    pub fn file(&self, path: &str) -> Option<&Before> {
        self.entries.iter().find_map(|e| match e {
            Entry::File { path: p, before } if p == path => Some(before),
            _ => None,
        })
    }
}

/// Whether edgeup owns `path` whole (never recorded).
pub fn is_own(path: &str, state_dir: &str) -> bool {
    [state_dir, CONFIG_DIR]
        .iter()
        .any(|dir| path == *dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_record_stays_and_packages_merge() {
        let mut doc = Doc::default();
        let absent = Entry::File {
            path: "/etc/haproxy/haproxy.cfg".into(),
            before: Before::Absent,
        };
        assert!(doc.add(absent.clone()));
        assert!(!doc.add(Entry::File {
            path: "/etc/haproxy/haproxy.cfg".into(),
            before: Before::Edgeup,
        }));
        assert_eq!(doc.file("/etc/haproxy/haproxy.cfg"), Some(&Before::Absent));
        let pkgs = |names: &[&str]| Entry::Packages {
            manager: crate::distro::PackageManager::Apt,
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        assert!(doc.add(pkgs(&["haproxy"])));
        assert!(doc.add(pkgs(&["haproxy", "liblua5.3-0"])));
        assert!(!doc.add(pkgs(&["haproxy"])));
        assert_eq!(doc.entries.get(1), Some(&pkgs(&["haproxy", "liblua5.3-0"])));
        let text = serde_json::to_string(&doc).unwrap_or_default();
        let back: Doc = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, doc);
    }

    #[test]
    fn own_trees_are_not_recorded() {
        assert!(is_own("/var/lib/edgeup/backups/x", "/var/lib/edgeup"));
        assert!(is_own("/etc/edgeup", "/var/lib/edgeup"));
        assert!(!is_own("/etc/edgeupx/a", "/var/lib/edgeup"));
        assert!(!is_own("/etc/haproxy/haproxy.cfg", "/var/lib/edgeup"));
    }
}
