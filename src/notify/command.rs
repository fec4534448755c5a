//! A command target: the absolute path run with no arguments, the event's
//! JSON on stdin (then closed), stdout and stderr captured, killed (its
//! whole process group) when it outlives the bound.

use super::Failure;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Output kept per stream: the end of it, enough to quote.
const KEEP_BYTES: usize = 16 * 1024;
/// Lines of a failed hook's output quoted in its result.
const TAIL_LINES: usize = 5;
/// How long the output readers get after the hook ended (or was killed):
/// a process it left behind may keep the pipes open, and nothing waits on it.
const READ_GRACE: Duration = Duration::from_millis(200);

/// Runs `program` with `json` on stdin; Ok when it exits 0 within `bound`.
pub fn deliver(program: &Path, json: &str, bound: Duration) -> Result<(), Failure> {
    if !program.is_absolute() {
        return Err(Failure::other(format!(
            "{} is not an absolute path",
            program.display()
        )));
    }
    trusted(program)?;
    let mut child = spawn(program)?;
    let stdout = capture(child.stdout.take());
    let stderr = capture(child.stderr.take());
    if let Some(mut stdin) = child.stdin.take() {
        let json = json.as_bytes().to_vec();
        // A hook that never reads must not block us: write from a thread;
        // dropping the handle there closes stdin.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&json);
        });
    }
    let status = wait_bounded(&mut child, bound);
    if status.is_none() {
        kill_group(&child);
        let _ = child.wait();
    }
    let deadline = Instant::now() + READ_GRACE;
    let tail = tail_of(&stderr.take(deadline), &stdout.take(deadline));
    let quoted = if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    };
    match status {
        None => Err(Failure::timed_out(format!(
            "did not finish within {} s and was killed{quoted}",
            bound.as_secs_f64()
        ))),
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(Failure::other(match s.code() {
            Some(code) => format!("exited with status {code}{quoted}"),
            None => format!("was killed by a signal ({s}){quoted}"),
        })),
    }
}

/// Starts the hook in a process group of its own (a timeout kills what it
/// started, too). "Text file busy" is retried for a moment: the file was
/// just rewritten, or another thread forked while holding it open.
fn spawn(program: &Path) -> Result<Child, Failure> {
    let mut tries = 0;
    loop {
        let spawned = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir("/")
            .process_group(0)
            .spawn();
        match spawned {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                return other.map_err(|e| Failure::other(format!("could not start it: {e}")));
            }
        }
    }
}

/// The hook runs as root: refused unless it is a file that only its owner
/// (root or edgeup's own user) can change.
fn trusted(program: &Path) -> Result<(), Failure> {
    let meta = std::fs::metadata(program)
        .map_err(|e| Failure::other(format!("could not start it: {e}")))?;
    if !meta.is_file() {
        return Err(Failure::other("not a regular file".into()));
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(Failure::other(format!(
            "refused: owned by uid {}, not root (it runs as root)",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Failure::other(format!(
            "refused: writable by group or others (mode {:o}; it runs as root): chmod go-w it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The exit status, or None when `bound` passed first.
fn wait_bounded(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            // Cannot be waited for (should not happen): treat as hung.
            Err(_) => return None,
        }
    }
}

fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // hook leads (process_group(0)); no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// A stream read on a thread into a shared buffer that keeps its end.
struct Captured {
    buffer: Arc<Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Captured {
    /// What was read, after waiting until `deadline` at most for the end.
    fn take(&self, deadline: Instant) -> String {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let bytes = self.buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn capture<R: Read + Send + 'static>(stream: Option<R>) -> Captured {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = std::sync::mpsc::channel();
    if let Some(mut stream) = stream {
        let shared = Arc::clone(&buffer);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = shared.lock() {
                    b.extend_from_slice(&chunk[..n]);
                    let excess = b.len().saturating_sub(KEEP_BYTES);
                    b.drain(..excess);
                }
            }
            let _ = tx.send(());
        });
    }
    Captured { buffer, done }
}

/// The last lines of stderr (stdout when stderr is empty), joined with " | ".
fn tail_of(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    super::state::one_line(&lines[start..].join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_prefers_stderr_and_keeps_the_last_lines() {
        assert_eq!(tail_of("a\nb\n", "out"), "a | b");
        assert_eq!(tail_of("  \n", "out\n"), "out");
        let many: String = (1..=9).map(|i| format!("line {i}\n")).collect();
        assert_eq!(
            tail_of(&many, ""),
            "line 5 | line 6 | line 7 | line 8 | line 9"
        );
    }

    #[test]
    fn a_relative_path_is_refused() {
        let err =
            deliver(Path::new("hook.sh"), "{}", Duration::from_secs(1)).expect_err("relative");
        assert!(err.message.contains("not an absolute path"), "{err:?}");
    }
}
