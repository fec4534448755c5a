//! The exec provider: `COMMAND present FQDN VALUE` and `COMMAND cleanup
//! FQDN VALUE`, FQDN with its trailing dot — lego's exec contract (its
//! default mode; lego's RAW mode is not offered). As lego does, the hook
//! inherits edgeup's environment; the variables of the env file are added.
//! lego sets no variable of its own for the hook (EXEC_PROPAGATION_TIMEOUT
//! and EXEC_POLLING_INTERVAL are lego's own settings, read from its
//! environment), so neither does edgeup. Unlike lego: stdin is closed, the
//! run is bounded in time (then its whole process group is killed), and the
//! env file's values are masked in every message.

use crate::host::Cmd;
use anyhow::{Context, Result, bail};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a hook may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The end of a hook's output that is kept for messages.
const TAIL_BYTES: usize = 16 * 1024;

/// The hook: its path (as this process sees it) and its added environment.
pub struct Hook {
    pub command: PathBuf,
    /// Shown in messages: the host path the site file names.
    pub display: String,
    env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("command", &self.display)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Hook {
    pub fn new(
        command: PathBuf,
        display: &str,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> Hook {
        Hook {
            command,
            display: display.to_string(),
            env,
            timeout,
        }
    }

    /// Runs `COMMAND action FQDN. value`; Ok when it exits 0 in time.
    pub fn run(&self, action: &str, name: &str, value: &str) -> Result<()> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        // For messages only: the command line, the env file's values masked.
        let shown = self
            .env
            .iter()
            .fold(Cmd::new(&self.display), |c, (_, v)| c.secret(v))
            .args([action, fqdn.as_str(), value]);
        let mut cmd = Command::new(&self.command);
        cmd.args([action, &fqdn, value])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout kills what it started too.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start the DNS hook `{}`", shown.display()))?;
        let stdout = tail_reader(child.stdout.take());
        let stderr = tail_reader(child.stderr.take());
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    kill_group(child.id());
                    let _ = child.wait();
                    return Err(e).with_context(|| format!("waiting for `{}`", shown.display()));
                }
            }
        };
        let Some(status) = status else {
            kill_group(child.id());
            let _ = child.wait();
            let err = settle(&stderr, &stdout);
            bail!(
                "the DNS hook `{}` did not finish within {}s and was killed{}",
                shown.display(),
                self.timeout.as_secs_f32(),
                quoted(&shown.redact(&err))
            );
        };
        if status.success() {
            return Ok(());
        }
        let err = settle(&stderr, &stdout);
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        bail!(
            "the DNS hook `{}` {how}{}",
            shown.display(),
            quoted(&shown.redact(&err))
        )
    }
}

fn quoted(tail: &str) -> String {
    if tail.trim().is_empty() {
        " (no output)".to_string()
    } else {
        format!(": {}", tail.trim())
    }
}

type Tail = Arc<Mutex<(Vec<u8>, bool)>>;

/// Reads `pipe` to its end in a thread, keeping the last TAIL_BYTES; the
/// flag says the end was reached.
fn tail_reader(pipe: Option<impl Read + Send + 'static>) -> Tail {
    let tail: Tail = Arc::new(Mutex::new((Vec::new(), pipe.is_none())));
    if let Some(mut pipe) = pipe {
        let shared = Arc::clone(&tail);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = pipe.read(&mut buf).unwrap_or(0);
                let mut t = shared.lock().unwrap_or_else(|p| p.into_inner());
                if n == 0 {
                    t.1 = true;
                    break;
                }
                t.0.extend_from_slice(buf.get(..n).unwrap_or_default());
                let excess = t.0.len().saturating_sub(TAIL_BYTES);
                if excess > 0 {
                    t.0.drain(..excess);
                }
            }
        });
    }
    tail
}

/// The last lines of stderr (stdout when stderr is empty), once both pipes
/// ended or one second passed (a process the hook left behind may hold them).
fn settle(stderr: &Tail, stdout: &Tail) -> String {
    let until = Instant::now() + Duration::from_secs(1);
    let done = |t: &Tail| t.lock().map(|t| t.1).unwrap_or(true);
    while !(done(stderr) && done(stdout)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = |t: &Tail| {
        t.lock()
            .map(|t| String::from_utf8_lossy(&t.0).into_owned())
            .unwrap_or_default()
    };
    crate::host::CmdOutput {
        status: 1,
        stdout: text(stdout),
        stderr: text(stderr),
    }
    .stderr_tail()
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group;
        // the group is the hook's own (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// The env file: `KEY=VALUE` lines, `#` comments and blank lines; a value
/// may be in single or double quotes (taken literally, no expansion), and
/// `export ` before a line is allowed. A small parser of exactly that:
/// errors give the line number, never the line (values are secrets).
pub fn parse_env(text: &str, path: &str) -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            bail!("{path} line {}: not KEY=VALUE", i + 1);
        };
        let key = key.trim();
        let valid_key = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            bail!(
                "{path} line {}: the variable name must be letters, digits and _ (not starting with a digit)",
                i + 1
            );
        }
        let value = value.trim();
        let value = match (value.chars().next(), value.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(end)) if value.len() >= 2 && end == q => {
                value.get(1..value.len() - 1).unwrap_or_default()
            }
            (Some('"' | '\''), _) => bail!("{path} line {}: a quote is not closed", i + 1),
            _ => value,
        };
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() -> Result<()> {
        let vars = parse_env(
            "# provider\nAPI_TOKEN=s3cr3t=x\n\nexport ZONE = 'example.test'\nEMPTY=\nQ=\"a b\"\n",
            "/etc/edgeup/dns.env",
        )?;
        assert_eq!(
            vars,
            [
                ("API_TOKEN".to_string(), "s3cr3t=x".to_string()),
                ("ZONE".to_string(), "example.test".to_string()),
                ("EMPTY".to_string(), String::new()),
                ("Q".to_string(), "a b".to_string()),
            ]
        );
        for bad in [
            "s3cr3t",
            "1X=s3cr3t",
            "X-Y=s3cr3t",
            "X=\"s3cr3t",
            "X='",
            "=s3cr3t",
        ] {
            let err = format!(
                "{:#}",
                parse_env(bad, "/etc/edgeup/dns.env").expect_err(bad)
            );
            assert!(err.contains("/etc/edgeup/dns.env line 1"), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
        Ok(())
    }

    #[test]
    fn hook_failure_quotes_stderr_masks_env_values_and_timeouts_kill() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let script = dir.path().join("hook");
        std::fs::write(
            &script,
            "#!/bin/sh\nif [ \"$1\" = present ]; then echo \"no zone for $2 ($TOKEN)\" >&2; exit 3; fi\nsleep 600\n",
        )?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let hook = Hook::new(
            script.clone(),
            "/etc/edgeup/hook",
            vec![("TOKEN".into(), "tok-123".into())],
            Duration::from_millis(500),
        );
        let err = format!(
            "{:#}",
            hook.run("present", "_acme-challenge.example.test", "v")
                .expect_err("exit 3")
        );
        assert!(
            err.contains("exited with status 3")
                && err.contains("no zone for _acme-challenge.example.test. (<secret>)"),
            "{err}"
        );
        assert!(!err.contains("tok-123"), "{err}");
        let started = Instant::now();
        let err = format!(
            "{:#}",
            hook.run("cleanup", "x.test", "v").expect_err("hangs")
        );
        assert!(err.contains("did not finish within 0.5s"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        Ok(())
    }
}
