//! A directory with a given mode and owner (e.g. /etc/haproxy/certs, 0700 haproxy).

use super::{Ctx, Describe, State, Step};
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

/// One way a path's mode or owner differs from what is wanted.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrChange {
    Mode {
        path: String,
        from: u32,
        to: u32,
    },
    /// Owners as `user:group` names.
    Owner {
        path: String,
        from: String,
        to: String,
    },
    /// The wanted owner or group does not exist yet (its package creates
    /// it): drift until then, not an error.
    Unresolved(String),
}

impl std::fmt::Display for AttrChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrChange::Mode { path, from, to } => write!(f, "{path}: mode {from:04o} -> {to:04o}"),
            AttrChange::Owner { path, from, to } => write!(f, "{path}: owner {from} -> {to}"),
            AttrChange::Unresolved(why) => f.write_str(why),
        }
    }
}

/// The report lines of some attribute changes.
pub fn attr_lines(changes: &[AttrChange]) -> impl Iterator<Item = String> + '_ {
    changes.iter().map(ToString::to_string)
}

/// How a path's mode/owner differ from what is wanted.
pub fn attr_changes(
    host: &crate::host::Host,
    stat: &crate::host::FileStat,
    want: &FileAttrs,
    path: &str,
) -> Vec<AttrChange> {
    let mut out = Vec::new();
    if stat.mode & 0o7777 != want.mode {
        out.push(AttrChange::Mode {
            path: path.to_string(),
            from: stat.mode & 0o7777,
            to: want.mode,
        });
    }
    if stat.uid != want.uid || stat.gid != want.gid {
        let name = |uid, gid| format!("{}:{}", host.user_name(uid), host.group_name(gid));
        out.push(AttrChange::Owner {
            path: path.to_string(),
            from: name(stat.uid, stat.gid),
            to: name(want.uid, want.gid),
        });
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
) -> Result<Vec<AttrChange>> {
    let Some(stat) = ctx.host.stat(path)? else {
        return Ok(Vec::new());
    };
    Ok(match attrs(ctx, mode, owner, group) {
        Ok(want) => attr_changes(ctx.host, &stat, &want, path),
        Err(e) => vec![AttrChange::Unresolved(format!("{e:#}"))],
    })
}

/// What differs about a managed directory.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryDrift {
    Missing(String),
    Attrs(Vec<AttrChange>),
}

impl Describe for DirectoryDrift {
    fn lines(&self) -> Vec<String> {
        match self {
            DirectoryDrift::Missing(path) => vec![format!("create {path}")],
            DirectoryDrift::Attrs(changes) => attr_lines(changes).collect(),
        }
    }
}

impl Step for Directory {
    type Drift = DirectoryDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<DirectoryDrift>> {
        let Some(stat) = ctx.host.stat(&self.path)? else {
            return Ok(State::Drift(DirectoryDrift::Missing(self.path.clone())));
        };
        if !stat.is_dir {
            anyhow::bail!(
                "{} exists but is not a directory; move it away so edgeup can create the directory",
                self.path
            );
        }
        // Before the package creates the owner, the wanted attrs are unknown:
        // that is drift (apply runs after the packages step), not an error.
        let changes = match attrs(ctx, self.mode, &self.owner, &self.group) {
            Ok(want) => attr_changes(ctx.host, &stat, &want, &self.path),
            Err(e) => vec![AttrChange::Unresolved(format!("{e:#}"))],
        };
        if changes.is_empty() {
            Ok(State::Converged(format!("{} {}", self.path, self.mode)))
        } else {
            Ok(State::Drift(DirectoryDrift::Attrs(changes)))
        }
    }

    /// Created or fixed alike: `ensure_dir` sets what is wanted.
    fn apply(&self, ctx: &Ctx, _drift: &DirectoryDrift) -> Result<()> {
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
