//! The combined cert+key PEM in HAProxy's crt directory, shared by the
//! placeholder and the CA-issued certificate steps: how it drifts, and how a
//! new one is put in place (staged outside the crt directory, because
//! HAProxy loads every file there; backed up; swapped atomically; recorded
//! for rollback).

use super::directory::{PRIVATE, attrs, file_attr_drift};
use super::{Ctx, Diff, Drift};
use anyhow::{Context, Result};
use std::path::Path;

/// The PEM's drift: the content problem (shown only as a secret change) plus mode/owner.
pub fn drift(
    ctx: &Ctx,
    path: &str,
    owner: &str,
    group: &str,
    content_problem: Option<String>,
) -> Result<Drift> {
    let mut drift = Drift::new(Vec::new());
    if let Some(problem) = content_problem {
        drift.changes.push(problem);
        drift.diff = Some(Diff::Secret);
    }
    drift
        .changes
        .extend(file_attr_drift(ctx, path, PRIVATE, owner, group)?);
    Ok(drift)
}

/// Whether `drift` (made by [`drift`]) needs new content, or only mode/owner.
pub fn content_drifted(drift: &Drift) -> bool {
    drift.diff.is_some()
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
