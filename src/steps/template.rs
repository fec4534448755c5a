//! A file rendered from a template (or given inline): compared with the live
//! file, staged, validated (e.g. `haproxy -c -f {}`), backed up and swapped in
//! atomically. The swap is recorded so a failed reload can roll it back.

use super::directory::{attrs, file_attr_drift};
use super::{Ctx, Diff, Drift, State, Step, text_diff};
use crate::host::Cmd;
use crate::render;
use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Template name under templates/ (exclusive with `content`).
    #[serde(default)]
    pub src: Option<String>,
    /// Literal content (exclusive with `src`).
    #[serde(default)]
    pub content: Option<String>,
    pub dest: String,
    pub mode: super::directory::Mode,
    pub owner: String,
    pub group: String,
    /// Command that must accept the staged file; `{}` is replaced by its path.
    #[serde(default)]
    pub validate: Option<String>,
    /// Holds a secret: diffs show nothing of it.
    #[serde(default)]
    pub sensitive: bool,
}

impl Template {
    fn desired(&self, ctx: &Ctx) -> Result<String> {
        match (&self.src, &self.content) {
            (Some(src), None) => render::render_template(ctx.assets, src, ctx.vars),
            (None, Some(content)) => Ok(content.clone()),
            _ => bail!(
                "playbook step for {} needs exactly one of `src` or `content`",
                self.dest
            ),
        }
    }
}

impl Step for Template {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        let desired = self.desired(ctx)?;
        let current = ctx.host.read_string(&self.dest)?;
        let mut drift = Drift::new(Vec::new());
        match &current {
            None => drift.changes.push(format!("create {}", self.dest)),
            Some(old) if *old != desired => drift.changes.push(format!("update {}", self.dest)),
            Some(_) => {}
        }
        if current.as_deref() != Some(desired.as_str()) {
            drift.diff = Some(if self.sensitive {
                Diff::Secret
            } else {
                Diff::Text(text_diff(
                    &self.dest,
                    current.as_deref().unwrap_or(""),
                    &desired,
                ))
            });
        }
        drift.changes.extend(file_attr_drift(
            ctx,
            &self.dest,
            self.mode,
            &self.owner,
            &self.group,
        )?);
        if drift.changes.is_empty() {
            Ok(State::Converged(format!("{} up to date", self.dest)))
        } else {
            Ok(State::Drift(drift))
        }
    }

    fn apply(&self, ctx: &Ctx, _drift: &Drift) -> Result<()> {
        let desired = self.desired(ctx)?;
        let want = attrs(ctx, self.mode, &self.owner, &self.group)?;
        let current = ctx.host.read_string(&self.dest)?;
        if current.as_deref() == Some(desired.as_str()) {
            // Only mode/owner differ: no need to touch the content.
            return ctx.host.set_attrs(&self.dest, &want);
        }
        let staged = ctx
            .host
            .stage(&self.dest, desired.as_bytes(), &want, None)?;
        if let Some(validate) = &self.validate {
            validate_staged(ctx, validate, staged.temp_path(), &self.dest)?;
        }
        ctx.replace(staged)
    }
}

/// Runs the validate command on the staged copy; the live file is untouched on failure.
fn validate_staged(ctx: &Ctx, command: &str, temp: &std::path::Path, dest: &str) -> Result<()> {
    let temp = temp.to_string_lossy();
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.replace("{}", &temp))
        .collect();
    let (program, args) = words
        .split_first()
        .with_context(|| format!("empty validate command for {dest}"))?;
    let out = ctx
        .host
        .run(&Cmd::new(program).args(args.iter().cloned()))?;
    if out.status != 0 {
        bail!(
            "the new {dest} was rejected by `{command}`; the live file was not changed:\n{}",
            out.stderr_tail()
        );
    }
    Ok(())
}
