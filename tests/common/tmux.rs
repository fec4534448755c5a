//! A real pseudo-terminal for tests: tmux runs a script, the test types
//! with `send-keys` and reads the screen with `capture-pane`, as a person
//! would. Needs tmux (`apt-get install tmux`); without it the tests fail,
//! they never skip. Each test has its own tmux server (`-L` socket named
//! after the test and this process), killed when the test ends.
#![allow(dead_code)] // each test binary uses its part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long one prompt may take to appear (the plan after the last answer included).
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const EXIT_MARK: &str = "EDGEUP_EXIT=";

fn require_tmux() {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "tmux is required for the terminal tests (apt-get install tmux); .ci/run installs it"
    );
}

pub struct Tmux {
    socket: String,
    conf: PathBuf,
}

impl Tmux {
    /// Starts `script` (bash) in a 200x50 terminal; the script's last line
    /// prints EXIT_MARK and the exit code, then the pane stays open.
    pub fn start(name: &str, dir: &Path, script: &str) -> Tmux {
        require_tmux();
        kill_stale_servers();
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, "set -g history-limit 50000\n").expect("tmux.conf");
        let file = dir.join(format!("{name}.sh"));
        std::fs::write(
            &file,
            format!(
                "cd {}\n{script}\necho \"{EXIT_MARK}$code\"\nsleep 3600\n",
                dir.display()
            ),
        )
        .expect("script");
        let tmux = Tmux {
            socket: format!("edgeup-test-{name}-{}", std::process::id()),
            conf,
        };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-x", "200", "-y", "50", "-s", "main"])
            .arg(format!("bash {}", file.display()))
            .status()
            .expect("starting tmux");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.socket).arg("-f").arg(&self.conf);
        c
    }

    /// The whole pane, scrollback included, wrapped lines joined;
    /// with `attrs`, colours and attributes as escape sequences.
    pub fn screen(&self, attrs: bool) -> String {
        let mut c = self.cmd();
        c.args(["capture-pane", "-p", "-J", "-S", "-", "-t", "main"]);
        if attrs {
            c.arg("-e");
        }
        let out = c.output().expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until one of `needles` is on the screen; returns its index.
    pub fn wait_any(&self, needles: &[&str]) -> usize {
        let started = Instant::now();
        loop {
            let screen = self.screen(false);
            if let Some(i) = needles.iter().position(|n| screen.contains(n)) {
                return i;
            }
            if started.elapsed() > PROMPT_TIMEOUT {
                panic!("none of {needles:?} appeared within {PROMPT_TIMEOUT:?}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for(&self, needle: &str) {
        self.wait_any(&[needle]);
    }

    /// Types `text` literally and presses Enter.
    pub fn line(&self, text: &str) {
        if !text.is_empty() {
            let ok = self
                .cmd()
                .args(["send-keys", "-t", "main", "-l", text])
                .status()
                .expect("send-keys");
            assert!(ok.success());
        }
        self.key("Enter");
    }

    pub fn key(&self, key: &str) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "main", key])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    /// The exit code the script printed.
    pub fn exit_code(&self) -> i32 {
        self.wait_for(EXIT_MARK);
        let screen = self.screen(false);
        let line = screen
            .lines()
            .find_map(|l| l.split(EXIT_MARK).nth(1))
            .unwrap_or_default();
        line.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no exit code in {line:?}; screen:\n{screen}"))
    }
}

/// tmux servers of test processes that no longer exist (killed before
/// their guards ran): each still runs a `sleep 3600` pane.
fn kill_stale_servers() {
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    let Ok(sockets) = std::fs::read_dir(format!("/tmp/tmux-{uid}")) else {
        return;
    };
    for socket in sockets.flatten() {
        let name = socket.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("edgeup-test-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = Command::new("tmux")
                .args(["-L", &name, "kill-server"])
                .stderr(std::process::Stdio::null())
                .status();
            let _ = std::fs::remove_file(socket.path());
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
