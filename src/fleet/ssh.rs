//! OpenSSH as the transport: the operator's own ssh, their keys, ssh config
//! and known_hosts, batch mode (never a password prompt), and one session
//! per host and run. What a host needs copied travels on that session's
//! stdin after the host has answered the probe (host.rs), so a run costs
//! one login and one ssh process, and hosts need no sftp subsystem.

use super::inventory::FleetHost;
use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub struct Ssh<'a> {
    pub target: &'a FleetHost,
    /// `accept-new` on first contact, else `yes` (known_hosts must already know the host).
    pub accept_new_host_keys: bool,
    /// How long a session may take, from its start to ssh's end: a host
    /// that stays connected and never finishes is cut off (`--timeout`).
    pub timeout: Duration,
}

pub struct Ended {
    pub status: i32,
    pub stderr: String,
}

/// ssh's exit status when the connection itself failed.
const SSH_CONNECTION_FAILED: i32 = 255;
/// The longest line of a remote run's event stream (edgeup's events are a
/// few KiB; a diff of a big file tens).
pub const MAX_LINE: usize = 1024 * 1024;
/// What `finish` reads and drops of a session the controller stopped
/// listening to, before it cuts the session off.
const MAX_DRAIN: u64 = 4 * 1024 * 1024;
/// The stderr kept of any remote command: its end, which explains a failure.
const MAX_STDERR: usize = 16 * 1024;

/// The last MAX_STDERR bytes of `bytes`, as text.
fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(MAX_STDERR);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default()).into_owned()
}

impl Ssh<'_> {
    fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
            // Never become a control master that outlives the run (a
            // ControlMaster/ControlPersist in the operator's config); an
            // existing master of theirs is still used.
            "-o",
            "ControlMaster=no",
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

    /// Starts `script` on the host: its stdout is read line by line, its
    /// stdin is a pipe the caller may write to (or close).
    pub fn session(&self, script: &str) -> Result<Session<'_>> {
        let mut args = self.options();
        args.extend(self.destination());
        args.push(script.to_string());
        let (stdin_reader, stdin_writer) =
            std::io::pipe().context("creating a pipe for ssh's stdin")?;
        // The expression (and with it our copy of the pipe's read end) is
        // dropped at the end of this statement: once ssh exits, a write to
        // its stdin fails instead of blocking.
        let reader = duct::cmd("ssh", args)
            .stdin_file(stdin_reader)
            .stderr_capture()
            .unchecked()
            .reader()
            .context("could not start ssh (is openssh-client installed?)")?;
        let handle = Arc::new(reader);
        Ok(Session {
            ssh: self,
            out: BufReader::new(Shared(Arc::clone(&handle))),
            stdin: Some(stdin_writer),
            watchdog: Watchdog::start(handle, self.timeout),
        })
    }
}

/// ssh's stdout, read through the handle the watchdog can also kill.
struct Shared(Arc<duct::ReaderHandle>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

/// Kills ssh when the session outlives its timeout (duct's kill is safe
/// beside a reading thread, and a no-op once ssh has been waited for).
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    fired: Arc<AtomicBool>,
    timeout: Duration,
}

impl Watchdog {
    fn start(handle: Arc<duct::ReaderHandle>, timeout: Duration) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                let _ = handle.kill();
            }
        });
        Watchdog {
            stop: Some(stop),
            thread: Some(thread),
            fired,
            timeout,
        }
    }

    /// The error a session cut off by the watchdog ends with.
    fn fired(&self, host: &str) -> Option<anyhow::Error> {
        self.fired.load(Ordering::SeqCst).then(|| {
            anyhow!(
                "{host} had not finished after {} s; the session was cut off \
                 (fleet --timeout SECS allows longer)",
                self.timeout.as_secs()
            )
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One running remote command. A host cannot make the controller buffer
/// without bound: a line longer than MAX_LINE fails this host (and only
/// it); stderr keeps its last MAX_STDERR bytes.
pub struct Session<'a> {
    ssh: &'a Ssh<'a>,
    out: BufReader<Shared>,
    stdin: Option<std::io::PipeWriter>,
    watchdog: Watchdog,
}

impl Session<'_> {
    /// The next line of the remote stdout (without its line end), None at its end.
    pub fn line(&mut self) -> Result<Option<String>> {
        let mut bytes = Vec::new();
        let read = (&mut self.out)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut bytes);
        if let Some(cut_off) = self.watchdog.fired(&self.ssh.target.name) {
            return Err(cut_off);
        }
        if read.context("reading the remote output")? == 0 {
            return Ok(None);
        }
        if bytes.len() > MAX_LINE {
            let _ = self.out.get_ref().0.kill();
            bail!(
                "{} sent an output line longer than {} KiB; stopped reading from it",
                self.ssh.target.name,
                MAX_LINE / 1024
            );
        }
        Ok(Some(String::from_utf8_lossy(&bytes).trim_end().to_string()))
    }

    /// The remote stdin, once; dropping it is the end of the input.
    pub fn stdin(&mut self) -> Option<std::io::PipeWriter> {
        self.stdin.take()
    }

    /// Closes the remote stdin, drops what is left of the output (a bounded
    /// amount; then the session is cut off), and waits for ssh.
    pub fn finish(mut self) -> Result<Ended> {
        drop(self.stdin.take());
        // The watchdog still runs: a host that keeps the session open
        // without a word is cut off here too.
        let drained = std::io::copy(&mut (&mut self.out).take(MAX_DRAIN), &mut std::io::sink());
        if let Some(cut_off) = self.watchdog.fired(&self.ssh.target.name) {
            return Err(cut_off);
        }
        if drained.context("reading the remote output")? == MAX_DRAIN {
            let _ = self.out.get_ref().0.kill();
            let _ = std::io::copy(&mut self.out, &mut std::io::sink());
        }
        let out = self
            .out
            .get_ref()
            .0
            .try_wait()?
            .context("ssh did not finish after closing its output")?;
        let output = Ended {
            status: out.status.code().unwrap_or(-1),
            stderr: tail(&out.stderr),
        };
        if output.status == SSH_CONNECTION_FAILED {
            bail!(self.ssh.connection_error(&output.stderr));
        }
        Ok(output)
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
