//! A directory with a given mode and owner (e.g. /etc/haproxy/certs, 0700 haproxy).

use super::{Ctx, Drift, State, Step};
use crate::host::FileAttrs;
use anyhow::Result;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub path: String,
    pub mode: Mode,
    pub owner: String,
    pub group: String,
}

/// A permission mode, written in the playbook as an octal string ("0640").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

/// A private key's mode.
pub const PRIVATE: Mode = Mode(0o600);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let text = String::deserialize(d)?;
        u32::from_str_radix(text.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Mode)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "mode '{text}' is not an octal number such as 0640"
                ))
            })
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// Resolves the owner and group names of a managed path.
pub fn attrs(ctx: &Ctx, mode: Mode, owner: &str, group: &str) -> Result<FileAttrs> {
    Ok(FileAttrs {
        mode: mode.0,
        uid: ctx.host.uid(owner)?,
        gid: ctx.host.gid(group)?,
    })
}

/// Lines describing how a path's mode/owner differ from what is wanted.
pub fn attr_changes(
    host: &crate::host::Host,
    stat: &crate::host::FileStat,
    want: &FileAttrs,
    path: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    if stat.mode & 0o7777 != want.mode {
        out.push(format!(
            "{path}: mode {:04o} -> {:04o}",
            stat.mode & 0o7777,
            want.mode
        ));
    }
    if stat.uid != want.uid || stat.gid != want.gid {
        out.push(format!(
            "{path}: owner {}:{} -> {}:{}",
            host.user_name(stat.uid),
            host.group_name(stat.gid),
            host.user_name(want.uid),
            host.group_name(want.gid)
        ));
    }
    out
}

/// Mode/owner drift of an existing file; an owner that does not exist yet
/// (package not installed) is reported as drift, not as an error.
pub fn file_attr_drift(
    ctx: &Ctx,
    path: &str,
    mode: Mode,
    owner: &str,
    group: &str,
) -> Result<Vec<String>> {
    let Some(stat) = ctx.host.stat(path)? else {
        return Ok(Vec::new());
    };
    Ok(match attrs(ctx, mode, owner, group) {
        Ok(want) => attr_changes(ctx.host, &stat, &want, path),
        Err(e) => vec![format!("{e:#}")],
    })
}

impl Step for Directory {
    fn check(&self, ctx: &Ctx) -> Result<State> {
        let Some(stat) = ctx.host.stat(&self.path)? else {
            return Ok(State::Drift(Drift::one(format!("create {}", self.path))));
        };
        if !stat.is_dir {
            anyhow::bail!(
                "{} exists but is not a directory; move it away so edgeup can create the directory",
                self.path
            );
        }
        // Before the package creates the owner, the wanted attrs are unknown:
        // that is drift (apply runs after the packages step), not an error.
        let want = match attrs(ctx, self.mode, &self.owner, &self.group) {
            Ok(want) => want,
            Err(e) => return Ok(State::Drift(Drift::one(format!("{e:#}")))),
        };
        let changes = attr_changes(ctx.host, &stat, &want, &self.path);
        if changes.is_empty() {
            Ok(State::Converged(format!("{} {}", self.path, self.mode)))
        } else {
            Ok(State::Drift(Drift::new(changes)))
        }
    }

    fn apply(&self, ctx: &Ctx, _drift: &Drift) -> Result<()> {
        let want = attrs(ctx, self.mode, &self.owner, &self.group)?;
        ctx.host.ensure_dir(&self.path, &want)
    }
}

#[cfg(test)]
mod tests {
    use super::{Directory, Mode};

    fn spec(mode: &str) -> Result<Directory, serde_saphyr::Error> {
        serde_saphyr::from_str(&format!(
            "path: /etc/haproxy/certs\nmode: {mode}\nowner: root\ngroup: root\n"
        ))
    }

    #[test]
    fn a_mode_is_an_octal_word_read_once() {
        let d = spec("\"0750\"").expect("spec");
        assert_eq!(d.mode, Mode(0o750));
        assert_eq!(d.mode.to_string(), "0750");
        assert_eq!(spec("\"0o600\"").expect("spec").mode, Mode(0o600));
        for bad in ["\"0980\"", "\"rwx\"", "\"17777\"", "\"\""] {
            let e = spec(bad).expect_err(bad).to_string();
            assert!(
                e.contains("is not an octal number such as 0640"),
                "{bad}: {e}"
            );
        }
    }
}
