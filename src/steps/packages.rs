//! Packages installed with the distro's package manager (apt or dnf).

use super::{Ctx, Drift, State, Step};
use crate::host::Cmd;
use anyhow::Result;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    pub names: Vec<String>,
}

/// apt lists older than this are refreshed before installing.
const APT_LISTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

impl Packages {
    fn missing(&self, ctx: &Ctx) -> Result<Vec<String>> {
        let manager = &ctx.vars.distro.package_manager;
        let installed = ctx.host.installed_packages(manager, &self.names)?;
        Ok(self
            .names
            .iter()
            .filter(|n| !installed.contains_key(*n))
            .cloned()
            .collect())
    }
}

impl Step for Packages {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        let missing = self.missing(ctx)?;
        if missing.is_empty() {
            return Ok(State::Converged(format!(
                "{} installed",
                self.names.join(", ")
            )));
        }
        Ok(State::Drift(Drift::new(
            missing.iter().map(|p| format!("install {p}")).collect(),
        )))
    }

    fn apply(&self, ctx: &Ctx, _drift: &Drift) -> Result<()> {
        let missing = self.missing(ctx)?;
        match ctx.vars.distro.package_manager.as_str() {
            "apt" => apt_install(ctx, &missing),
            _ => {
                ctx.host
                    .run_ok(&Cmd::new("dnf").arg("install").arg("-y").args(missing))?;
                Ok(())
            }
        }
    }
}

fn apt_install(ctx: &Ctx, packages: &[String]) -> Result<()> {
    let install = || {
        Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages.iter().cloned())
    };
    let update = || {
        Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .arg("update")
    };
    let refreshed = if apt_lists_stale(ctx) {
        ctx.host.run_ok(&update())?;
        true
    } else {
        false
    };
    let out = ctx.host.run(&install())?;
    if out.status == 0 {
        return Ok(());
    }
    // Lists fresh by age can still lack a package (new mirror, added source):
    // refresh once and retry before giving up.
    if !refreshed {
        ctx.host.run_ok(&update())?;
        ctx.host.run_ok(&install())?;
        return Ok(());
    }
    anyhow::bail!("`{}` failed: {}", install().display(), out.stderr_tail())
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
