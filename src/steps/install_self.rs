//! This edgeup at the fixed, root-owned path the renewal unit runs
//! (`acme::renewal_binary`): a timer must never run whatever file `apply`
//! happened to be started from (a user-owned download, a path with a space
//! or `%` that systemd would split or expand). For `/usr/local/bin/edgeup`
//! (0755 root): converged when the file there is a regular file (not a
//! link), root's, writable by root only, and this binary: no read at all
//! when edgeup runs from there already. For the packaged `/usr/bin/edgeup`
//! (chosen only when this run is that file): converged as it is; it is the
//! package manager's, never written or chmodded here.

use super::directory::{AttrChange, attr_changes, attr_lines};
use super::{Ctx, Describe, State, Step};
use crate::host::FileAttrs;
use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstallSelf {
    pub dest: String,
}

const ATTRS: FileAttrs = FileAttrs {
    mode: 0o755,
    uid: 0,
    gid: 0,
};

impl InstallSelf {
    /// The running binary, when it is not `dest` itself (None: it is).
    fn source(&self, ctx: &Ctx) -> Result<Option<std::path::PathBuf>> {
        let exe = ctx
            .host
            .running_binary()
            .context("finding the running edgeup binary")?
            .to_path_buf();
        let dest = ctx.host.path(&self.dest);
        let same = match (exe.canonicalize(), dest.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        Ok((!same).then_some(exe))
    }

    /// `dest` is the package's path: it must be this run (never written).
    fn packaged(&self, ctx: &Ctx) -> Result<bool> {
        if self.dest != crate::paths::PACKAGED_PATH {
            return Ok(false);
        }
        if !crate::acme::renewal_binary::runs_packaged(ctx.host) {
            bail!(
                "{} belongs to the package manager and this edgeup is not it: edgeup never \
                 writes it (the renewal unit runs {} for an edgeup not from the package)",
                self.dest,
                crate::paths::INSTALL_PATH
            );
        }
        Ok(true)
    }
}

/// What is at `dest` instead of this edgeup.
#[derive(Debug, Clone, PartialEq)]
pub enum Installed {
    Missing,
    /// A link or a directory.
    NotRegular,
    /// Another binary than the running one (at this path).
    Another(std::path::PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstallDrift {
    dest: String,
    file: Option<Installed>,
    attrs: Vec<AttrChange>,
}

impl Describe for InstallDrift {
    fn lines(&self) -> Vec<String> {
        let dest = &self.dest;
        let file = self.file.as_ref().map(|f| match f {
            Installed::Missing => format!("install this edgeup at {dest}"),
            Installed::NotRegular => {
                format!("replace {dest} (not a regular file) with this edgeup")
            }
            Installed::Another(exe) => {
                format!("install this edgeup ({}) at {dest}", exe.display())
            }
        });
        file.into_iter().chain(attr_lines(&self.attrs)).collect()
    }
}

impl Step for InstallSelf {
    type Drift = InstallDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<InstallDrift>> {
        if self.packaged(ctx)? {
            return Ok(State::Converged(format!(
                "{} is this edgeup, from its package",
                self.dest
            )));
        }
        let mut drift = InstallDrift {
            dest: self.dest.clone(),
            file: None,
            attrs: Vec::new(),
        };
        match ctx.host.stat(&self.dest)? {
            None => drift.file = Some(Installed::Missing),
            Some(stat) => {
                let link = std::fs::symlink_metadata(ctx.host.path(&self.dest))
                    .is_ok_and(|m| m.file_type().is_symlink());
                if link || stat.is_dir {
                    drift.file = Some(Installed::NotRegular);
                } else {
                    if let Some(exe) = self.source(ctx)? {
                        let ours = std::fs::read(&exe)
                            .with_context(|| format!("reading {}", exe.display()))?;
                        if ctx.host.read(&self.dest)?.as_deref() != Some(ours.as_slice()) {
                            drift.file = Some(Installed::Another(exe));
                        }
                    }
                    drift.attrs = attr_changes(ctx.host, &stat, &ATTRS, &self.dest);
                }
            }
        }
        if drift.file.is_none() && drift.attrs.is_empty() {
            return Ok(State::Converged(format!("{} is this edgeup", self.dest)));
        }
        Ok(State::Drift(drift))
    }

    /// Whatever differs, the file is written whole: mode and owner come with it.
    fn apply(&self, ctx: &Ctx, _drift: &InstallDrift) -> Result<()> {
        if self.packaged(ctx)? {
            return Ok(());
        }
        let bytes = match self.source(ctx)? {
            Some(exe) => {
                std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?
            }
            None => ctx
                .host
                .read(&self.dest)?
                .with_context(|| format!("{} vanished", self.dest))?,
        };
        // A new file renamed over the path: a link there is replaced, never followed.
        ctx.host.write_atomic(&self.dest, &bytes, &ATTRS, None)
    }
}
