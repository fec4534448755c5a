//! The combined cert+key PEM in HAProxy's crt directory, shared by the
//! placeholder and the CA-issued certificate steps: how it drifts, and how a
//! new one is put in place (staged outside the crt directory, because
//! HAProxy loads every file there; backed up; swapped atomically; recorded
//! for rollback).

use super::directory::{AttrChange, PRIVATE, attr_lines, attrs, file_attr_drift};
use super::{Ctx, Describe, Diff};
use anyhow::{Context, Result};
use std::path::Path;

/// What differs about a key-holding PEM: its content (why it must be
/// replaced; shown only as a secret change) and its mode/owner.
#[derive(Debug, Clone, PartialEq)]
pub struct PemDrift {
    pub content: Option<String>,
    pub attrs: Vec<AttrChange>,
}

impl PemDrift {
    pub fn is_empty(&self) -> bool {
        self.content.is_none() && self.attrs.is_empty()
    }
}

impl Describe for PemDrift {
    fn lines(&self) -> Vec<String> {
        self.content
            .iter()
            .cloned()
            .chain(attr_lines(&self.attrs))
            .collect()
    }

    fn diff(&self) -> Option<Diff> {
        self.content.as_ref().map(|_| Diff::Secret)
    }
}

/// The PEM's drift: the content problem plus mode/owner.
pub fn drift(
    ctx: &Ctx,
    path: &str,
    owner: &str,
    group: &str,
    content: Option<String>,
) -> Result<PemDrift> {
    Ok(PemDrift {
        content,
        attrs: file_attr_drift(ctx, path, PRIVATE, owner, group)?,
    })
}

/// Mode and owner only (the content is right).
pub fn fix_attrs(ctx: &Ctx, path: &str, owner: &str, group: &str) -> Result<()> {
    let want = attrs(ctx, PRIVATE, owner, group)?;
    ctx.host.set_attrs(path, &want)
}

/// Puts `pem` at `path`, 0600 owner:group, never exposing a partial file.
pub fn install(ctx: &Ctx, path: &str, pem: &str, owner: &str, group: &str) -> Result<()> {
    let want = attrs(ctx, PRIVATE, owner, group)?;
    let stage_dir = Path::new(path)
        .parent()
        .and_then(Path::parent)
        .map(|p| p.to_string_lossy().into_owned())
        .with_context(|| format!("{path} must live in a crt directory"))?;
    let staged = ctx
        .host
        .stage(path, pem.as_bytes(), &want, Some(&stage_dir))?;
    ctx.replace(staged)
}
