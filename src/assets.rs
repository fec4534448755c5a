//! Data files (distro profiles, playbooks, templates) embedded in the binary,
//! each overridable by a file of the same relative path under `--data-dir`.

use anyhow::{Context, Result};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Everything shipped with edgeup, keyed by path relative to the repository root.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "distros/debian.yaml",
        include_str!("../distros/debian.yaml"),
    ),
    ("distros/rhel.yaml", include_str!("../distros/rhel.yaml")),
    (
        "distros/fedora.yaml",
        include_str!("../distros/fedora.yaml"),
    ),
    ("distros/amzn.yaml", include_str!("../distros/amzn.yaml")),
    (
        "playbooks/open-webui.yaml",
        include_str!("../playbooks/open-webui.yaml"),
    ),
    (
        "templates/haproxy.cfg.j2",
        include_str!("../templates/haproxy.cfg.j2"),
    ),
];

#[derive(Debug, Clone, Default)]
pub struct Assets {
    override_dir: Option<PathBuf>,
}

impl Assets {
    pub fn new(override_dir: Option<PathBuf>) -> Self {
        Assets { override_dir }
    }

    /// The file at `rel` (e.g. `templates/haproxy.cfg.j2`): from the override
    /// directory when it has one, else the embedded copy.
    pub fn get(&self, rel: &str) -> Result<Cow<'static, str>> {
        if let Some(dir) = &self.override_dir {
            let path = dir.join(rel);
            if path.exists() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                return Ok(Cow::Owned(text));
            }
        }
        EMBEDDED
            .iter()
            .find(|(name, _)| *name == rel)
            .map(|(_, text)| Cow::Borrowed(*text))
            .with_context(|| format!("no data file {rel} (embedded or in the --data-dir)"))
    }

    /// Every file under `folder` (e.g. `distros`), override files first, then the
    /// embedded ones they do not shadow. Sorted by name so matching is stable.
    pub fn list(&self, folder: &str) -> Result<Vec<(String, Cow<'static, str>)>> {
        let mut names: Vec<String> = EMBEDDED
            .iter()
            .filter(|(name, _)| in_folder(name, folder))
            .map(|(name, _)| name.to_string())
            .collect();
        if let Some(dir) = &self.override_dir {
            names.extend(files_in(&dir.join(folder), folder)?);
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let text = self.get(&name)?;
                Ok((name, text))
            })
            .collect()
    }
}

fn in_folder(name: &str, folder: &str) -> bool {
    name.strip_prefix(folder)
        .is_some_and(|rest| rest.starts_with('/') && rest.ends_with(".yaml"))
}

fn files_in(dir: &Path, folder: &str) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            out.push(format!("{folder}/{name}"));
        }
    }
    Ok(out)
}
