//! Carries out an uninstall plan, in its order, stopping at the first
//! failure (a second run plans again from the host and goes on from there).
//! Key material goes to one archive directory (0700, files 0600) unless
//! `--purge`.

use super::{Action, Layout, Options, Plan, Source};
use crate::distro::PackageManager;
use crate::host::systemd::Unit;
use crate::host::{Cmd, FileAttrs, Host};
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Where the archive of one uninstall goes (`/var/backups/edgeup-STAMP`).
pub const ARCHIVE_PARENT: &str = "/var/backups";

const ROOT_DIR: FileAttrs = FileAttrs {
    mode: 0o700,
    uid: 0,
    gid: 0,
};

pub struct Outcome {
    /// The archive directory, when something was archived.
    pub archive: Option<String>,
}

pub fn undo(
    host: &Host,
    layout: &Layout,
    opts: &Options,
    plan: &Plan,
    mut done: impl FnMut(&Action),
) -> Result<Outcome> {
    let mut archive = Archive {
        dir: format!("{ARCHIVE_PARENT}/edgeup-{}", stamp()),
        used: false,
        lock: format!("{}/lock", layout.state_dir),
    };
    for action in &plan.actions {
        act(host, layout, opts, action, &mut archive)
            .with_context(|| format!("uninstall: {}", action.describe(opts)))?;
        done(action);
    }
    Ok(Outcome {
        archive: archive.used.then_some(archive.dir),
    })
}

fn systemctl(host: &Host, args: &[&str]) -> Result<()> {
    host.run_ok(&Cmd::new("systemctl").args(args.iter().copied()))?;
    Ok(())
}

fn act(
    host: &Host,
    layout: &Layout,
    opts: &Options,
    action: &Action,
    archive: &mut Archive,
) -> Result<()> {
    match action {
        Action::StopUnit { unit } => systemctl(host, &["disable", "--now", unit]),
        Action::RestoreConfig { path, from } => restore_config(host, layout, path, from),
        Action::Restore { path, copy, attrs } => {
            let content = host
                .read(copy)?
                .with_context(|| format!("the ledger's copy {copy} is missing"))?;
            host.write_atomic(path, &content, attrs, None)
        }
        Action::Remove { path } => host.remove_file(path),
        Action::Archive { path } if opts.purge => host.remove_file(path),
        Action::Archive { path } => archive.take(host, path),
        Action::DaemonReload => systemctl(host, &["daemon-reload"]),
        Action::UnitState {
            unit,
            enabled,
            active,
        } => {
            match enabled {
                Some(true) => systemctl(host, &["enable", unit])?,
                Some(false) => systemctl(host, &["disable", unit])?,
                None => {}
            }
            match active {
                Some(true) => systemctl(host, &["start", unit]),
                Some(false) => systemctl(host, &["stop", unit]),
                None => Ok(()),
            }
        }
        Action::UfwDelete { port } => {
            host.run_ok(
                &Cmd::new("ufw")
                    .args(["delete", "allow"])
                    .arg(format!("{port}/tcp")),
            )?;
            Ok(())
        }
        Action::FirewalldRemove { service } => {
            let flag = format!("--remove-service={service}");
            host.run_ok(&Cmd::new("firewall-cmd").arg("--permanent").arg(&flag))?;
            host.run_ok(&Cmd::new("firewall-cmd").arg(&flag))?;
            Ok(())
        }
        Action::Selinux { name, value } => {
            host.run_ok(&Cmd::new("setsebool").arg("-P").arg(name).arg(if *value {
                "on"
            } else {
                "off"
            }))?;
            Ok(())
        }
        Action::DeleteLineage { name, certbot_dir } => {
            host.run_ok(
                &Cmd::new("certbot")
                    .args(["delete", "--non-interactive", "--config-dir"])
                    .arg(certbot_dir)
                    .arg("--cert-name")
                    .arg(name),
            )?;
            Ok(())
        }
        Action::RemovePackages { manager, names } => {
            let cmd = match manager {
                PackageManager::Apt => Cmd::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["purge", "-y"]),
                PackageManager::Dnf => Cmd::new("dnf").args(["remove", "-y"]),
            };
            host.run_ok(&cmd.args(names.iter().cloned()))?;
            Ok(())
        }
        Action::RemoveDir { path } => match std::fs::remove_dir(host.path(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // Something of someone else's is in it: it stays.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing directory {path}")),
        },
        Action::OwnTrees { dirs } => {
            for dir in dirs {
                if !opts.purge {
                    archive.take_tree(host, dir)?;
                }
                match std::fs::remove_dir_all(host.path(dir)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("removing {dir}")),
                }
            }
            Ok(())
        }
    }
}

/// The original haproxy.cfg in place, then HAProxy reloaded onto it (it
/// served edgeup's configuration until this moment).
fn restore_config(host: &Host, layout: &Layout, path: &str, from: &Source) -> Result<()> {
    let (content, attrs) = match from {
        Source::Saved { copy, attrs } => (host.read(copy)?, *attrs),
        Source::Backup { path: backup } => {
            let stat = host
                .stat(backup)?
                .with_context(|| format!("backup {backup} is missing"))?;
            (host.read(backup)?, stat.attrs())
        }
        Source::Absent => {
            if unit_active(host, &layout.haproxy_unit)? {
                systemctl(host, &["stop", &layout.haproxy_unit])?;
            }
            return host.remove_file(path);
        }
    };
    let content = content.with_context(|| format!("the original of {path} is missing"))?;
    host.write_atomic(path, &content, &attrs, None)?;
    if unit_active(host, &layout.haproxy_unit)? {
        systemctl(host, &["reload", &layout.haproxy_unit])?;
    }
    Ok(())
}

fn unit_active(host: &Host, unit: &str) -> Result<bool> {
    Ok(Unit::read(host, unit)?.active())
}

struct Archive {
    dir: String,
    used: bool,
    /// The run lock (held by this run): never archived.
    lock: String,
}

impl Archive {
    /// Moves `path` into the archive under its own host path (0600).
    fn take(&mut self, host: &Host, path: &str) -> Result<()> {
        let Some(stat) = host.stat(path)? else {
            return Ok(());
        };
        if stat.is_dir {
            bail!("{path} is a directory, not a file to archive");
        }
        let dest = format!("{}/{}", self.dir, path.trim_start_matches('/'));
        if let Some(parent) = Path::new(&dest).parent() {
            self.dirs(host, &parent.to_string_lossy())?;
        }
        let content = host
            .read_no_follow(path)?
            .with_context(|| format!("{path} is not a regular file; refusing to archive it"))?;
        host.write_atomic(
            &dest,
            &content,
            &FileAttrs {
                mode: 0o600,
                ..ROOT_DIR
            },
            None,
        )?;
        self.used = true;
        host.remove_file(path)
    }

    /// Every file under `dir` (but the run lock) into the archive.
    fn take_tree(&mut self, host: &Host, dir: &str) -> Result<()> {
        let entries = match std::fs::read_dir(host.path(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {dir}")),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {dir}"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{dir}/{name}");
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {path}"))?;
            if kind.is_dir() {
                self.take_tree(host, &path)?;
            } else if kind.is_file() && path != self.lock {
                self.take(host, &path)?;
            }
        }
        Ok(())
    }

    /// The archive's directories down to `dir`, each 0700.
    fn dirs(&self, host: &Host, dir: &str) -> Result<()> {
        if host.stat(ARCHIVE_PARENT)?.is_none() {
            host.ensure_dir(
                ARCHIVE_PARENT,
                &FileAttrs {
                    mode: 0o755,
                    ..ROOT_DIR
                },
            )?;
        }
        let mut at = String::new();
        for part in dir.trim_start_matches('/').split('/') {
            at = format!("{at}/{part}");
            if at.len() > self.dir.len() || at == self.dir {
                host.ensure_dir(&at, &ROOT_DIR)?;
            }
        }
        Ok(())
    }
}

/// UTC `YYYYmmddTHHMMSSZ`, so archives sort by time.
fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}
