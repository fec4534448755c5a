//! Running commands: the real runner (duct) and the command description
//! shared with the scripted runner used by transcript tests.

use anyhow::{Context, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Values never shown: masked in `display` and in every message built
    /// with `redact` (a tool may echo a secret it read from a file).
    pub secrets: Vec<String>,
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// `value` is a secret this command handles (through a file or stdin).
    pub fn secret(mut self, value: &str) -> Cmd {
        if !value.is_empty() {
            self.secrets.push(value.to_string());
        }
        self
    }

    /// `text` with every secret of this command masked.
    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<secret>"))
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The command line as a user would type it (for messages and transcripts).
    pub fn display(&self) -> String {
        let mut parts: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(self.program.clone());
        parts.extend(self.args.iter().map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.clone()
            }
        }));
        self.redact(&parts.join(" "))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CmdOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(stdout: &str) -> CmdOutput {
        CmdOutput {
            status: 0,
            stdout: stdout.to_string(),
            stderr: String::new(),
        }
    }

    pub fn failed(status: i32, stderr: &str) -> CmdOutput {
        CmdOutput {
            status,
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    /// This output when `cmd` exited 0, else an error naming the command and
    /// the end of its stderr (secrets masked).
    pub fn success_of(self, cmd: &Cmd) -> Result<CmdOutput> {
        if self.status != 0 {
            anyhow::bail!(
                "`{}` exited with status {}: {}",
                cmd.display(),
                self.status,
                cmd.redact(&self.stderr_tail())
            );
        }
        Ok(self)
    }

    /// The last lines of stderr (or stdout when stderr is empty): enough to
    /// explain a failure without flooding the terminal.
    pub fn stderr_tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.trim().lines().collect();
        let start = lines.len().saturating_sub(12);
        lines[start..].join("\n")
    }
}

pub trait Runner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput>;
}

/// Runs commands for real. Non-zero exits come back as data (duct's checked
/// error would drop stderr), so callers can explain failures.
pub struct DuctRunner;

impl Runner for DuctRunner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        let mut expr = duct::cmd(&cmd.program, &cmd.args)
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        for (k, v) in &cmd.env {
            expr = expr.env(k, v);
        }
        let out = expr
            .run()
            .with_context(|| format!("could not start `{}`", cmd.display()))?;
        Ok(CmdOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
