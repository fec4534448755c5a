//! The certbot client: what the tutorial does, done right (correct
//! `--http-01-port PORT`, loopback-only standalone server, a fixed
//! `--cert-name` so no `-0001` lineages, a deploy hook that has edgeup
//! install the renewed certificate).

use super::CaSettings;
use crate::host::{Cmd, Host};
use crate::site::KeyType;
use anyhow::{Result, bail};

/// certbot's account directory for a server URL:
/// `<config>/accounts/<host[:port]>/<path>`.
pub fn account_dir(certbot_dir: &str, directory: &str) -> String {
    let rest = directory
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    format!("{certbot_dir}/accounts/{}", rest.trim_end_matches('/'))
}

/// Whether certbot has an account for this server (any id under its dir).
pub fn has_account(host: &Host, certbot_dir: &str, directory: &str) -> bool {
    let dir = host.path(&account_dir(certbot_dir, directory));
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.path().join("regr.json").is_file())
        })
        .unwrap_or(false)
}

fn base(ca: &CaSettings, certbot_dir: &str, verb: &str) -> Cmd {
    let mut cmd = Cmd::new("certbot").arg(verb).args([
        "--non-interactive",
        "--agree-tos",
        "--config-dir",
        certbot_dir,
        "--server",
        &ca.directory,
    ]);
    cmd = match &ca.email {
        Some(email) => cmd.arg("--email").arg(email),
        None => cmd.arg("--register-unsafely-without-email"),
    };
    if let Some(bundle) = &ca.ca_bundle {
        cmd = cmd.env("REQUESTS_CA_BUNDLE", &bundle.to_string_lossy());
    }
    cmd
}

/// Runs `cmd`, handing certbot the EAB credentials in a 0600 config file
/// (`-c`) instead of on the command line, which every local user can read in
/// /proc/PID/cmdline; the file is removed afterwards, and the key is masked
/// in everything the command's messages show.
fn run_with_eab(
    host: &Host,
    ca: &CaSettings,
    certbot_dir: &str,
    cmd: Cmd,
) -> Result<(Cmd, crate::host::CmdOutput)> {
    let (Some(kid), Some(key)) = (&ca.eab_kid, &ca.eab_hmac_key) else {
        let out = host.run(&cmd)?;
        return Ok((cmd, out));
    };
    let file = format!("{certbot_dir}/.edgeup-eab.ini");
    let root_only = crate::host::FileAttrs {
        mode: 0o600,
        uid: 0,
        gid: 0,
    };
    host.ensure_dir(
        certbot_dir,
        &crate::host::FileAttrs {
            mode: 0o755,
            ..root_only
        },
    )?;
    host.write_atomic(
        &file,
        format!("eab-kid = {kid}\neab-hmac-key = {key}\n").as_bytes(),
        &root_only,
        None,
    )?;
    let cmd = cmd.arg("-c").arg(&file).secret(key);
    let out = host.run(&cmd);
    host.remove_file(&file)?;
    Ok((cmd, out?))
}

pub fn register(host: &Host, ca: &CaSettings, certbot_dir: &str) -> Result<()> {
    let (cmd, out) = run_with_eab(host, ca, certbot_dir, base(ca, certbot_dir, "register"))?;
    out.success_of(&cmd)?;
    Ok(())
}

/// `certbot certonly --standalone` on the loopback responder address.
pub fn certonly(
    host: &Host,
    ca: &CaSettings,
    certbot_dir: &str,
    domains: &[String],
    key_type: KeyType,
    responder: std::net::SocketAddr,
    force: bool,
) -> Result<()> {
    let (address, port) = (responder.ip().to_string(), responder.port().to_string());
    let Some(name) = domains.first() else {
        bail!("no domain to certify");
    };
    if host
        .stat(&format!("{certbot_dir}/renewal/{name}.conf"))?
        .is_none()
    {
        host.note(crate::ledger::Entry::CertbotLineage {
            name: name.clone(),
            certbot_dir: certbot_dir.to_string(),
        })?;
    }
    let mut cmd = base(ca, certbot_dir, "certonly").args([
        "--standalone",
        "--preferred-challenges",
        "http",
        "--http-01-address",
        &address,
        "--http-01-port",
        &port,
        "--cert-name",
        name,
    ]);
    for domain in domains {
        cmd = cmd.arg("-d").arg(domain);
    }
    cmd = match key_type {
        KeyType::Rsa2048 => cmd.args(["--key-type", "rsa", "--rsa-key-size", "2048"]),
        KeyType::EcdsaP256 => cmd.args(["--key-type", "ecdsa", "--elliptic-curve", "secp256r1"]),
    };
    if force {
        cmd = cmd.arg("--force-renewal");
    }
    let (cmd, out) = run_with_eab(host, ca, certbot_dir, cmd)?;
    if out.status != 0 {
        let tail = cmd.redact(&out.stderr_tail());
        if tail.contains("rateLimited") || tail.to_lowercase().contains("too many") {
            bail!("rate limited by the CA (certbot): {tail}");
        }
        bail!(
            "certbot could not get a certificate for {}: {tail}",
            domains.join(", ")
        );
    }
    Ok(())
}

pub fn live_dir(certbot_dir: &str, name: &str) -> String {
    format!("{certbot_dir}/live/{name}")
}

pub fn hook_path(certbot_dir: &str, name: &str) -> String {
    format!("{certbot_dir}/renewal-hooks/deploy/edgeup-{name}")
}

/// The CA a lineage renews from: `server = URL` in certbot's renewal
/// configuration (`renewal/NAME.conf`); None when there is none.
pub fn lineage_server(host: &Host, certbot_dir: &str, name: &str) -> Result<Option<String>> {
    let conf = host.read_string(&format!("{certbot_dir}/renewal/{name}.conf"))?;
    Ok(conf.as_deref().and_then(|text| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "server").then(|| value.trim().to_string())
        })
    }))
}

/// The deploy hook certbot runs after it renewed a lineage (its timer's
/// `certbot renew`): for this site's lineage, edgeup itself installs the
/// new certificate, as any run does (checked, swapped in atomically,
/// HAProxy's configuration validated, reloaded, the previous PEM restored
/// if that fails). `edgeup_binary` is the fixed root-owned edgeup
/// (`renewal_binary`).
pub fn deploy_hook(certbot_dir: &str, domain: &str, edgeup_binary: &str) -> String {
    let live = live_dir(certbot_dir, domain);
    format!(
        r#"#!/bin/sh
# Managed by edgeup: after certbot renews {domain}, edgeup installs the new
# certificate into HAProxy's PEM and reloads HAProxy (checked, atomic, rolled
# back if HAProxy rejects it). Edits are overwritten.
[ "${{RENEWED_LINEAGE:-}}" = "{live}" ] || exit 0
exec {edgeup_binary} renew {domain} --from-certbot
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn account_dir_follows_certbot_layout() {
        assert_eq!(
            super::account_dir(
                "/etc/letsencrypt",
                "https://acme-v02.api.letsencrypt.org/directory"
            ),
            "/etc/letsencrypt/accounts/acme-v02.api.letsencrypt.org/directory"
        );
        assert_eq!(
            super::account_dir("/etc/letsencrypt", "https://127.0.0.1:14000/dir"),
            "/etc/letsencrypt/accounts/127.0.0.1:14000/dir"
        );
    }
}

#[cfg(test)]
mod eab_tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Mutex};

    const KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

    #[test]
    fn the_eab_key_reaches_certbot_in_a_private_file_and_no_message_shows_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        // certbot fails and echoes what it read, as tools do.
        let seen: Arc<Mutex<Option<(u32, String)>>> = Arc::default();
        let seen_in = Arc::clone(&seen);
        let runner =
            ScriptedRunner::new(root.clone()).dynamic("certbot register", move |root, cmd| {
                let file = cmd
                    .args
                    .iter()
                    .skip_while(|a| *a != "-c")
                    .nth(1)
                    .cloned()
                    .unwrap_or_default();
                let path = root.join(file.trim_start_matches('/'));
                let mode = std::fs::metadata(&path)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if let Ok(mut s) = seen_in.lock() {
                    *s = Some((mode, text.clone()));
                }
                Ok(crate::host::CmdOutput::failed(
                    1,
                    &format!("bad EAB credentials: {text}"),
                ))
            });
        let log = runner.transcript();
        let host = Host::new(root.clone(), Box::new(runner));
        let ca = CaSettings {
            client: crate::site::AcmeClient::Certbot,
            directory: "https://ca.example.org/dir".into(),
            ca_bundle: None,
            email: Some("ops@example.org".into()),
            eab_kid: Some("kid-1".into()),
            eab_hmac_key: Some(KEY.into()),
        };
        let err = format!(
            "{:#}",
            register(&host, &ca, "/etc/letsencrypt").expect_err("fails")
        );
        assert!(!err.contains(KEY) && err.contains("<secret>"), "{err}");
        let commands = log.lock().map(|l| l.join("\n")).unwrap_or_default();
        assert!(!commands.contains(KEY), "{commands}");
        assert!(
            commands.contains(" -c /etc/letsencrypt/.edgeup-eab.ini"),
            "{commands}"
        );
        let (mode, text) = seen
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .expect("certbot ran");
        assert_eq!(mode, 0o600);
        assert!(
            text.contains(&format!("eab-hmac-key = {KEY}")) && text.contains("eab-kid = kid-1")
        );
        assert!(
            !root.join("etc/letsencrypt/.edgeup-eab.ini").exists(),
            "the file is removed"
        );
    }
}
