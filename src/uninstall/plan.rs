//! What is left to undo on this host: the ledger's entries (plus, without a
//! complete ledger, the files edgeup is known to write), each compared with
//! the host as it is now. Reads only, apart from a staged copy of the
//! original haproxy.cfg that `haproxy -c` checks (removed at once).

use super::{Action, Layout, Options, Plan, Source};
use crate::host::systemd::Unit;
use crate::host::{Cmd, FileAttrs, Host};
use crate::ledger::{self, Before, Doc, Entry};
use crate::paths::{RENEW_SERVICE, RENEW_TIMER, UNIT_DIR};
use crate::steps::{firewall, selinux};
use anyhow::{Context, Result};

pub fn plan(host: &Host, layout: &Layout, opts: &Options) -> Result<Plan> {
    let recorded = read_ledger(host, &layout.state_dir)?;
    if recorded.is_none() && !traces(host, layout)? {
        return Ok(Plan::default());
    }
    let doc = recorded.clone().unwrap_or_default();
    let mut plan = Plan::default();
    if recorded.is_none() {
        plan.notes.push(
            "no ledger: an earlier edgeup release converged this host, so the packages, firewall \
             rules, SELinux booleans and unit states it changed are not known and stay as they are"
                .into(),
        );
    } else if !doc.complete {
        plan.notes.push(
            "the ledger was started on a host an earlier edgeup release had converged: what that \
             release changed is not known (only what was recorded since is undone)"
                .into(),
        );
    }
    let files = files(host, layout, &doc)?;
    let own_unit = |path: &str| {
        path.strip_prefix(UNIT_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .filter(|name| {
                !name.contains('/') && (name.ends_with(".service") || name.ends_with(".timer"))
            })
            .map(str::to_string)
    };
    for (path, before) in &files {
        if matches!(before, Before::Saved { .. }) || host.stat(path)?.is_none() {
            continue;
        }
        if let Some(unit) = own_unit(path) {
            let now = Unit::read(host, &unit)?;
            // A static unit (the timer's service) has nothing to disable.
            if matches!(now.unit_file_state.as_str(), "enabled" | "enabled-runtime") || now.active()
            {
                plan.actions.push(Action::StopUnit { unit });
            }
        }
    }
    let config_kept = config(host, layout, opts, &files, &mut plan)?;
    let map = crate::render::sites_map_path_beside(&layout.haproxy_config);
    let mut units_changed = false;
    for (path, before) in &files {
        if *path == layout.haproxy_config {
            continue;
        }
        if config_kept && (*path == map || in_dir(path, &layout.certs_dir)) {
            continue;
        }
        let action = match before {
            Before::Saved { .. } => {
                let Some((copy, attrs)) = before.saved() else {
                    continue;
                };
                let same = host.read_no_follow(path)? == host.read(copy)?
                    && host.stat(path)?.is_some_and(|s| s.matches(&attrs));
                (!same).then(|| Action::Restore {
                    path: path.clone(),
                    copy: copy.to_string(),
                    attrs,
                })
            }
            Before::Absent | Before::Edgeup => match host.stat(path)? {
                None => None,
                Some(_) if holds_key(path, layout) => Some(Action::Archive { path: path.clone() }),
                Some(_) => Some(Action::Remove { path: path.clone() }),
            },
        };
        if let Some(action) = action {
            units_changed |= in_dir(path, UNIT_DIR);
            plan.actions.push(action);
        }
    }
    if units_changed {
        plan.actions.push(Action::DaemonReload);
    }
    for entry in &doc.entries {
        if let Some(action) = undo_entry(host, opts, &files, entry, &mut plan.notes)? {
            plan.actions.push(action);
        }
    }
    for entry in doc.entries.iter().rev() {
        if let Entry::Dir { path } = entry
            && host.stat(path)?.is_some_and(|s| s.is_dir)
            && !(config_kept && *path == layout.certs_dir)
        {
            plan.actions.push(Action::RemoveDir { path: path.clone() });
        }
    }
    let own: Vec<String> = [layout.state_dir.as_str(), crate::paths::CONFIG_DIR]
        .iter()
        .filter(|d| host.stat(d).ok().flatten().is_some())
        .map(|d| d.to_string())
        .collect();
    if !own.is_empty() {
        plan.actions.push(Action::OwnTrees { dirs: own });
    }
    Ok(plan)
}

fn read_ledger(host: &Host, state_dir: &str) -> Result<Option<Doc>> {
    let path = ledger::path(state_dir);
    host.read_string(&path)?
        .map(|text| {
            serde_json::from_str(&text)
                .with_context(|| format!("{path} is not a ledger this edgeup can read"))
        })
        .transpose()
}

/// Anything edgeup leaves on a host it converged (without a ledger).
fn traces(host: &Host, layout: &Layout) -> Result<bool> {
    let units = [RENEW_TIMER, RENEW_SERVICE].map(|unit| format!("{UNIT_DIR}/{unit}"));
    for path in [layout.state_dir.as_str(), crate::paths::CONFIG_DIR]
        .into_iter()
        .chain(units.iter().map(String::as_str))
    {
        if host.stat(path)?.is_some() {
            return Ok(true);
        }
    }
    managed(host, &layout.haproxy_config)
}

fn managed(host: &Host, path: &str) -> Result<bool> {
    Ok(host
        .read_no_follow(path)?
        .is_some_and(|c| c.starts_with(ledger::MANAGED_MARK.as_bytes())))
}

/// The ledger's files, and (best effort, never over a ledger entry) the
/// files edgeup writes that carry no record: its units, binary, host map,
/// certbot hooks and drop-ins, and the recorded sites' PEMs.
fn files(host: &Host, layout: &Layout, doc: &Doc) -> Result<Vec<(String, Before)>> {
    let mut files: Vec<(String, Before)> = doc
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::File { path, before } => Some((path.clone(), before.clone())),
            _ => None,
        })
        .collect();
    if doc.complete {
        return Ok(files);
    }
    let mut known = vec![
        format!("{UNIT_DIR}/{RENEW_TIMER}"),
        format!("{UNIT_DIR}/{RENEW_SERVICE}"),
        crate::paths::INSTALL_PATH.to_string(),
        crate::render::sites_map_path_beside(&layout.haproxy_config),
    ];
    if managed(host, &layout.haproxy_config)? {
        known.push(layout.haproxy_config.clone());
    }
    for domain in recorded_domains(host) {
        known.push(format!("{}/{domain}.pem", layout.certs_dir));
        known.push(crate::acme::certbot::hook_path(
            &layout.certbot_dir,
            &domain,
        ));
    }
    if let Ok(dirs) = std::fs::read_dir(host.path(UNIT_DIR)) {
        for dir in dirs.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if name.ends_with(".d") {
                known.push(format!("{UNIT_DIR}/{name}/edgeup-ca-bundle.conf"));
            }
        }
    }
    for path in known {
        if !files.iter().any(|(p, _)| *p == path) && host.stat(&path)?.is_some() {
            files.push((path, Before::Edgeup));
        }
    }
    Ok(files)
}

fn recorded_domains(host: &Host) -> Vec<String> {
    let text = host
        .read_string(crate::paths::SITE_FILE)
        .ok()
        .flatten()
        .unwrap_or_default();
    crate::site::config::from_secret_yaml::<crate::site::SiteFile>(&text)
        .ok()
        .as_ref()
        .and_then(crate::site::Config::from_file)
        .map(|c| c.domains().iter().map(|d| d.to_string()).collect())
        .unwrap_or_default()
}

/// The haproxy.cfg action, if any; true when edgeup's config stays (and
/// with it the host map and certificates it names).
fn config(
    host: &Host,
    layout: &Layout,
    opts: &Options,
    files: &[(String, Before)],
    plan: &mut Plan,
) -> Result<bool> {
    let path = &layout.haproxy_config;
    let Some((_, before)) = files.iter().find(|(p, _)| p == path) else {
        return Ok(false);
    };
    let current = host.read_no_follow(path)?;
    let from = match before {
        Before::Saved { .. } => {
            let Some((copy, attrs)) = before.saved() else {
                return Ok(false);
            };
            if current == host.read(copy)? {
                return Ok(false);
            }
            Source::Saved {
                copy: copy.to_string(),
                attrs,
            }
        }
        Before::Absent if current.is_none() => return Ok(false),
        Before::Absent => Source::Absent,
        Before::Edgeup => match oldest_foreign_backup(host, layout, path)? {
            Some(backup) => Source::Backup { path: backup },
            None => {
                plan.notes.push(format!(
                    "{path} as it was before edgeup is not known (no ledger, no backup without \
                     edgeup's header): it stays, with the host map and certificates it uses"
                ));
                return Ok(true);
            }
        },
    };
    let original = match &from {
        Source::Saved { copy, .. } => host.read(copy)?,
        Source::Backup { path } => host.read(path)?,
        Source::Absent => None,
    };
    if let Some(original) = original
        && let Some(problem) = rejected(host, path, &original)?
    {
        if !opts.force {
            plan.notes.push(format!(
                "the original {path} does not pass `haproxy -c` ({problem}): edgeup's \
                 configuration stays, with the host map and certificates it uses \
                 (--force restores the original anyway)"
            ));
            return Ok(true);
        }
        plan.notes.push(format!(
            "the original {path} does not pass `haproxy -c` ({problem}); restored anyway (--force)"
        ));
    }
    plan.actions.push(Action::RestoreConfig {
        path: path.clone(),
        from,
    });
    Ok(false)
}

/// `haproxy -c` on a staged copy of `content` beside `path`; None: accepted
/// (or no haproxy to ask).
fn rejected(host: &Host, path: &str, content: &[u8]) -> Result<Option<String>> {
    if !host.has_program("haproxy") {
        return Ok(None);
    }
    let attrs = FileAttrs {
        mode: 0o600,
        uid: 0,
        gid: 0,
    };
    let staged = host.stage(path, content, &attrs, None)?;
    let out = host.run(
        &Cmd::new("haproxy")
            .args(["-c", "-q", "-f"])
            .arg(staged.temp_path().to_string_lossy().into_owned()),
    )?;
    Ok((out.status != 0).then(|| {
        out.stderr_tail()
            .lines()
            .find(|l| l.contains("ALERT"))
            .unwrap_or("rejected")
            .trim()
            .to_string()
    }))
}

fn oldest_foreign_backup(host: &Host, layout: &Layout, path: &str) -> Result<Option<String>> {
    for backup in host.backups_of(path, &layout.state_dir)? {
        if !managed(host, &backup)? {
            return Ok(Some(backup));
        }
    }
    Ok(None)
}

fn in_dir(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn holds_key(path: &str, layout: &Layout) -> bool {
    in_dir(path, &layout.certs_dir) || path.ends_with(".pem") || path.ends_with(".key")
}

fn undo_entry(
    host: &Host,
    opts: &Options,
    files: &[(String, Before)],
    entry: &Entry,
    notes: &mut Vec<String>,
) -> Result<Option<Action>> {
    Ok(match entry {
        Entry::Unit {
            name,
            enabled,
            active,
        } => {
            let own = files.iter().any(|(p, b)| {
                *p == format!("{UNIT_DIR}/{name}") && !matches!(b, Before::Saved { .. })
            });
            if own {
                return Ok(None);
            }
            let now = Unit::read(host, name)?;
            if !now.loaded() {
                return Ok(None);
            }
            let (now_enabled, now_active) = (now.enabled(), now.active());
            let enabled = (now_enabled != *enabled).then_some(*enabled);
            let active = (now_active != *active).then_some(*active);
            (enabled.is_some() || active.is_some()).then(|| Action::UnitState {
                unit: name.clone(),
                enabled,
                active,
            })
        }
        Entry::Ufw { port } => {
            let rules = host.read_string("/etc/ufw/user.rules")?.unwrap_or_default();
            firewall::ufw_allows(&rules, *port).then_some(Action::UfwDelete { port: *port })
        }
        Entry::Firewalld { service } => {
            let listed = host.has_program("firewall-cmd")
                && host
                    .run(&Cmd::new("firewall-cmd").args(["--permanent", "--list-services"]))?
                    .stdout
                    .split_whitespace()
                    .any(|s| s == service);
            listed.then(|| Action::FirewalldRemove {
                service: service.clone(),
            })
        }
        Entry::SelinuxBoolean { name, value } => {
            let now = selinux::current(host, name)?;
            (now.is_some_and(|v| v != *value)).then(|| Action::Selinux {
                name: name.clone(),
                value: *value,
            })
        }
        Entry::CertbotLineage { name, certbot_dir } => {
            let exists = host
                .stat(&format!("{certbot_dir}/renewal/{name}.conf"))?
                .is_some();
            if exists && opts.purge {
                Some(Action::DeleteLineage {
                    name: name.clone(),
                    certbot_dir: certbot_dir.clone(),
                })
            } else {
                if exists {
                    notes.push(format!(
                        "certbot lineage {name} (your certificate, in {certbot_dir}) is kept; \
                         --purge deletes it"
                    ));
                }
                None
            }
        }
        Entry::Packages { manager, names } => {
            let still = host.installed_packages(*manager, names)?;
            let names: Vec<String> = names
                .iter()
                .filter(|n| still.contains_key(*n))
                .cloned()
                .collect();
            if names.is_empty() {
                None
            } else if opts.remove_packages {
                Some(Action::RemovePackages {
                    manager: *manager,
                    names,
                })
            } else {
                notes.push(format!(
                    "packages edgeup installed are kept: {}; --remove-packages removes them",
                    names.join(" ")
                ));
                None
            }
        }
        Entry::File { .. } | Entry::Dir { .. } => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;
    use std::fs;

    fn layout() -> Layout {
        Layout {
            haproxy_config: "/etc/haproxy/haproxy.cfg".into(),
            haproxy_unit: "haproxy.service".into(),
            certs_dir: "/etc/haproxy/certs".into(),
            certbot_dir: "/etc/letsencrypt".into(),
            state_dir: "/var/lib/edgeup".into(),
        }
    }

    fn host(root: &std::path::Path) -> Host {
        Host::new(
            root.to_path_buf(),
            Box::new(ScriptedRunner::new(root.to_path_buf())),
        )
    }

    #[test]
    fn a_host_without_edgeup_has_nothing_to_undo() -> Result<()> {
        let dir = tempfile::tempdir()?;
        fs::create_dir_all(dir.path().join("etc/haproxy"))?;
        fs::write(dir.path().join("etc/haproxy/haproxy.cfg"), "global\n")?;
        let p = plan(&host(dir.path()), &layout(), &Options::default())?;
        assert!(p.actions.is_empty() && p.notes.is_empty(), "{p:?}");
        Ok(())
    }

    #[test]
    fn without_a_ledger_the_oldest_backup_not_by_edgeup_is_the_original() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        fs::create_dir_all(root.join("etc/haproxy"))?;
        fs::create_dir_all(root.join("etc/systemd/system"))?;
        fs::create_dir_all(root.join("var/lib/edgeup/backups"))?;
        let managed = format!("{}: do not edit\nglobal\n", ledger::MANAGED_MARK);
        fs::write(root.join("etc/haproxy/haproxy.cfg"), &managed)?;
        fs::write(root.join("etc/haproxy/edgeup-sites.map"), "a.example b\n")?;
        fs::write(
            root.join("etc/systemd/system/edgeup-renew.timer"),
            "[Timer]\n",
        )?;
        let backups = root.join("var/lib/edgeup/backups");
        fs::write(
            backups.join("etc%haproxy%haproxy.cfg.00000000002.000000000"),
            &managed,
        )?;
        fs::write(
            backups.join("etc%haproxy%haproxy.cfg.00000000001.000000000"),
            "global\n",
        )?;
        let p = plan(&host(root), &layout(), &Options::default())?;
        assert!(
            p.notes.iter().any(|n| n.starts_with("no ledger")),
            "{:?}",
            p.notes
        );
        let restore = p.actions.iter().find_map(|a| match a {
            Action::RestoreConfig { from, .. } => Some(from.clone()),
            _ => None,
        });
        assert_eq!(
            restore,
            Some(Source::Backup {
                path: "/var/lib/edgeup/backups/etc%haproxy%haproxy.cfg.00000000001.000000000"
                    .into()
            })
        );
        for want in [
            Action::Remove {
                path: "/etc/haproxy/edgeup-sites.map".into(),
            },
            Action::Remove {
                path: "/etc/systemd/system/edgeup-renew.timer".into(),
            },
            Action::DaemonReload,
        ] {
            assert!(p.actions.contains(&want), "{want:?} missing: {p:?}");
        }
        // No backup without edgeup's header: the config (and what it uses) stays.
        fs::remove_file(backups.join("etc%haproxy%haproxy.cfg.00000000001.000000000"))?;
        let p = plan(&host(root), &layout(), &Options::default())?;
        assert!(
            !p.actions
                .iter()
                .any(|a: &Action| matches!(a, Action::RestoreConfig { .. })
                    || *a
                        == Action::Remove {
                            path: "/etc/haproxy/edgeup-sites.map".into()
                        }),
            "{p:?}"
        );
        assert!(
            p.notes.iter().any(|n| n.contains("is not known")),
            "{:?}",
            p.notes
        );
        Ok(())
    }
}
