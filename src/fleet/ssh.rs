//! OpenSSH as the transport: the operator's own ssh, their keys, ssh config
//! and known_hosts, batch mode (never a password prompt), one multiplexed
//! connection per host. Files travel over that connection too (`cat >`), so
//! hosts need no sftp subsystem.

use super::inventory::Target;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read};
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
/// The longest line of a remote run's event stream (edgeup's events are a
/// few KiB; a diff of a big file tens).
pub const MAX_LINE: usize = 1024 * 1024;
/// The most a short remote command (probe, checks) may print.
const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// The stderr kept of any remote command: its end, which explains a failure.
const MAX_STDERR: usize = 16 * 1024;

/// The last MAX_STDERR bytes of `bytes`, as text.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(MAX_STDERR);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
}

impl Ssh<'_> {
    /// One control socket per target: two inventory entries for the same
    /// user@host:port must not share (the second master would fail to bind
    /// and linger as a plain background connection).
    fn control_path(&self) -> String {
        let id = super::sha256_hex(self.target.name.as_bytes());
        format!("{}/{}", self.control_dir.display(), &id[..16])
    }

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
        o.push(format!("ControlPath={}", self.control_path()));
        if let Some(identity) = &self.target.identity {
            o.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
            o.push(identity.display().to_string());
        }
        o
    }

    /// `-l USER -p PORT -- ADDRESS`: the user is an option's value and the
    /// address comes after `--`, so neither can be read as an ssh option
    /// (the inventory's values are also validated: inventory.rs).
    fn destination(&self) -> Vec<String> {
        vec![
            "-l".into(),
            self.target.user.clone(),
            "-p".into(),
            self.target.port.to_string(),
            "--".into(),
            self.target.address.clone(),
        ]
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
        ]);
        args.extend(self.destination());
        let out = duct::cmd("ssh", args)
            .stdin_null()
            .stdout_null()
            .stderr_capture()
            .unchecked()
            .run()
            .context("could not start ssh (is openssh-client installed?)")?;
        if !out.status.success() {
            bail!(self.connection_error(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// Why ssh could not get a session, in words that say what to do. Only a
    /// network failure is "unreachable"; an unknown or changed host key and
    /// a refused login are failures of their own.
    fn connection_error(&self, stderr: &str) -> String {
        // ssh ends its own messages with \r\n.
        let stderr = stderr.replace("\r\n", "\n");
        let stderr = stderr.trim();
        let port = self.target.port;
        if stderr.contains("Host key verification failed")
            || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("host key is known for")
        {
            format!(
                "host key not trusted: {stderr}\n(first contact: check the key and add it to \
                 known_hosts, e.g. `ssh-keyscan -p {port} {addr} >> ~/.ssh/known_hosts`, or pass \
                 --accept-new-host-keys; a changed key is never accepted)",
                addr = self.target.address
            )
        } else if stderr.contains("Permission denied")
            || stderr.contains("Too many authentication failures")
        {
            format!(
                "login refused for {user}: {stderr}\n(edgeup uses your ssh keys and agent, never a \
                 password: install a key for {user}, or set identity: in the inventory)",
                user = self.target.user
            )
        } else if stderr.is_empty() {
            // ssh's 255 without a word: its connection ended, or the remote
            // command was killed by a signal (ssh reports both as 255).
            "unreachable: ssh ended with status 255 and no message (the connection was lost, \
             or the remote command was killed by a signal)"
                .to_string()
        } else {
            format!("unreachable: {stderr}")
        }
    }

    fn ssh_args(&self, script: &str) -> Vec<String> {
        let mut args = self.options();
        args.extend(["-o".into(), "ControlMaster=no".into()]);
        args.extend(self.destination());
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
        if out.stdout.len() > MAX_OUTPUT {
            bail!(
                "{} answered with more than {} KiB; stopped",
                self.target.name,
                MAX_OUTPUT / 1024
            );
        }
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: tail(&out.stderr),
        };
        if output.status == SSH_CONNECTION_FAILED {
            bail!(self.connection_error(&output.stderr));
        }
        Ok(output)
    }

    /// Runs a command and hands each stdout line to `line` as it arrives.
    /// A host cannot make the controller buffer without bound: a line longer
    /// than MAX_LINE fails this host (and only it); stderr keeps its last
    /// MAX_STDERR bytes.
    pub fn stream(&self, script: &str, mut line: impl FnMut(&str)) -> Result<Output> {
        let reader = duct::cmd("ssh", self.ssh_args(script))
            .stdin_null()
            .stderr_capture()
            .unchecked()
            .reader()
            .context("could not start ssh")?;
        let mut buffered = BufReader::new(&reader);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            let read = (&mut buffered)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut bytes)
                .context("reading the remote output")?;
            if read == 0 {
                break;
            }
            if bytes.len() > MAX_LINE {
                let _ = reader.kill();
                bail!(
                    "{} sent an output line longer than {} KiB; stopped reading from it",
                    self.target.name,
                    MAX_LINE / 1024
                );
            }
            line(String::from_utf8_lossy(&bytes).trim_end());
        }
        let out = reader
            .try_wait()?
            .context("ssh did not finish after closing its output")?;
        let output = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: tail(&out.stderr),
        };
        if output.status == SSH_CONNECTION_FAILED {
            bail!(self.connection_error(&output.stderr));
        }
        Ok(output)
    }

    /// Copies a local file to `remote` (a path the login user may write),
    /// created with mode 0600, over the shared connection.
    pub fn upload(&self, local: &Path, remote: &str) -> Result<()> {
        let out = duct::cmd(
            "ssh",
            self.ssh_args(&format!("umask 077 && cat > {}", quote(remote))),
        )
        .stdin_path(local)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("could not start ssh (is openssh-client installed?)")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Ok(()),
            Some(SSH_CONNECTION_FAILED) => bail!(self.connection_error(&stderr)),
            _ => bail!(
                "copying {} to {remote} failed: {}",
                local.display(),
                stderr.trim()
            ),
        }
    }

    /// Closes the multiplexed connection.
    pub fn close(&self) {
        let mut args = self.options();
        args.extend(["-O".into(), "exit".into()]);
        args.extend(self.destination());
        let _ = duct::cmd("ssh", args)
            .stdin_null()
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run();
    }
}

/// `text` as one word for a POSIX shell.
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(
            quote("/tmp/edgeup.Ab12/site.yaml"),
            "/tmp/edgeup.Ab12/site.yaml"
        );
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
    }
}
