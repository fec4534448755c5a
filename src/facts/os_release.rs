//! /etc/os-release (falling back to /usr/lib/os-release, as os-release(5) says).

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OsRelease {
    pub id: String,
    /// ID_LIKE split on whitespace (the crate keeps it as one string).
    pub id_like: Vec<String>,
    pub version_id: String,
    pub pretty_name: String,
}

impl OsRelease {
    /// Reads `<root>/etc/os-release`, else `<root>/usr/lib/os-release`.
    pub fn read(root: &Path) -> Result<OsRelease> {
        let primary = root.join("etc/os-release");
        let fallback = root.join("usr/lib/os-release");
        let path = if primary.exists() { primary } else { fallback };
        Self::from_file(&path)
    }

    pub fn from_file(path: &Path) -> Result<OsRelease> {
        let raw = os_release::OsRelease::new_from(path)
            .with_context(|| format!("reading {} to identify the distribution", path.display()))?;
        // os-release(5): "If not set, a default of ID=linux may be used."
        let id = match unquote(&raw.id).to_lowercase() {
            id if id.is_empty() => "linux".to_string(),
            id => id,
        };
        Ok(OsRelease {
            id,
            id_like: unquote(&raw.id_like)
                .split_whitespace()
                .map(str::to_lowercase)
                .collect(),
            version_id: unquote(&raw.version_id).to_string(),
            pretty_name: unquote(&raw.pretty_name).to_string(),
        })
    }

    pub fn pretty_name_or_id(&self) -> &str {
        if self.pretty_name.is_empty() {
            &self.id
        } else {
            &self.pretty_name
        }
    }
}

/// The crate strips double quotes from known keys but not single quotes.
fn unquote(value: &str) -> &str {
    value.trim().trim_matches(|c| c == '"' || c == '\'')
}
