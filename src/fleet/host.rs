//! One host of a fleet run: probe, copy what changed (by checksum), run
//! `edgeup --json apply|plan` remotely, and stream its events. A host whose
//! packaged `/usr/bin/edgeup` is already the binary fleet would send runs
//! that one and gets no copy (fleet never writes the package's file).

use super::inventory::Target;
use super::ssh::{Output, Ssh, quote};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;

/// Where the binary and the site live on every host.
pub const REMOTE_BINARY: &str = crate::acme::INSTALL_PATH;
/// The package's edgeup: run when it is the binary fleet would send.
pub const PACKAGED_BINARY: &str = crate::acme::PACKAGED_PATH;
pub const REMOTE_SITE: &str = "/etc/edgeup/site.yaml";

/// How one host ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub result: Result<Finished, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Finished {
    // Everything here is the host's own account of its run: shown as such.
    /// The remote run's recap event (ok/changed/failed/skipped).
    pub recap: Value,
    pub exit: i32,
    /// What had to be copied (empty on a re-run).
    pub copied: Vec<String>,
}

pub struct Job<'a> {
    pub ssh: Ssh<'a>,
    pub command: &'a str,
    /// Local edgeup binaries by architecture (`uname -m`).
    pub binaries: &'a super::Binaries,
    pub work_dir: &'a Path,
}

/// What runs a remote command as root for a `become` host.
fn sudo(with_sudo: bool) -> &'static str {
    if with_sudo { "sudo -n " } else { "" }
}

/// `mktemp -d` makes the staging directory from this template.
const STAGING_TEMPLATE: &str = "/tmp/edgeup.XXXXXXXXXX";

/// `path` is what `mktemp -d STAGING_TEMPLATE` returns: the prefix and ten
/// letters or digits, nothing else (no `..`, no `/`, no spaces).
fn is_staging_dir(path: &str) -> bool {
    let prefix = STAGING_TEMPLATE.trim_end_matches('X');
    path.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == STAGING_TEMPLATE.len() - prefix.len()
            && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// What the probe found on the host.
struct Probe {
    arch: String,
    /// The login user's uid.
    uid: String,
    /// A private directory (mktemp -d, owned by the login user) for uploads.
    staging: String,
    sums: Vec<(String, String)>,
}

impl Probe {
    fn parse(stdout: &str) -> Result<Probe> {
        let mut lines = stdout.lines();
        let arch = lines.next().unwrap_or("").trim().to_string();
        let uid = lines.next().unwrap_or("").trim().to_string();
        let staging = lines.next().unwrap_or("").trim().to_string();
        // The controller uploads into, runs from and `rm -rf`s this path: it
        // must be exactly what `mktemp -d STAGING_TEMPLATE` makes, never a
        // path a hostile host chose.
        if arch.is_empty()
            || !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || !uid.chars().all(|c| c.is_ascii_digit())
            || uid.is_empty()
            || !is_staging_dir(&staging)
        {
            bail!(
                "unexpected answer to the probe: {}",
                super::report::printable(&format!("{stdout:?}"))
            );
        }
        let sums = lines
            .filter_map(|l| {
                let (sum, path) = l.split_once(char::is_whitespace)?;
                Some((path.trim().to_string(), sum.to_string()))
            })
            .collect();
        Ok(Probe {
            arch,
            uid,
            staging,
            sums,
        })
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

/// The first line a host prints when it cannot run at once and answers
/// the probe instead.
const PROBE_MARK: &str = "edgeup-fleet-probe";

/// The most a probe answer may hold.
const PROBE_MAX: usize = 64 * 1024;

impl Job<'_> {
    pub fn run(&self, on_event: &mut dyn FnMut(&Value)) -> Result<Finished> {
        let target = self.ssh.target;
        self.ssh.connect()?;
        let site_yaml = site_file_text(&target.config)?;
        let site_sum = super::sha256_hex(site_yaml.as_bytes());
        // One session: when the host already has this binary and this site,
        // it runs them at once (a re-run costs one round trip); otherwise it
        // answers the probe (after PROBE_MARK) and the copy path follows.
        let mut recap = Value::Null;
        let mut answer = String::new();
        let mut probing = false;
        let mut first = true;
        let output = self.ssh.stream(&self.first_script(&site_sum), |line| {
            if std::mem::take(&mut first) && line == PROBE_MARK {
                probing = true;
            } else if probing {
                if answer.len() + line.len() < PROBE_MAX {
                    answer.push_str(line);
                    answer.push('\n');
                }
            } else {
                event(line, &mut recap, on_event);
            }
        })?;
        if !probing {
            return self.finished(recap, output, Vec::new());
        }
        let parsed = Probe::parse(&answer);
        if output.status != 0 {
            if let Ok(p) = &parsed {
                self.remove_staging(&p.staging);
            }
            bail!("{}", explain_sudo(&output.stderr, target));
        }
        let probe = parsed?;
        if probe.uid != "0" && !target.sudo {
            self.remove_staging(&probe.staging);
            bail!(
                "{} logs in as {}, not root, and become is off: edgeup needs root there; \
                 log in as root, or set become: true (sudo -n) for this host",
                target.name,
                target.user
            );
        }
        let result = self.converge(&probe, &site_yaml, &site_sum, on_event);
        self.remove_staging(&probe.staging);
        result
    }

    fn first_script(&self, site_sum: &str) -> String {
        first_script(self.ssh.target.sudo, self.binaries, self.command, site_sum)
    }

    fn arguments(&self, site: &str) -> String {
        arguments(self.command, site)
    }

    fn finished(&self, recap: Value, output: Output, copied: Vec<String>) -> Result<Finished> {
        if recap.is_null() {
            bail!(
                "edgeup on {} ended without a recap (exit {}): {}",
                self.ssh.target.name,
                output.status,
                explain_sudo(&output.stderr, self.ssh.target)
            );
        }
        Ok(Finished {
            recap,
            exit: output.status,
            copied,
        })
    }

    fn remove_staging(&self, staging: &str) {
        let _ = self.ssh.run(&format!("rm -rf {}", quote(staging)));
    }

    /// `apply`: installs the binary and the site where they live, then runs
    /// them. `plan` changes nothing on the host: what differs is run from the
    /// staging directory and never installed (the site file is the record
    /// `edgeup renew` and `status` read: a plan must not replace it).
    fn converge(
        &self,
        probe: &Probe,
        site_yaml: &str,
        site_sum: &str,
        on_event: &mut dyn FnMut(&Value),
    ) -> Result<Finished> {
        let target = self.ssh.target;
        let install = self.command == "apply";
        let mut copied = Vec::new();
        let binary = self.binaries.for_arch(&probe.arch)?;
        let installed = probe.installed_binary(&binary.sha256);
        let mut remote_binary = installed.unwrap_or(REMOTE_BINARY).to_string();
        if installed.is_none() {
            let staged = format!("{}/edgeup", probe.staging);
            self.ssh.upload(&binary.path, &staged)?;
            if install {
                self.install(&staged, &binary.sha256, REMOTE_BINARY, "0755")?;
            } else {
                self.verify(&staged, &binary.sha256, "chmod 0755")?;
                remote_binary = staged;
            }
            copied.push(format!("edgeup ({})", probe.arch));
        }
        let mut remote_site = REMOTE_SITE.to_string();
        if probe.sum(REMOTE_SITE) != Some(site_sum) {
            let local = self.work_dir.join(format!(
                "site-{}.yaml",
                super::sha256_hex(target.name.as_bytes())
            ));
            write_private(&local, site_yaml.as_bytes())?;
            let staged = format!("{}/site.yaml", probe.staging);
            let uploaded = self.ssh.upload(&local, &staged);
            let _ = std::fs::remove_file(&local);
            uploaded?;
            if install {
                self.install(&staged, site_sum, REMOTE_SITE, "0600")?;
            } else {
                self.verify(&staged, site_sum, "true")?;
                remote_site = staged;
            }
            copied.push("site.yaml".into());
        }
        let mut recap = Value::Null;
        let output = self.ssh.stream(
            &format!(
                "{sudo}{bin} {args}",
                sudo = sudo(target.sudo),
                bin = quote(&remote_binary),
                args = self.arguments(&remote_site),
            ),
            |line| event(line, &mut recap, on_event),
        )?;
        self.finished(recap, output, copied)
    }

    /// Checks what arrived in the staging directory against the local
    /// checksum (a cut connection must not install half a binary), then runs `then`.
    fn verify(&self, staged: &str, sha256: &str, then: &str) -> Result<()> {
        let out = self.ssh.run(&format!(
            "echo {sha256}'  '{path} | sha256sum -c --quiet --status && {then} {path}",
            path = quote(staged)
        ))?;
        if out.status != 0 {
            bail!(
                "{staged} on {} does not match what was sent: {}",
                self.ssh.target.name,
                out.stderr.trim()
            );
        }
        Ok(())
    }

    /// Verifies the staged file, then installs it with the wanted mode, owned by root.
    fn install(&self, staged: &str, sha256: &str, remote: &str, mode: &str) -> Result<()> {
        let target = self.ssh.target;
        self.verify(staged, sha256, "true")?;
        let out = self.ssh.run(&format!(
            "{sudo}install -D -m {mode} -o root -g root {staged} {remote}",
            sudo = sudo(target.sudo),
            staged = quote(staged),
        ))?;
        if out.status != 0 {
            bail!("installing {remote}: {}", explain_sudo(&out.stderr, target));
        }
        Ok(())
    }
}

/// The first (often only) command of a host's run: runs the installed
/// edgeup when the host has exactly the binary (for its architecture) and
/// the site this run would send, as root (or with sudo); else prints
/// PROBE_MARK and the probe: architecture, uid, a private staging directory
/// (never a predictable /tmp name another local user could plant) and the
/// checksums of what is installed (the site file is root's: sudo). Every
/// value put in the script is hex or a constant path.
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
                echo '{site_sum}  {REMOTE_SITE}' | sha256sum -c --status\" 2>/dev/null; then \
               exec {sudo}\"$bin\" {args}; \
             fi; \
           done; \
         fi; \
         echo {PROBE_MARK}; \
         uname -m && id -u && mktemp -d {STAGING_TEMPLATE} && \
         {sudo}sh -c 'sha256sum {PACKAGED_BINARY} {REMOTE_BINARY} {REMOTE_SITE} 2>/dev/null; true'",
        args = arguments(command, REMOTE_SITE),
    )
}

/// `--json apply --yes -f SITE` (or `plan`).
fn arguments(command: &str, site: &str) -> String {
    format!(
        "--json {command} {yes}-f {site}",
        yes = if command == "apply" { "--yes " } else { "" },
        site = quote(site),
    )
}

/// One line of a remote run: an event (the recap kept), or plain output.
fn event(line: &str, recap: &mut Value, on_event: &mut dyn FnMut(&Value)) {
    match serde_json::from_str::<Value>(line) {
        Ok(event) if event.is_object() => {
            if event["event"] == "recap" {
                *recap = event.clone();
            }
            on_event(&event);
        }
        _ => on_event(&serde_json::json!({"event": "output", "line": line})),
    }
}

/// The site as edgeup writes it on the host (the same text every run, so its
/// checksum tells whether it changed).
pub fn site_file_text(config: &crate::site::Config) -> Result<String> {
    let yaml = config.to_yaml()?;
    Ok(format!(
        "# Written by `edgeup fleet`; edit the inventory instead.\n{yaml}"
    ))
}

/// A new 0600 file (O_EXCL, never through a link: whatever is at `path` is
/// an error, not something to write into).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// sudo's "a password is required" in words that say what to do.
fn explain_sudo(stderr: &str, target: &Target) -> String {
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
    use super::{PACKAGED_BINARY, Probe, REMOTE_BINARY, REMOTE_SITE};

    fn probe(sums: &[(&str, &str)]) -> Probe {
        let mut out = String::from("x86_64\n0\n/tmp/edgeup.AbCdE12345\n");
        for (path, sum) in sums {
            out.push_str(&format!("{sum}  {path}\n"));
        }
        Probe::parse(&out).expect("probe")
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

    /// The first script, run by a real sh (a stand-in sudo that runs its
    /// command): on a host without this edgeup it answers the probe, which
    /// parses, and ends well.
    #[test]
    fn the_first_script_answers_the_probe_when_nothing_is_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sudo = dir.path().join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n").expect("sudo");
        std::fs::set_permissions(&sudo, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let binaries = crate::fleet::Binaries {
            by_arch: vec![(
                std::env::consts::ARCH.to_string(),
                crate::fleet::Binary {
                    path: "/nonexistent".into(),
                    sha256: "0".repeat(64),
                },
            )],
        };
        for with_sudo in [false, true] {
            let script = super::first_script(with_sudo, &binaries, "apply", &"1".repeat(64));
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
                .output()
                .expect("sh");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{script}\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let answer = stdout
                .strip_prefix(&format!("{}\n", super::PROBE_MARK))
                .unwrap_or_else(|| panic!("no probe mark: {stdout}"));
            let probe = Probe::parse(answer).expect("the probe parses");
            assert_eq!(probe.arch, std::env::consts::ARCH);
            let _ = std::fs::remove_dir(&probe.staging);
        }
    }

    #[test]
    fn only_what_mktemp_makes_is_a_staging_directory() {
        assert!(super::is_staging_dir("/tmp/edgeup.AbCdE12345"));
        for bad in [
            "/",
            "/etc",
            "/tmp/edgeup.AbCdE1234",
            "/tmp/edgeup.AbCdE123456",
            "/tmp/edgeup.../../../e",
            "/tmp/edgeup.AbCdE 1234",
            "/tmp/edgeup.AbCdE1234/",
            "/tmp/edgeup.ÄbCdE1234",
            "/var/edgeup.AbCdE12345",
        ] {
            assert!(!super::is_staging_dir(bad), "{bad}");
        }
    }
}
