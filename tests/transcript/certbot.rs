//! certbot as far as edgeup uses it, for the transcript tests: `register`
//! creates the account where certbot keeps it, `certonly` writes a lineage
//! (`live/NAME/`) holding a certificate for every `-d` name, signed by a
//! throwaway CA (so it is CA-issued, not edgeup's placeholder), and its
//! `renewal/NAME.conf` naming the server. A command
//! missing what edgeup must pass (config dir, server, the standalone
//! responder, `--cert-name`) fails the way certbot would.

use anyhow::{Context, Result};
use edgeup::acme::certbot::{account_dir, live_dir};
use edgeup::host::{Cmd, CmdOutput};
use std::path::Path;

pub fn certbot(root: &Path, cmd: &Cmd) -> Result<CmdOutput> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .and_then(|i| args.get(i + 1))
            .copied()
    };
    let (Some(config), Some(server)) = (value("--config-dir"), value("--server")) else {
        return Ok(CmdOutput::failed(
            2,
            "certbot: --config-dir and --server expected",
        ));
    };
    let file = |host_path: String| root.join(host_path.trim_start_matches('/'));
    let account = file(format!("{}/fixture/regr.json", account_dir(config, server)));
    match args.first() {
        Some(&"register") => {
            write(&account, "{}")?;
            Ok(CmdOutput::ok("Account registered.\n"))
        }
        Some(&"certonly") => {
            if !account.exists() {
                return Ok(CmdOutput::failed(1, "certbot: no account for this server"));
            }
            let standalone = args.contains(&"--standalone")
                && value("--http-01-address") == Some("127.0.0.1")
                && value("--http-01-port").is_some();
            let Some(name) = value("--cert-name").filter(|_| standalone) else {
                return Ok(CmdOutput::failed(
                    2,
                    "certbot: --standalone on 127.0.0.1 with --cert-name expected",
                ));
            };
            let domains: Vec<String> = args
                .windows(2)
                .filter(|w| w[0] == "-d")
                .map(|w| w[1].to_string())
                .collect();
            let (chain, key) = issue(&domains)?;
            let live = live_dir(config, name);
            write(&file(format!("{live}/fullchain.pem")), &chain)?;
            write(&file(format!("{live}/privkey.pem")), &key)?;
            // As certbot does: the lineage's renewal settings name its CA.
            write(
                &file(format!("{config}/renewal/{name}.conf")),
                &format!("[renewalparams]\nserver = {server}\n"),
            )?;
            Ok(CmdOutput::ok(&format!(
                "Successfully received certificate.\nCertificate is saved at: {live}/fullchain.pem\n"
            )))
        }
        _ => Ok(CmdOutput::failed(2, "certbot: unexpected verb")),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `(leaf + CA chain PEM, leaf key PEM)` for `names`, valid 90 days.
fn issue(names: &[String]) -> Result<(String, String)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let validity = |p: &mut CertificateParams| {
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::days(90);
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "transcript test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.is_ca = IsCa::ExplicitNoCa;
    validity(&mut leaf);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((
        format!("{}{}", cert.pem(), ca_cert.pem()),
        key.serialize_pem(),
    ))
}
