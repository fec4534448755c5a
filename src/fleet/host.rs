//! One host of a fleet run: probe, copy what changed (by checksum), run
//! `edgeup --json apply|plan` remotely, and stream its events.

use super::inventory::Target;
use super::ssh::Ssh;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;

/// Where the binary and the site live on every host.
pub const REMOTE_BINARY: &str = "/usr/local/bin/edgeup";
pub const REMOTE_SITE: &str = "/etc/edgeup/site.yaml";

/// How one host ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub result: Result<Finished, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Finished {
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

fn sudo(target: &Target) -> &'static str {
    if target.sudo { "sudo -n " } else { "" }
}

impl Job<'_> {
    pub fn run(&self, on_event: &mut dyn FnMut(&Value)) -> Result<Finished> {
        let target = self.ssh.target;
        self.ssh.connect()?;
        let probe = self.ssh.run(&format!(
            "uname -m; {sudo}sh -c 'sha256sum {REMOTE_BINARY} {REMOTE_SITE} 2>/dev/null; true'",
            sudo = sudo(target)
        ))?;
        if probe.status != 0 {
            bail!("{}", explain_sudo(&probe.stderr, target));
        }
        let mut lines = probe.stdout.lines();
        let arch = lines.next().unwrap_or("").trim().to_string();
        let remote_sums: Vec<(String, String)> = lines
            .filter_map(|l| {
                let (sum, path) = l.split_once(char::is_whitespace)?;
                Some((path.trim().to_string(), sum.to_string()))
            })
            .collect();
        let remote_sum = |path: &str| {
            remote_sums
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, s)| s.clone())
        };
        let mut copied = Vec::new();
        let binary = self.binaries.for_arch(&arch)?;
        if remote_sum(REMOTE_BINARY).as_deref() != Some(binary.sha256.as_str()) {
            self.install(&binary.path, REMOTE_BINARY, "0755")?;
            copied.push(format!("edgeup ({arch})"));
        }
        let site_yaml = site_file_text(&target.site)?;
        if remote_sum(REMOTE_SITE).as_deref()
            != Some(super::sha256_hex(site_yaml.as_bytes()).as_str())
        {
            let local = self.work_dir.join(format!("site-{}.yaml", target.name));
            write_private(&local, site_yaml.as_bytes())?;
            self.install(&local, REMOTE_SITE, "0600")?;
            copied.push("site.yaml".into());
        }
        let mut recap = Value::Null;
        let output = self.ssh.stream(
            &format!(
                "{sudo}{REMOTE_BINARY} --json {cmd} {yes}-f {REMOTE_SITE}",
                sudo = sudo(target),
                cmd = self.command,
                yes = if self.command == "apply" {
                    "--yes "
                } else {
                    ""
                }
            ),
            |line| match serde_json::from_str::<Value>(line) {
                Ok(event) => {
                    if event["event"] == "recap" {
                        recap = event.clone();
                    }
                    on_event(&event);
                }
                Err(_) => on_event(&serde_json::json!({"event": "output", "line": line})),
            },
        )?;
        if recap.is_null() {
            bail!(
                "edgeup on {} ended without a recap (exit {}): {}",
                target.name,
                output.status,
                explain_sudo(&output.stderr, target)
            );
        }
        Ok(Finished {
            recap,
            exit: output.status,
            copied,
        })
    }

    /// Uploads to a temp path, then installs with the wanted mode as root.
    fn install(&self, local: &Path, remote: &str, mode: &str) -> Result<()> {
        let target = self.ssh.target;
        let temp = format!("/tmp/.edgeup-upload-{}-{}", target.name, std::process::id());
        self.ssh.upload(local, &temp)?;
        let out = self.ssh.run(&format!(
            "{sudo}install -D -m {mode} -o root -g root {temp} {remote}; status=$?; rm -f {temp}; exit $status",
            sudo = sudo(target)
        ))?;
        if out.status != 0 {
            bail!("installing {remote}: {}", explain_sudo(&out.stderr, target));
        }
        Ok(())
    }
}

/// The site as edgeup writes it on the host (the same text every run, so its
/// checksum tells whether it changed).
pub fn site_file_text(site: &crate::site::Site) -> Result<String> {
    let yaml = serde_saphyr::to_string(site).context("encoding the site as YAML")?;
    Ok(format!(
        "# Written by `edgeup fleet`; edit the inventory instead.\n{yaml}"
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
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
