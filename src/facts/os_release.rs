//! /etc/os-release (falling back to /usr/lib/os-release, as os-release(5) says).
//!
//! Parsed here, not with the os-release crate: its 0.1.0 (the only release)
//! panics on a malformed line such as `ID="`, and a host file must never
//! crash edgeup. The format is small: `KEY=VALUE` lines, `#` comments, the
//! value optionally in double or single quotes with `\` escapes.

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
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} to identify the distribution", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// The fields edgeup uses; lines that are not `KEY=VALUE` are ignored.
    pub fn parse(text: &str) -> OsRelease {
        let mut fields = std::collections::HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                fields.insert(key.trim().to_string(), unquote(value.trim()));
            }
        }
        let get = |key: &str| fields.get(key).cloned().unwrap_or_default();
        // os-release(5): "If not set, a default of ID=linux may be used."
        let id = match get("ID").to_lowercase() {
            id if id.is_empty() => "linux".to_string(),
            id => id,
        };
        OsRelease {
            id,
            id_like: get("ID_LIKE")
                .split_whitespace()
                .map(str::to_lowercase)
                .collect(),
            version_id: get("VERSION_ID"),
            pretty_name: get("PRETTY_NAME"),
        }
    }

    pub fn pretty_name_or_id(&self) -> &str {
        if self.pretty_name.is_empty() {
            &self.id
        } else {
            &self.pretty_name
        }
    }
}

/// A shell-style value: `"..."` or `'...'` with the quotes removed and `\x`
/// escapes resolved in double quotes; an unterminated quote keeps the rest.
fn unquote(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(q @ ('"' | '\'')) => {
            let mut out = String::new();
            while let Some(c) = chars.next() {
                match c {
                    c if c == q => break,
                    '\\' if q == '"' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::OsRelease;

    #[test]
    fn quoted_unquoted_and_malformed_lines() {
        let os = OsRelease::parse(
            "# comment\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n\
             ID_LIKE='rhel centos'\nVERSION_ID=\"12\"\ngarbage line\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.id_like, ["rhel", "centos"]);
        assert_eq!(os.version_id, "12");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        // These panicked in the os-release crate.
        for text in ["ID=\"", "ID='", "ID=\"\\", "=\n=\""] {
            let os = OsRelease::parse(text);
            assert!(!os.id.contains('"'), "{text:?} -> {os:?}");
        }
        assert_eq!(OsRelease::parse("ID=\"a\\\"b\"").id, "a\"b");
        assert_eq!(OsRelease::parse("").id, "linux");
    }
}
