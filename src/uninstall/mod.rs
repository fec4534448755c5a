//! `edgeup uninstall`: the host as it was before edgeup's first apply, from
//! the ledger (src/ledger). `plan` reads the host and the ledger and lists
//! what is left to undo, each action only where the host still differs (so
//! a second uninstall finds nothing); `undo` carries the list out in an
//! order that keeps HAProxy serving until the restored haproxy.cfg (checked
//! with `haproxy -c` first) is in place. Without a ledger (a host converged
//! by an earlier release) the plan is best effort and its notes say what
//! cannot be known.

mod plan;
mod undo;

pub use plan::plan;
pub use undo::undo;

use crate::host::FileAttrs;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Delete certificates, keys, the ACME account and certbot lineages
    /// edgeup created instead of archiving / keeping them.
    pub purge: bool,
    /// Remove the packages edgeup installed.
    pub remove_packages: bool,
    /// Restore the original haproxy.cfg even when `haproxy -c` rejects it.
    pub force: bool,
}

/// What this host's profile says (paths and names uninstall needs).
#[derive(Debug, Clone)]
pub struct Layout {
    pub haproxy_config: String,
    pub haproxy_unit: String,
    pub certs_dir: String,
    pub certbot_dir: String,
    pub state_dir: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The original, as the ledger saved it.
    Saved { copy: String, attrs: FileAttrs },
    /// Best effort: the oldest rolling backup without edgeup's header.
    Backup { path: String },
    /// There was no file.
    Absent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One of edgeup's own units: stopped and disabled (its file goes later).
    StopUnit {
        unit: String,
    },
    /// haproxy.cfg back to its original, validated first; HAProxy reloaded.
    RestoreConfig {
        path: String,
        from: Source,
    },
    Restore {
        path: String,
        copy: String,
        attrs: FileAttrs,
    },
    Remove {
        path: String,
    },
    /// Holds a private key: moved to the archive (deleted with --purge).
    Archive {
        path: String,
    },
    DaemonReload,
    /// A unit edgeup enabled or started: back to how it was.
    UnitState {
        unit: String,
        enabled: Option<bool>,
        active: Option<bool>,
    },
    UfwDelete {
        port: u16,
    },
    FirewalldRemove {
        service: String,
    },
    Selinux {
        name: String,
        value: bool,
    },
    DeleteLineage {
        name: String,
        certbot_dir: String,
    },
    RemovePackages {
        manager: crate::distro::PackageManager,
        names: Vec<String>,
    },
    /// A directory edgeup created, when it is empty by then.
    RemoveDir {
        path: String,
    },
    /// /var/lib/edgeup and /etc/edgeup: key material archived, then removed.
    OwnTrees {
        dirs: Vec<String>,
    },
}

impl Action {
    pub fn describe(&self, opts: &Options) -> String {
        match self {
            Action::StopUnit { unit } => format!("stop and disable {unit}"),
            Action::RestoreConfig { path, from } => match from {
                Source::Saved { .. } => format!(
                    "restore {path} as it was before edgeup (checked with haproxy -c), reload HAProxy"
                ),
                Source::Backup { path: b } => format!(
                    "restore {path} from {b}, the oldest backup not written by edgeup (best effort), reload HAProxy"
                ),
                Source::Absent => {
                    format!("remove {path} (there was none before edgeup) and stop HAProxy")
                }
            },
            Action::Restore { path, .. } => format!("restore {path} as it was before edgeup"),
            Action::Remove { path } => format!("remove {path}"),
            Action::Archive { path } if opts.purge => format!("delete {path} (--purge)"),
            Action::Archive { path } => format!("move {path} to the archive"),
            Action::DaemonReload => "systemctl daemon-reload".into(),
            Action::UnitState {
                unit,
                enabled,
                active,
            } => {
                let mut what = Vec::new();
                match enabled {
                    Some(true) => what.push("enable"),
                    Some(false) => what.push("disable"),
                    None => {}
                }
                match active {
                    Some(true) => what.push("start"),
                    Some(false) => what.push("stop"),
                    None => {}
                }
                format!("{} {unit} (as before edgeup)", what.join(" and "))
            }
            Action::UfwDelete { port } => format!("ufw: delete the rule allowing {port}/tcp"),
            Action::FirewalldRemove { service } => {
                format!("firewalld: remove service {service} (permanent and runtime)")
            }
            Action::Selinux { name, value } => {
                format!("setsebool -P {name} {}", if *value { "on" } else { "off" })
            }
            Action::DeleteLineage { name, .. } => {
                format!("certbot delete --cert-name {name} (--purge)")
            }
            Action::RemovePackages { names, .. } => {
                format!("remove packages {} (--remove-packages)", names.join(" "))
            }
            Action::RemoveDir { path } => format!("remove directory {path} (if empty)"),
            Action::OwnTrees { dirs } if opts.purge => {
                format!("delete {} (--purge)", dirs.join(" and "))
            }
            Action::OwnTrees { dirs } => format!(
                "move the ACME account, certificates, keys and site file to the archive; remove {}",
                dirs.join(" and ")
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// What is left as it is, and why (best effort, a rejected original).
    pub notes: Vec<String>,
}
