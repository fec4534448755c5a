//! The site file `init` reads (previous answers, or the sites to add to,
//! edit or remove from) and writes, mode 0600 (it may hold an EAB key),
//! atomically. A one-site file is rendered as YAML with a comment on every
//! key, checked to load back as exactly the same site before it is written.

use crate::app::site_edit::Record;
use crate::exit;
use crate::host::{FileAttrs, Host};
use crate::site::config::from_secret_yaml;
use crate::site::{RawSite, SiteFile};
use anyhow::{Context, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The site file's mode: only its owner reads it (EAB secrets).
pub const MODE: u32 = 0o600;

/// `path` made absolute against the working directory (the Host resolves
/// absolute paths only).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().context("reading the working directory")?;
    Ok(cwd.join(path))
}

/// The file as it is (its sites, either form): None when it does not exist yet.
pub fn load(path: &Path) -> Result<Option<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(exit::unsuitable(format!(
                "cannot read {} ({e}): run as root (sudo edgeup init), or use -f FILE for a file you own",
                path.display()
            )));
        }
        Err(e) => {
            return Err(exit::invalid(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let invalid = |why: String| {
        exit::invalid(format!(
            "{} is not a valid site file: {why}\nFix it (README: \"Site file\"), move it away to \
             start over, or use -f FILE to write another one. Nothing was asked or written.",
            path.display()
        ))
    };
    let file = from_secret_yaml::<SiteFile>(&text).map_err(|e| invalid(e.to_string()))?;
    let sites = file.resolve().map_err(|problems| {
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        invalid(problems.join("; "))
    })?;
    Ok(Some(Record { text, file, sites }))
}

/// Fails early (before any question) when the file could not be written:
/// its directory, or the nearest existing parent, is not writable.
pub fn check_writable(path: &Path) -> Result<()> {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.exists() {
            break;
        }
        dir = d.parent();
    }
    let dir = dir.unwrap_or(Path::new("/"));
    let c_dir = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| exit::invalid(format!("{} is not a usable path", path.display())))?;
    // SAFETY: access(2) reads a NUL-terminated path and has no other preconditions.
    let writable = unsafe { libc::access(c_dir.as_ptr(), libc::W_OK) } == 0;
    if writable {
        return Ok(());
    }
    Err(exit::unsuitable(format!(
        "cannot write {} ({} is not writable for this user): run as root (sudo edgeup init), \
         or choose another file with -f ./site.yaml. Nothing was asked or written.",
        path.display(),
        dir.display()
    )))
}

/// The one-site file for `site` (`render`), checked to load back as it.
pub fn rendered(site: &RawSite) -> Result<String> {
    let text = render(site);
    let back: RawSite = serde_saphyr::from_str(&text)
        .context("the site file edgeup rendered does not load back (a bug in edgeup)")?;
    if back != *site {
        anyhow::bail!(
            "the site file edgeup rendered loads back as another site (a bug in edgeup); nothing was written"
        );
    }
    Ok(text)
}

/// Writes `text` to `path` (absolute), 0600, owned by the current user.
pub fn write(host: &Host, path: &Path, text: &str) -> Result<()> {
    // SAFETY: geteuid/getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let attrs = FileAttrs {
        mode: MODE,
        uid,
        gid,
    };
    host.write_atomic(&path.to_string_lossy(), text.as_bytes(), &attrs, None)
        .with_context(|| format!("writing {}", path.display()))
}

/// Makes an existing site file 0600 (a hand-made one may be readable by all).
pub fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading the mode of {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o777 == MODE {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE))
        .with_context(|| format!("making {} mode 0600", path.display()))
}

/// A YAML string: JSON's quoting is valid YAML double-quoted scalar syntax.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

fn list(items: &[String], indent: &str) -> String {
    if items.is_empty() {
        return " []".to_string();
    }
    items
        .iter()
        .map(|i| format!("\n{indent}  - {}", q(i)))
        .collect()
}

fn opt(value: Option<String>) -> String {
    value.map_or_else(|| "null".to_string(), |v| q(&v))
}

/// The site as YAML with a comment per key.
pub fn render(site: &RawSite) -> String {
    let acme = &site.acme;
    let eab = match &acme.eab {
        None => " null".to_string(),
        Some(eab) => format!(
            "\n    kid: {}\n    hmac_key: {}",
            q(&eab.kid),
            q(&eab.hmac_key)
        ),
    };
    let hsts = match site.hsts {
        None => "null",
        Some(true) => "true",
        Some(false) => "false",
    };
    let listen = &site.listen;
    let aliases = if site.aliases.is_empty() {
        String::new()
    } else {
        format!(
            "# More names on the same certificate, routed to the same app (a wildcard\n\
             # *.NAME needs acme.challenge: dns-01).\naliases:{}\n",
            list(&site.aliases, "")
        )
    };
    let health = site.health.as_ref().map_or_else(String::new, |h| {
        format!(
            "# HAProxy checks every backend with this HTTP path.\nhealth: {}\n",
            q(h)
        )
    });
    let dns = match &acme.dns {
        None => " null".to_string(),
        Some(d) => {
            let mut out = format!("\n    provider: {}", q(&d.provider));
            let path = |p: &Option<PathBuf>| p.as_ref().map(|p| q(&p.to_string_lossy()));
            for (key, value) in [
                ("server", d.server.as_deref().map(q)),
                ("tsig_key_file", path(&d.tsig_key_file)),
                ("command", path(&d.command)),
                ("env_file", path(&d.env_file)),
                ("resolver", d.resolver.as_deref().map(q)),
            ] {
                if let Some(value) = value {
                    out.push_str(&format!("\n    {key}: {value}"));
                }
            }
            out.push_str(&format!(
                "\n    propagation_timeout: {}",
                q(&d.propagation_timeout)
            ));
            out
        }
    };
    let notify = match &site.notify {
        None => String::new(),
        Some(n) => {
            let targets: String = n
                .targets
                .iter()
                .map(|t| match (&t.command, &t.webhook) {
                    (Some(c), _) => format!("\n    - command: {}", q(&c.to_string_lossy())),
                    (None, Some(w)) => format!("\n    - webhook: {}", q(w)),
                    (None, None) => "\n    - {}".to_string(),
                })
                .collect();
            format!(
                "# Alerts about certificates (renewal_failed, expiry_near, renewed), as JSON.\n\
                 notify:\n\
                 \x20 # {{command: /PATH}} gets the event on stdin; {{webhook: URL}} gets a POST.\n\
                 \x20 targets:{targets}\n\
                 \x20 # expiry_near: once a day while a certificate has fewer days left.\n\
                 \x20 days_before_expiry: {}\n",
                n.days_before_expiry
            )
        }
    };
    format!(
        r#"# edgeup site file, written by `edgeup init`. Run `edgeup init` again to change
# the answers, or edit this file and run `edgeup apply`. Mode 0600: it may hold
# an ACME EAB key. Every key is described in the README, section "Site file".

# Public DNS name of the site; its A/AAAA record points to this host.
domain: {domain}
{aliases}# ACME account contact: the CA's notices about the account (Let's Encrypt no
# longer e-mails expiry warnings: `notify:` below tells you when renewal fails).
email: {email}
# The app (Open WebUI) as HOST:PORT. Several = replicas (least connections,
# sticky sessions, health checks).
backends:{backends}
# subdomain: the app at https://DOMAIN/ (recommended). path:/PREFIX/ serves it
# under a prefix, which Open WebUI does not support.
routing: {routing}
{health}# Where to open ports 80 and 443: auto (whichever of firewalld/ufw is active),
# firewalld, ufw, or none (leave the firewall alone).
firewall: {firewall}
# Strict-Transport-Security. null: on with a CA-issued certificate, off with
# the self-signed placeholder. Browsers remember it for two years.
hsts: {hsts}
# The certificate: from a CA over ACME (HTTP-01 through HAProxy, or dns-01
# through your DNS), or none.
acme:
  # letsencrypt | letsencrypt-staging | https://.../directory (another CA) |
  # off (keep the self-signed placeholder, or your own certificate).
  directory: {directory}
  # PEM file of the CA serving a custom directory; null: the system's trust store.
  ca_bundle: {ca_bundle}
  # builtin (edgeup renews with edgeup-renew.timer) | certbot (certbot.timer).
  client: {client}
  # Certificate key: ecdsa-p256 | rsa-2048.
  key_type: {key_type}
  # External account binding {{kid, hmac_key}} for CAs that require it. Secret.
  eab:{eab}
  # Prove DNS -> port 80 -> HAProxy works before asking the CA; turn off only
  # for split-horizon DNS.
  preflight: {preflight}
  # Port the CA connects to for HTTP-01 (80 for every public CA).
  validation_port: {validation_port}
  # http-01 (the CA connects to port 80) | dns-01 (a TXT record in your zone:
  # no inbound port, wildcards allowed; needs dns below).
  challenge: {challenge}
  # dns-01: provider rfc2136 (server, tsig_key_file: a 0600 BIND key file) or
  # exec (command, called as COMMAND present|cleanup FQDN VALUE; env_file).
  dns:{dns}
{notify}# Advanced: where HAProxy and the ACME responder listen.
listen:
  # Plain HTTP: redirects to HTTPS, except the ACME challenge path.
  http:{http}
  # HTTPS.
  https:{https}
  # The ACME HTTP-01 responder HAProxy forwards challenges to (loopback only).
  acme_responder: {responder}
"#,
        domain = q(&site.domain),
        email = opt(site.email.clone()),
        backends = list(&site.backends, ""),
        routing = q(&site.routing),
        firewall = q(&site.firewall),
        directory = q(&acme.directory),
        ca_bundle = opt(acme
            .ca_bundle
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())),
        client = q(&acme.client),
        key_type = q(&acme.key_type),
        preflight = acme.preflight,
        validation_port = acme.validation_port,
        challenge = q(&acme.challenge),
        http = list(&listen.http, "  "),
        https = list(&listen.https, "  "),
        responder = q(&listen.acme_responder),
    )
}
