//! OpenSSH as the transport: the operator's own ssh/scp, their keys and
//! known_hosts, batch mode (never a password prompt), one multiplexed
//! connection per host.

use super::inventory::Target;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

pub struct Ssh<'a> {
    pub target: &'a Target,
    /// `accept-new` on first contact, else `yes` (known_hosts must already know the host).
    pub accept_new_host_keys: bool,
    /// Directory for the multiplexing control sockets.
    pub control_dir: PathBuf,
}

pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// ssh's exit status when the connection itself failed.
const SSH_CONNECTION_FAILED: i32 = 255;

impl Ssh<'_> {
    fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.push("-o".into());
        o.push(format!(
            "StrictHostKeyChecking={}",
            if self.accept_new_host_keys {
                "accept-new"
            } else {
                "yes"
            }
        ));
        o.push("-o".into());
        o.push(format!("ControlPath={}/%C", self.control_dir.display()));
        if let Some(identity) = &self.target.identity {
            o.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
            o.push(identity.display().to_string());
        }
        o
    }

    fn destination(&self) -> String {
        let address = if self.target.address.contains(':') {
            format!("[{}]", self.target.address)
        } else {
            self.target.address.clone()
        };
        format!("{}@{address}", self.target.user)
    }

    /// Opens the shared connection (authenticates once). Its master process
    /// detaches with no link to our pipes, so later commands never wait on it.
    pub fn connect(&self) -> Result<()> {
        let mut args = self.options();
        args.extend([
            "-o".into(),
            "ControlMaster=yes".into(),
            "-o".into(),
            "ControlPersist=120".into(),
            "-N".into(),
            "-f".into(),
            "-p".into(),
            self.target.port.to_string(),
            self.destination(),
        ]);
        let out = duct::cmd("ssh", args)
            .stdin_null()
            .stdout_null()
            .stderr_capture()
            .unchecked()
            .run()
            .context("could not start ssh (is openssh-client installed?)")?;
        if !out.status.success() {
            bail!(
                "unreachable: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn ssh_args(&self, script: &str) -> Vec<String> {
        let mut args = self.options();
        args.extend(["-o".into(), "ControlMaster=no".into()]);
        args.extend(["-p".into(), self.target.port.to_string()]);
        args.push(self.destination());
        args.push("--".into());
        args.push(script.to_string());
        args
    }

    /// Runs a shell command on the host.
    pub fn run(&self, script: &str) -> Result<Output> {
        let out = duct::cmd("ssh", self.ssh_args(script))
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .context("could not start ssh (is openssh-client installed?)")?;
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if output.status == SSH_CONNECTION_FAILED {
            bail!("unreachable: {}", output.stderr.trim());
        }
        Ok(output)
    }

    /// Runs a command and hands each stdout line to `line` as it arrives.
    pub fn stream(&self, script: &str, mut line: impl FnMut(&str)) -> Result<Output> {
        let reader = duct::cmd("ssh", self.ssh_args(script))
            .stdin_null()
            .stderr_capture()
            .unchecked()
            .reader()
            .context("could not start ssh")?;
        let mut buffered = BufReader::new(&reader);
        let mut text = String::new();
        loop {
            text.clear();
            match buffered.read_line(&mut text) {
                Ok(0) => break,
                Ok(_) => line(text.trim_end()),
                Err(e) => return Err(e).context("reading the remote output"),
            }
        }
        let out = reader
            .try_wait()?
            .context("ssh did not finish after closing its output")?;
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if output.status == SSH_CONNECTION_FAILED {
            bail!("unreachable: {}", output.stderr.trim());
        }
        Ok(output)
    }

    /// Copies a local file to `remote` (a path the login user may write).
    pub fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        let mut args = self.options();
        args.extend(["-o".into(), "ControlMaster=no".into()]);
        args.extend(["-P".into(), self.target.port.to_string(), "-q".into()]);
        args.push(local.display().to_string());
        args.push(format!("{}:{remote}", self.destination()));
        let out = duct::cmd("scp", args)
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .context("could not start scp")?;
        if !out.status.success() {
            bail!(
                "copying {} to {remote} failed: {}",
                local.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Closes the multiplexed connection.
    pub fn close(&self) {
        let mut args = self.options();
        args.extend(["-O".into(), "exit".into(), self.destination()]);
        let _ = duct::cmd("ssh", args)
            .stdin_null()
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run();
    }
}
