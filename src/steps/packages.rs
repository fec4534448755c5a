//! Packages installed with the distro's package manager (apt or dnf).

use super::{Ctx, Describe, State, Step};
use crate::distro::PackageManager;
use crate::host::Cmd;
use anyhow::Result;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// Package names; `NAME=SOURCE` installs NAME from SOURCE (e.g. an rpm URL)
    /// while the installed check still looks for NAME.
    pub names: Vec<String>,
}

/// (name to check, what to hand the package manager).
fn split(entry: &str) -> (&str, &str) {
    entry.split_once('=').unwrap_or((entry, entry))
}

/// apt lists older than this are refreshed before installing.
const APT_LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

impl Packages {
    /// The entries whose package is not installed.
    fn missing(&self, ctx: &Ctx) -> Result<Vec<&str>> {
        let manager = ctx.vars.distro.package_manager;
        let names: Vec<String> = self.names.iter().map(|e| split(e).0.to_string()).collect();
        let installed = ctx.host.installed_packages(manager, &names)?;
        Ok(self
            .names
            .iter()
            .map(String::as_str)
            .filter(|e| !installed.contains_key(split(e).0))
            .collect())
    }
}

/// The entries (as the spec writes them) whose package is not installed.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing(Vec<String>);

impl Describe for Missing {
    fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|e| format!("install {}", split(e).0))
            .collect()
    }
}

impl Step for Packages {
    type Drift = Missing;

    fn check(&self, ctx: &Ctx) -> Result<State<Missing>> {
        let missing = self.missing(ctx)?;
        if missing.is_empty() {
            return Ok(State::Converged(format!(
                "{} installed",
                self.names.join(", ")
            )));
        }
        Ok(State::Drift(Missing(
            missing.into_iter().map(str::to_string).collect(),
        )))
    }

    fn apply(&self, ctx: &Ctx, drift: &Missing) -> Result<()> {
        let missing = &drift.0;
        let sources: Vec<String> = missing.iter().map(|e| split(e).1.to_string()).collect();
        let manager = ctx.vars.distro.package_manager;
        // The ledger first names what is asked for, then (dpkg) everything
        // the install added: `uninstall --remove-packages` takes out exactly that.
        let noted = |names: Vec<String>| {
            ctx.host
                .note(crate::ledger::Entry::Packages { manager, names })
        };
        noted(missing.iter().map(|e| split(e).0.to_string()).collect())?;
        match manager {
            PackageManager::Apt => {
                let before = ctx.host.dpkg_all_installed()?;
                let result = apt_install(ctx, &sources);
                let added = ctx.host.dpkg_all_installed()?;
                noted(added.difference(&before).cloned().collect())?;
                result
            }
            PackageManager::Dnf => {
                ctx.host
                    .run_ok(&Cmd::new("dnf").arg("install").arg("-y").args(sources))?;
                Ok(())
            }
        }
    }
}

/// How long apt waits for another apt/dpkg (unattended-upgrades on a fresh
/// VM, an apt left running by a killed run) instead of failing at once.
const APT_LOCK_TIMEOUT: &str = "DPkg::Lock::Timeout=300";

fn apt_get(args: &[&str]) -> Cmd {
    Cmd::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-o", APT_LOCK_TIMEOUT])
        .args(args.iter().copied())
}

fn apt_install(ctx: &Ctx, packages: &[String]) -> Result<()> {
    let install =
        || apt_get(&["install", "-y", "--no-install-recommends"]).args(packages.iter().cloned());
    let refreshed = if apt_lists_stale(ctx) {
        ctx.host.run_ok(&apt_get(&["update"]))?;
        true
    } else {
        false
    };
    let out = ctx.host.run(&install())?;
    if out.status == 0 {
        return Ok(());
    }
    // A dpkg run that was killed (power loss, a killed edgeup) makes apt refuse
    // until `dpkg --configure -a` finishes it; keep existing config files.
    // (apt has already waited for any live dpkg to let go of its lock.)
    if out.stderr.contains("dpkg was interrupted") {
        let removed = finish_interrupted_dpkg(ctx)?;
        // `-f`: a package taken out there comes back, and its dependents
        // are configured with it.
        let retry = if removed {
            apt_get(&["install", "-y", "-f", "--no-install-recommends"])
                .args(packages.iter().cloned())
        } else {
            install()
        };
        ctx.host.run_ok(&retry)?;
        return Ok(());
    }
    // Lists fresh by age can still lack a package (new mirror, added source):
    // refresh once and retry before giving up.
    if !refreshed {
        ctx.host.run_ok(&apt_get(&["update"]))?;
        ctx.host.run_ok(&install())?;
        return Ok(());
    }
    anyhow::bail!("`{}` failed: {}", install().display(), out.stderr_tail())
}

/// `dpkg --configure -a`, keeping existing config files. A package dpkg
/// was killed while unpacking ("in a very bad inconsistent state") cannot
/// be configured, and apt refuses to run until dpkg is done: it is taken
/// out (`--force-remove-reinstreq`, `--force-depends`: its dependents stay,
/// unconfigured) so dpkg's journal is closed, and the install that follows
/// (`apt-get -f`) puts it back from the archive and configures the rest.
/// True when a package was taken out.
fn finish_interrupted_dpkg(ctx: &Ctx) -> Result<bool> {
    let dpkg = || {
        Cmd::new("dpkg")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["--force-confdef", "--force-confold"])
    };
    let configure = || dpkg().args(["--configure", "-a"]);
    let first = ctx.host.run(&configure())?;
    if first.status == 0 {
        return Ok(false);
    }
    let status = ctx
        .host
        .read_string("/var/lib/dpkg/status")?
        .unwrap_or_default();
    let broken = crate::host::pkgdb::reinstall_required(&status);
    if broken.is_empty() {
        first.success_of(&configure())?;
        return Ok(false);
    }
    ctx.host.run_ok(
        &dpkg()
            .args(["--force-remove-reinstreq", "--force-depends", "--remove"])
            .args(broken),
    )?;
    // Dependents of what was taken out cannot be configured yet: apt does it.
    ctx.host.run(&configure())?;
    Ok(true)
}

/// Missing or older than a day: `apt-get update` first.
fn apt_lists_stale(ctx: &Ctx) -> bool {
    let lists = ctx.host.path("/var/lib/apt/lists");
    let Ok(entries) = std::fs::read_dir(&lists) else {
        return true;
    };
    let newest = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    match newest {
        None => true,
        Some(t) => SystemTime::now()
            .duration_since(t)
            .map(|age| age > APT_LISTS_MAX_AGE)
            .unwrap_or(false),
    }
}
