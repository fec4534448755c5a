//! One host of a fleet run, in one ssh session: the host runs the edgeup
//! and site it already has when they are what this run would send (a
//! re-run), or answers the probe; then the controller sends what differs
//! on the session's stdin with a script that checks it by SHA-256,
//! installs it and runs `edgeup --json apply|plan`. Its events stream
//! back. A host whose packaged `/usr/bin/edgeup` is already the binary
//! fleet would send runs that one and gets no copy (fleet never writes the
//! package's file).

use super::inventory::FleetHost;
use super::ssh::{Ended, Session, Ssh, quote};
use crate::report::{Event, Line};
use anyhow::{Context, Result, bail};
use std::io::Write;

/// Where the binary and the site live on every host.
pub const REMOTE_BINARY: &str = crate::paths::INSTALL_PATH;
/// The package's edgeup: run when it is the binary fleet would send.
pub const PACKAGED_BINARY: &str = crate::paths::PACKAGED_PATH;
pub const REMOTE_SITE: &str = crate::paths::SITE_FILE;

/// How one host ended.
#[derive(Debug, Clone)]
pub struct HostOutcome {
    pub name: String,
    pub result: Result<Finished, String>,
}

#[derive(Debug, Clone)]
pub struct Finished {
    // Everything here is the host's own account of its run: shown as such.
    /// The remote run's recap (an `Event::Recap`).
    pub recap: Event,
    pub exit: i32,
    /// What had to be copied (empty on a re-run).
    pub copied: Vec<String>,
}

pub struct HostRun<'a> {
    pub ssh: Ssh<'a>,
    pub command: &'a str,
    /// Local edgeup binaries by architecture (`uname -m`).
    pub binaries: &'a super::Binaries,
}

/// What runs a remote command as root for a `become` host.
fn sudo(with_sudo: bool) -> &'static str {
    if with_sudo { "sudo -n " } else { "" }
}

/// `mktemp -d` makes the host's staging directory from this template (on
/// the host, for the host: the controller never names a path in it).
const STAGING_TEMPLATE: &str = "/tmp/edgeup.XXXXXXXXXX";

/// The exit status of the copy script when a copy failed before edgeup
/// ran (edgeup's own statuses are below 10).
const COPY_FAILED: i32 = 97;

/// What the probe found on the host.
struct ProbeAnswer {
    arch: String,
    /// The login user's uid.
    uid: String,
    sums: Vec<(String, String)>,
}

impl ProbeAnswer {
    fn parse(stdout: &str) -> Result<ProbeAnswer> {
        let mut lines = stdout.lines();
        let arch = lines.next().unwrap_or("").trim().to_string();
        let uid = lines.next().unwrap_or("").trim().to_string();
        if arch.is_empty()
            || !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || !uid.chars().all(|c| c.is_ascii_digit())
            || uid.is_empty()
        {
            bail!(
                "unexpected answer to the probe: {}",
                super::printable(&format!("{stdout:?}"))
            );
        }
        let sums = lines
            .filter_map(|l| {
                let (sum, path) = l.split_once(char::is_whitespace)?;
                Some((path.trim().to_string(), sum.to_string()))
            })
            .collect();
        Ok(ProbeAnswer { arch, uid, sums })
    }

    fn sum(&self, path: &str) -> Option<&str> {
        self.sums
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, s)| s.as_str())
    }

    /// The edgeup already on the host that is the binary with `sha256`: the
    /// packaged one first, then fleet's own copy; None: it must be copied.
    fn installed_binary(&self, sha256: &str) -> Option<&'static str> {
        [PACKAGED_BINARY, REMOTE_BINARY]
            .into_iter()
            .find(|path| self.sum(path) == Some(sha256))
    }
}

/// The line a host prints before its probe answer, when it cannot run at once.
const PROBE_MARK: &str = "edgeup-fleet-probe";
/// The line that ends the probe answer; the host then reads the copy script.
const PROBE_END: &str = "edgeup-fleet-probe-end";

/// The most a probe answer may hold.
const PROBE_MAX: usize = 64 * 1024;

/// What the controller sends after the probe: the script, then the bytes
/// of each file it reads with `head -c`, in order.
struct Copy {
    script: String,
    files: Vec<Payload>,
    /// What is copied, as the report names it.
    copied: Vec<String>,
}

enum Payload {
    File(std::path::PathBuf, u64),
    Bytes(Vec<u8>),
}

impl HostRun<'_> {
    pub fn run(&self, on_event: &mut dyn FnMut(&Event)) -> Result<Finished> {
        let target = self.ssh.target;
        let site_yaml = site_file_text(&target.config)?;
        let site_sum = super::sha256_hex(site_yaml.as_bytes());
        let mut session = self.ssh.session(&first_script(
            target.sudo,
            self.binaries,
            self.command,
            &site_sum,
        ))?;
        let mut recap = None;
        match session.line()? {
            Some(line) if line == PROBE_MARK => {}
            first => {
                // The host had this edgeup and this site: its run is streaming.
                if let Some(line) = first {
                    event(&line, &mut recap, on_event);
                }
                while let Some(line) = session.line()? {
                    event(&line, &mut recap, on_event);
                }
                return self.finished(recap, session.finish()?, Vec::new());
            }
        }
        let mut answer = String::new();
        let mut ended = false;
        while let Some(line) = session.line()? {
            if line == PROBE_END {
                ended = true;
                break;
            }
            if answer.len() + line.len() >= PROBE_MAX {
                bail!(
                    "{} sent a probe answer longer than {PROBE_MAX} bytes",
                    target.name
                );
            }
            answer.push_str(&line);
            answer.push('\n');
        }
        if !ended {
            let output = session.finish()?;
            if output.status != 0 {
                bail!("{}", explain_sudo(&output.stderr, target));
            }
            bail!(
                "unexpected answer to the probe (it ended early): {}",
                super::printable(&format!("{answer:?}"))
            );
        }
        // Leaving here closes the session's stdin: the host's script ends.
        let probe = ProbeAnswer::parse(&answer)?;
        if probe.uid != "0" && !target.sudo {
            bail!(
                "{} logs in as {}, not root, and become is off: edgeup needs root there; \
                 log in as root, or set become: true (sudo -n) for this host",
                target.name,
                target.user
            );
        }
        let binary = self.binaries.for_arch(&probe.arch)?;
        let copy = copy(
            target.sudo,
            self.command,
            &probe,
            &binary,
            site_yaml,
            &site_sum,
        )?;
        self.send_and_run(session, copy, on_event)
    }

    /// Writes the copy script and the files on the session's stdin (in a
    /// thread of its own: the host's output is read meanwhile, so neither
    /// side can block the other) and streams the run's events.
    fn send_and_run(
        &self,
        mut session: Session<'_>,
        copy: Copy,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Finished> {
        let stdin = session.stdin();
        let mut recap = None;
        let (read, written) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || send(stdin, &copy.script, &copy.files));
            let read = (|| {
                while let Some(line) = session.line()? {
                    event(&line, &mut recap, on_event);
                }
                session.finish()
            })();
            // A session that failed was cut off: the writer's next write fails.
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the thread sending files panicked")));
            (read, written)
        });
        let output = read?;
        if output.status == COPY_FAILED || (recap.is_none() && written.is_err()) {
            let why = explain_sudo(&output.stderr, self.ssh.target);
            return Err(match written {
                Err(e) if why.is_empty() => {
                    e.context(format!("sending files to {}", self.ssh.target.name))
                }
                _ => anyhow::anyhow!("copying to {} failed: {why}", self.ssh.target.name),
            });
        }
        self.finished(recap, output, copy.copied)
    }

    fn finished(
        &self,
        recap: Option<Event>,
        output: Ended,
        copied: Vec<String>,
    ) -> Result<Finished> {
        let Some(recap) = recap else {
            bail!(
                "edgeup on {} ended without a recap (exit {}): {}",
                self.ssh.target.name,
                output.status,
                explain_sudo(&output.stderr, self.ssh.target)
            );
        };
        Ok(Finished {
            recap,
            exit: output.status,
            copied,
        })
    }
}

/// The copy script for what differs. `apply` installs the binary and the
/// site where they live, then runs them. `plan` changes nothing on the
/// host: what differs is run from the staging directory and never
/// installed (the site file is the record `edgeup renew` and `status`
/// read: a plan must not replace it).
fn copy(
    with_sudo: bool,
    command: &str,
    probe: &ProbeAnswer,
    binary: &super::Binary,
    site_yaml: String,
    site_sum: &str,
) -> Result<Copy> {
    let sudo = sudo(with_sudo);
    let install = command == "apply";
    let mut script = format!(
        "staging=$(mktemp -d {STAGING_TEMPLATE}) || exit {COPY_FAILED}; \
         trap 'rm -rf \"$staging\"' EXIT; \
         fail() {{ echo \"edgeup fleet: $*\" >&2; exit {COPY_FAILED}; }}; \
         receive() {{ head -c \"$2\" > \"$staging/$1\" && \
           echo \"$3  $staging/$1\" | sha256sum -c --status || \
           fail \"$1 arrived damaged: what the host received is not what was sent\"; }}; "
    );
    let mut files = Vec::new();
    let mut copied = Vec::new();
    // Receives one file into the staging directory; `apply` installs it at
    // `dest` with `mode` (the path edgeup then runs with), `plan` leaves it
    // staged and runs it from there.
    let mut receive = |name: &str, size: u64, sum: &str, mode: &str, dest: &str| {
        script.push_str(&format!("receive {name} {size} {sum}; "));
        if install {
            script.push_str(&format!(
                "{sudo}install -D -m {mode} -o root -g root \"$staging/{name}\" {dest} \
                 </dev/null || fail 'installing {dest}'; "
            ));
            quote(dest)
        } else {
            script.push_str(&format!(
                "chmod {mode} \"$staging/{name}\" || fail 'chmod'; "
            ));
            format!("\"$staging/{name}\"")
        }
    };
    let remote_binary = match probe.installed_binary(&binary.sha256) {
        Some(installed) => quote(installed),
        None => {
            let size = std::fs::metadata(&binary.path)
                .with_context(|| format!("reading {}", binary.path.display()))?
                .len();
            files.push(Payload::File(binary.path.clone(), size));
            copied.push(format!("edgeup ({})", probe.arch));
            receive("edgeup", size, &binary.sha256, "0755", REMOTE_BINARY)
        }
    };
    let remote_site = if probe.sum(REMOTE_SITE) == Some(site_sum) {
        quote(REMOTE_SITE)
    } else {
        let size = site_yaml.len() as u64;
        files.push(Payload::Bytes(site_yaml.into_bytes()));
        copied.push("site.yaml".into());
        receive("site.yaml", size, site_sum, "0600", REMOTE_SITE)
    };
    script.push_str(&format!(
        "{sudo}{remote_binary} {} </dev/null",
        arguments(command, &remote_site)
    ));
    Ok(Copy {
        script,
        files,
        copied,
    })
}

/// The copy script's length on a line, the script, then each file's bytes.
fn send(stdin: Option<impl Write>, script: &str, files: &[Payload]) -> Result<()> {
    let mut stdin = stdin.context("the session's stdin was already taken")?;
    write!(stdin, "{}\n{script}", script.len())?;
    for file in files {
        match file {
            Payload::Bytes(bytes) => stdin.write_all(bytes)?,
            Payload::File(path, size) => {
                let f = std::fs::File::open(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                // Never more than announced; a shorter file fails its checksum.
                std::io::copy(&mut std::io::Read::take(f, *size), &mut stdin)?;
            }
        }
    }
    Ok(())
}

/// The session's script: runs the installed edgeup when the host has
/// exactly the binary (for its architecture) and the site this run would
/// send, as root (or with sudo); else prints PROBE_MARK, the probe
/// (architecture, uid, checksums of what is installed; the site file is
/// root's: sudo) and PROBE_END, then reads the copy script's length and
/// the copy script from stdin and runs it (nothing, if stdin ends there).
/// Every value put in the script is hex or a constant path.
fn first_script(
    with_sudo: bool,
    binaries: &super::Binaries,
    command: &str,
    site_sum: &str,
) -> String {
    let sudo = sudo(with_sudo);
    let arms: String = binaries
        .all()
        .filter(|(arch, _)| arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(arch, b)| format!("{arch}) want={};; ", b.sha256))
        .collect();
    let as_root = if with_sudo {
        "true"
    } else {
        "[ \"$(id -u)\" = 0 ]"
    };
    format!(
        "want=; case \"$(uname -m)\" in {arms}esac; \
         if [ -n \"$want\" ] && {as_root}; then \
           for bin in {PACKAGED_BINARY} {REMOTE_BINARY}; do \
             if {sudo}sh -c \"echo '$want  $bin' | sha256sum -c --status && \
                echo '{site_sum}  {REMOTE_SITE}' | sha256sum -c --status\" </dev/null 2>/dev/null; then \
               exec {sudo}\"$bin\" {args} </dev/null; \
             fi; \
           done; \
         fi; \
         echo {PROBE_MARK}; \
         uname -m && id -u && \
         {sudo}sh -c 'sha256sum {PACKAGED_BINARY} {REMOTE_BINARY} {REMOTE_SITE} 2>/dev/null; true' \
           </dev/null || exit 1; \
         echo {PROBE_END}; \
         IFS= read -r size || exit 0; \
         case \"$size\" in ''|*[!0-9]*) exit 1;; esac; \
         next=$(head -c \"$size\") && eval \"$next\"",
        args = arguments(command, &quote(REMOTE_SITE)),
    )
}

/// `--json apply --yes -f SITE` (or `plan`); `site` is already a shell word.
fn arguments(command: &str, site: &str) -> String {
    format!(
        "--json {command} {yes}-f {site}",
        yes = if command == "apply" { "--yes " } else { "" },
    )
}

/// One line of a remote run, decoded (`output` when it is not an event
/// this edgeup reads); the recap is kept.
fn event(line: &str, recap: &mut Option<Event>, on_event: &mut dyn FnMut(&Event)) {
    let event = Line::decode(line).event;
    if matches!(event, Event::Recap { .. }) {
        *recap = Some(event.clone());
    }
    on_event(&event);
}

/// The site as edgeup writes it on the host (the same text every run, so its
/// checksum tells whether it changed).
pub fn site_file_text(config: &crate::site::Config) -> Result<String> {
    let yaml = config.to_yaml()?;
    Ok(format!(
        "# Written by `edgeup fleet`; edit the inventory instead.\n{yaml}"
    ))
}

/// sudo's "a password is required" in words that say what to do.
fn explain_sudo(stderr: &str, target: &FleetHost) -> String {
    if stderr.contains("password is required") || stderr.contains("a terminal is required") {
        return format!(
            "sudo on {} needs a password for {} and edgeup never types one: allow passwordless \
             sudo for this user (NOPASSWD), or log in as root (user: root, become: false)",
            target.name, target.user
        );
    }
    stderr.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::{PACKAGED_BINARY, PROBE_END, PROBE_MARK, ProbeAnswer, REMOTE_BINARY, REMOTE_SITE};
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    fn probe(sums: &[(&str, &str)]) -> ProbeAnswer {
        let mut out = String::from("x86_64\n0\n");
        for (path, sum) in sums {
            out.push_str(&format!("{sum}  {path}\n"));
        }
        ProbeAnswer::parse(&out).expect("probe")
    }

    #[test]
    fn the_packaged_binary_runs_when_it_is_the_one_fleet_would_send() {
        let both = probe(&[
            (PACKAGED_BINARY, "aa"),
            (REMOTE_BINARY, "aa"),
            (REMOTE_SITE, "ss"),
        ]);
        assert_eq!(both.installed_binary("aa"), Some(PACKAGED_BINARY));
        let packaged = probe(&[(PACKAGED_BINARY, "aa")]);
        assert_eq!(packaged.installed_binary("aa"), Some(PACKAGED_BINARY));
    }

    #[test]
    fn otherwise_fleet_runs_or_copies_its_own() {
        let other_package = probe(&[(PACKAGED_BINARY, "bb"), (REMOTE_BINARY, "aa")]);
        assert_eq!(other_package.installed_binary("aa"), Some(REMOTE_BINARY));
        let stale = probe(&[(PACKAGED_BINARY, "bb"), (REMOTE_BINARY, "cc")]);
        assert_eq!(stale.installed_binary("aa"), None);
        assert_eq!(probe(&[(REMOTE_SITE, "aa")]).installed_binary("aa"), None);
        assert_eq!(probe(&[]).installed_binary("aa"), None);
    }

    #[test]
    fn a_probe_answer_that_is_not_one_is_refused() {
        for bad in ["", "x86 64\n0\n", "x86_64\nroot\n", "x86_64\n"] {
            assert!(ProbeAnswer::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// A stand-in sudo that runs its command, and a stand-in edgeup (the
    /// "binary" sent) that prints its arguments, the site it was given, and
    /// a recap.
    fn stand_ins(dir: &std::path::Path) -> crate::fleet::Binary {
        let sudo = dir.join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n").expect("sudo");
        std::fs::set_permissions(&sudo, PermissionsExt::from_mode(0o755)).expect("chmod");
        let edgeup = dir.join("edgeup-build");
        let text = "#!/bin/sh\necho \"args: $*\"\necho \"from: $0\"\nsed 's/^/site: /' \"$4\"\n\
                    echo '{\"event\":\"recap\",\"ok\":1}'\n";
        std::fs::write(&edgeup, text).expect("edgeup");
        crate::fleet::Binary {
            path: edgeup,
            sha256: crate::fleet::sha256_hex(text.as_bytes()),
        }
    }

    /// The whole session against a real sh on a host where nothing is
    /// installed, in plan mode (nothing installed, so no root needed): the
    /// probe parses, the copy script and both files go over stdin, the
    /// staged edgeup runs with the staged site, and the staging directory
    /// is gone afterwards.
    #[test]
    fn a_session_probes_receives_checks_and_runs_what_was_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let binary = stand_ins(dir.path());
        let binaries = crate::fleet::Binaries {
            by_arch: vec![(std::env::consts::ARCH.to_string(), binary.clone())],
        };
        let site = "domain: chat.example.com\n".to_string();
        let site_sum = crate::fleet::sha256_hex(site.as_bytes());
        for with_sudo in [false, true] {
            let script = super::first_script(with_sudo, &binaries, "plan", &site_sum);
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sh");
            let mut out = BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            out.read_line(&mut line).expect("read");
            assert_eq!(line.trim_end(), PROBE_MARK);
            let mut answer = String::new();
            loop {
                line.clear();
                out.read_line(&mut line).expect("read");
                if line.trim_end() == PROBE_END || line.is_empty() {
                    break;
                }
                answer.push_str(&line);
            }
            let probe = ProbeAnswer::parse(&answer).expect("the probe parses");
            assert_eq!(probe.arch, std::env::consts::ARCH);
            let copy = super::copy(with_sudo, "plan", &probe, &binary, site.clone(), &site_sum)
                .expect("copy");
            assert_eq!(copy.copied.len(), 2, "{:?}", copy.copied);
            let stdin = child.stdin.take();
            super::send(stdin, &copy.script, &copy.files).expect("send");
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
            let done = child.wait_with_output().expect("wait");
            assert!(
                done.status.success(),
                "{rest}\n{}",
                String::from_utf8_lossy(&done.stderr)
            );
            assert!(rest.contains("args: --json plan -f /tmp/edgeup."), "{rest}");
            assert!(rest.contains("site: domain: chat.example.com"), "{rest}");
            let from = rest
                .lines()
                .find_map(|l| l.strip_prefix("from: "))
                .unwrap_or_default();
            let staging = std::path::Path::new(from).parent().expect("staging");
            assert!(staging.starts_with("/tmp"), "{from}");
            assert!(!staging.exists(), "{} was left behind", staging.display());
        }
    }

    /// A file that arrives different from what was announced is never run.
    #[test]
    fn a_damaged_copy_is_not_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut binary = stand_ins(dir.path());
        binary.sha256 = "0".repeat(64);
        let answer = format!("{}\n{}\n", std::env::consts::ARCH, 0);
        let probe = ProbeAnswer::parse(&answer).expect("probe");
        let copy = super::copy(
            false,
            "plan",
            &probe,
            &binary,
            "x\n".into(),
            &"1".repeat(64),
        )
        .expect("copy");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "next=$(head -c {}) && eval \"$next\"",
                copy.script.len()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh");
        let stdin = child.stdin.take();
        // The script alone (the length line is the first script's to read).
        let mut w = stdin.expect("stdin");
        std::io::Write::write_all(&mut w, copy.script.as_bytes()).expect("write");
        for f in &copy.files {
            if let super::Payload::File(path, _) = f {
                std::io::Write::write_all(&mut w, &std::fs::read(path).expect("read")).expect("w");
            }
        }
        drop(w);
        let done = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&done.stdout);
        assert_eq!(done.status.code(), Some(super::COPY_FAILED), "{stdout}");
        assert!(
            !stdout.contains("args:"),
            "the damaged binary ran: {stdout}"
        );
        assert!(
            String::from_utf8_lossy(&done.stderr).contains("edgeup arrived damaged"),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
}
