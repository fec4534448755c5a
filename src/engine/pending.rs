//! Handlers that were notified but have not run yet, persisted so a crash
//! between a change and its reload still reloads on the next run.

use crate::host::{FileAttrs, Host};
use anyhow::Result;
use std::collections::BTreeSet;

fn path(state_dir: &str) -> String {
    format!("{state_dir}/pending-handlers")
}

pub fn load(host: &Host, state_dir: &str) -> Result<BTreeSet<String>> {
    Ok(host
        .read_string(&path(state_dir))?
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

pub fn save(host: &Host, state_dir: &str, pending: &BTreeSet<String>) -> Result<()> {
    let file = path(state_dir);
    if pending.is_empty() {
        return host.remove_file(&file);
    }
    let mut text = pending.iter().cloned().collect::<Vec<_>>().join("\n");
    text.push('\n');
    host.ensure_dir(
        state_dir,
        &FileAttrs {
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    )?;
    host.write_atomic(
        &file,
        text.as_bytes(),
        &FileAttrs {
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
        None,
    )
}
