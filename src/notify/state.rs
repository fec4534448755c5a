//! What notify remembers per domain, in `STATE_DIR/notify/state.json`: the
//! last renewal attempts (recorded by the ACME step, shown by `status`),
//! whether a failure was announced and not yet followed by a success, and
//! the UTC day of the last `expiry_near`. No secrets: 0644, atomic writes.

use crate::host::{FileAttrs, Host};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Attempts kept per domain (the newest last): enough for `status` and to
/// find the ones of the current run.
const ATTEMPTS_KEPT: usize = 10;

/// A failure message is kept to one line of at most this many characters.
const ERROR_CHARS: usize = 500;

/// What happened to one certificate when the ACME step had to (re)issue it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix seconds.
    pub at: i64,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Its event was decided (the alerts step decides before it delivers
    /// and checks again after: an attempt is announced once, however close
    /// in time the attempts are).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub announced: bool,
    /// The run that made it (`AcmeVars::run_id`); empty from an edgeup
    /// that did not record it, which no later run takes for its own.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
}

impl Attempt {
    /// An attempt not announced yet.
    pub fn new(at: i64, outcome: Outcome) -> Attempt {
        Attempt {
            at,
            outcome,
            announced: false,
            run: String::new(),
        }
    }

    /// The same attempt, made by run `id`.
    pub fn in_run(self, id: &str) -> Attempt {
        Attempt {
            run: id.to_string(),
            ..self
        }
    }
}

/// Serialized as `"result": "renewed"`, or `"result": "failed"` with `"error"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "error", rename_all = "snake_case")]
pub enum Outcome {
    Renewed,
    /// The error, on one line (see `Outcome::failed`).
    Failed(String),
}

/// For `status`: `renewed at 2026-02-20T06:00:00Z`, or
/// `failed at 2026-02-20T06:00:00Z: ERROR`.
impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = super::rfc3339(self.at);
        match &self.outcome {
            Outcome::Renewed => write!(f, "renewed at {at}"),
            Outcome::Failed(error) => write!(f, "failed at {at}: {error}"),
        }
    }
}

impl Outcome {
    /// A failure from an error chain: `{:#}` on one line, whitespace runs
    /// collapsed, at most 500 characters. The caller passes errors that are
    /// already redacted (as every edgeup error is).
    pub fn failed(error: &anyhow::Error) -> Outcome {
        Outcome::Failed(one_line(&format!("{error:#}")))
    }
}

/// `text` on one line: whitespace runs (newlines included) become one
/// space, cut at `ERROR_CHARS` characters (never inside a character).
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= ERROR_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(ERROR_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// One domain's notify state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The last attempts, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// A `renewal_failed` was decided and no success came since: the next
    /// success is announced as `renewed`.
    #[serde(default)]
    pub failing: bool,
    /// The UTC day (`YYYY-MM-DD`) of the last `expiry_near`.
    #[serde(default)]
    pub expiry_alerted_on: Option<String>,
}

/// The whole file: `{"version": 1, "domains": {DOMAIN: State}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    #[serde(default)]
    pub domains: BTreeMap<String, State>,
}

const VERSION: u32 = 1;

fn dir(state_dir: &str) -> String {
    format!("{state_dir}/notify")
}

fn path(state_dir: &str) -> String {
    format!("{state_dir}/notify/state.json")
}

impl StateFile {
    /// No domain yet.
    pub fn empty() -> StateFile {
        StateFile {
            version: VERSION,
            domains: BTreeMap::new(),
        }
    }

    /// The file's content; an empty state when there is none yet.
    pub fn load(host: &Host, state_dir: &str) -> Result<StateFile> {
        let file = path(state_dir);
        let Some(bytes) = host.read_no_follow(&file)? else {
            return Ok(StateFile::empty());
        };
        let state: StateFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{file} is not a notify state file"))?;
        if state.version != VERSION {
            anyhow::bail!(
                "{file} has version {}; this edgeup reads version {VERSION}",
                state.version
            );
        }
        Ok(state)
    }

    /// Writes the file atomically (0644 in a 0755 directory).
    pub fn save(&self, host: &Host, state_dir: &str) -> Result<()> {
        let attrs = FileAttrs {
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        host.ensure_dir(&dir(state_dir), &attrs)?;
        let mut text =
            serde_json::to_string_pretty(self).context("serializing the notify state")?;
        text.push('\n');
        host.write_atomic(
            &path(state_dir),
            text.as_bytes(),
            &FileAttrs {
                mode: 0o644,
                ..attrs
            },
            None,
        )
    }
}

/// Records one attempt for `domain` (the error made one line, the oldest
/// attempts beyond ten dropped). An unreadable state file is replaced: it
/// only holds notify bookkeeping, and recording must never fail a renewal
/// over it (the worst outcome is one `renewed` not sent).
pub fn record_attempt(host: &Host, state_dir: &str, domain: &str, attempt: &Attempt) -> Result<()> {
    let mut file = StateFile::load(host, state_dir).unwrap_or_else(|_| StateFile::empty());
    let attempt = match &attempt.outcome {
        Outcome::Renewed => attempt.clone(),
        Outcome::Failed(error) => Attempt {
            outcome: Outcome::Failed(one_line(error)),
            ..attempt.clone()
        },
    };
    let state = file.domains.entry(domain.to_string()).or_default();
    state.attempts.push(attempt);
    let excess = state.attempts.len().saturating_sub(ATTEMPTS_KEPT);
    state.attempts.drain(..excess);
    file.save(host, state_dir)
        .with_context(|| format!("recording the renewal attempt of {domain}"))
}

/// The last attempt recorded for `domain` (for `edgeup status`).
pub fn last_attempt(host: &Host, state_dir: &str, domain: &str) -> Result<Option<Attempt>> {
    Ok(StateFile::load(host, state_dir)?
        .domains
        .get(domain)
        .and_then(|s| s.attempts.last().cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;
    use std::os::unix::fs::PermissionsExt;

    fn host(root: &std::path::Path) -> Host {
        Host::new(
            root.to_path_buf(),
            Box::new(ScriptedRunner::new(root.to_path_buf())),
        )
    }

    #[test]
    fn attempts_round_trip_through_the_file() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = host(dir.path());
        assert_eq!(last_attempt(&host, "/var/lib/edgeup", "a.example")?, None);
        let failed = Attempt::new(
            1_767_225_600,
            Outcome::Failed("order failed:\n  rate limited".into()),
        );
        record_attempt(&host, "/var/lib/edgeup", "a.example", &failed)?;
        assert_eq!(
            last_attempt(&host, "/var/lib/edgeup", "a.example")?,
            Some(Attempt::new(
                1_767_225_600,
                Outcome::Failed("order failed: rate limited".into())
            )),
            "stored on one line"
        );
        let renewed = Attempt::new(1_767_229_200, Outcome::Renewed);
        record_attempt(&host, "/var/lib/edgeup", "a.example", &renewed)?;
        assert_eq!(
            last_attempt(&host, "/var/lib/edgeup", "a.example")?,
            Some(renewed.clone())
        );
        assert_eq!(last_attempt(&host, "/var/lib/edgeup", "b.example")?, None);
        assert_eq!(renewed.to_string(), "renewed at 2026-01-01T01:00:00Z");
        assert_eq!(
            failed.to_string(),
            "failed at 2026-01-01T00:00:00Z: order failed:\n  rate limited"
        );

        let file = dir.path().join("var/lib/edgeup/notify/state.json");
        let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "domains": {"a.example": {
                    "attempts": [
                        {"at": 1_767_225_600, "result": "failed", "error": "order failed: rate limited"},
                        {"at": 1_767_229_200, "result": "renewed"}
                    ],
                    "failing": false,
                    "expiry_alerted_on": null
                }}
            })
        );
        Ok(())
    }

    #[test]
    fn only_the_last_ten_attempts_are_kept() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = host(dir.path());
        for at in 0..15 {
            let attempt = Attempt::new(at, Outcome::Failed(format!("try {at}")));
            record_attempt(&host, "/state", "a.example", &attempt)?;
        }
        let file = StateFile::load(&host, "/state")?;
        let ats: Vec<i64> = file.domains["a.example"]
            .attempts
            .iter()
            .map(|a| a.at)
            .collect();
        assert_eq!(ats, (5..15).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn an_unreadable_file_is_an_error_to_read_and_replaced_on_record() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let host = host(dir.path());
        std::fs::create_dir_all(dir.path().join("state/notify"))?;
        std::fs::write(dir.path().join("state/notify/state.json"), "{not json")?;
        let err = last_attempt(&host, "/state", "a.example").expect_err("corrupt");
        assert!(
            format!("{err:#}").contains("is not a notify state file"),
            "{err:#}"
        );
        let attempt = Attempt::new(7, Outcome::Renewed);
        record_attempt(&host, "/state", "a.example", &attempt)?;
        assert_eq!(last_attempt(&host, "/state", "a.example")?, Some(attempt));
        Ok(())
    }

    #[test]
    fn errors_become_one_bounded_line() {
        let long = "é".repeat(600);
        let line = one_line(&long);
        assert_eq!(line.chars().count(), 500);
        assert!(line.ends_with('…'));
        let err = anyhow::anyhow!("inner\nsecond line").context("issuing a.example");
        assert_eq!(
            Outcome::failed(&err),
            Outcome::Failed("issuing a.example: inner second line".into())
        );
    }
}
