//! A file rendered from a template (or given inline): compared with the live
//! file, staged, validated (e.g. `haproxy -c -f {}`), backed up and swapped in
//! atomically. The swap is recorded so a failed reload can roll it back.

use super::directory::{AttrChange, attr_lines, attrs, file_attr_drift};
use super::{Ctx, Describe, Diff, State, Step, text_diff};
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

/// The content a template step puts in place: the text (what apply
/// writes, rendered once by check), whether the file exists, and the diff.
#[derive(Clone, PartialEq)]
pub struct NewContent {
    text: String,
    exists: bool,
    diff: Diff,
}

/// What differs about a managed file: its content, and its mode/owner.
#[derive(Clone, PartialEq)]
pub struct FileDrift {
    dest: String,
    content: Option<NewContent>,
    attrs: Vec<AttrChange>,
}

impl Describe for FileDrift {
    fn lines(&self) -> Vec<String> {
        let content = self.content.as_ref().map(|c| {
            let verb = if c.exists { "update" } else { "create" };
            format!("{verb} {}", self.dest)
        });
        content.into_iter().chain(attr_lines(&self.attrs)).collect()
    }

    fn diff(&self) -> Option<Diff> {
        self.content.as_ref().map(|c| c.diff.clone())
    }
}

impl Step for Template {
    type Drift = FileDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<FileDrift>> {
        let desired = self.desired(ctx)?;
        let current = ctx.host.read_string(&self.dest)?;
        let content = (current.as_deref() != Some(desired.as_str())).then(|| NewContent {
            exists: current.is_some(),
            diff: if self.sensitive {
                Diff::Secret
            } else {
                Diff::Text(text_diff(
                    &self.dest,
                    current.as_deref().unwrap_or(""),
                    &desired,
                ))
            },
            text: desired,
        });
        let attrs = file_attr_drift(ctx, &self.dest, self.mode, &self.owner, &self.group)?;
        if content.is_none() && attrs.is_empty() {
            return Ok(State::Converged(format!("{} up to date", self.dest)));
        }
        Ok(State::Drift(FileDrift {
            dest: self.dest.clone(),
            content,
            attrs,
        }))
    }

    fn apply(&self, ctx: &Ctx, drift: &FileDrift) -> Result<()> {
        let want = attrs(ctx, self.mode, &self.owner, &self.group)?;
        let Some(content) = &drift.content else {
            // Only mode/owner differ: no need to touch the content.
            return ctx.host.set_attrs(&self.dest, &want);
        };
        let staged = ctx
            .host
            .stage(&self.dest, content.text.as_bytes(), &want, None)?;
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
