//! Checks of the sites that only the host can answer: the files they name
//! (CA bundle, TSIG key, hook and alert programs) and what the distro offers.

use crate::distro::Distro;
use crate::exit;
use crate::host::Host;
use crate::site::{AcmeClient, Config};
use anyhow::Result;

/// Checks of the sites that need the host: files they name, what the distro offers.
pub(super) fn validate_against_host(host: &Host, config: &Config, distro: &Distro) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    for site in &config.sites {
        let mut add = |p: String| {
            if !problems.contains(&p) {
                problems.push(p);
            }
        };
        if let Some(bundle) = &site.acme.ca_bundle {
            match std::fs::read(bundle) {
                Ok(bytes) if crate::pki::parse_bundle(&bytes).is_ok() => {}
                Ok(_) => add(format!(
                    "acme.ca_bundle: \"{}\" holds no PEM certificate; point it at the CA's certificate file",
                    bundle.display()
                )),
                Err(e) => add(format!(
                    "acme.ca_bundle: \"{}\" cannot be read ({e}); give the path of the CA's PEM file",
                    bundle.display()
                )),
            }
        }
        if let Some(dns) = site.acme.dns().filter(|_| site.acme.enabled()) {
            match &dns.provider {
                crate::dns::Provider::Rfc2136 { tsig_key_file, .. } => {
                    secret_file(host, "acme.dns.tsig_key_file", tsig_key_file, &mut add)
                }
                crate::dns::Provider::Exec { command, env_file } => {
                    program("acme.dns.command", command, &mut add);
                    if let Some(env) = env_file {
                        secret_file(host, "acme.dns.env_file", env, &mut add);
                    }
                }
            }
        }
        for target in site.notify.iter().flat_map(|n| &n.targets) {
            if let crate::notify::Target::Command(path) = target {
                program("notify.targets command", path, &mut add);
            }
        }
        if site.acme.enabled()
            && site.acme.client == AcmeClient::Certbot
            && !distro.certbot_available
        {
            add(format!(
                "acme.client: \"certbot\" is not packaged for {}; use acme.client: builtin",
                distro.name
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(exit::invalid(format!(
        "the site does not fit this host (nothing was changed):\n  - {}",
        problems.join("\n  - ")
    )))
}

/// A file holding a secret, judged as the certificate step will judge it
/// (`dns::check_secret_file`); not judged when this user may not look at it
/// (`plan` without root).
fn secret_file(host: &Host, field: &str, path: &std::path::Path, add: &mut impl FnMut(String)) {
    let Err(e) = crate::dns::check_secret_file(host, &path.to_string_lossy(), field) else {
        return;
    };
    let denied = e
        .root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
    if !denied {
        add(format!("{e:#}"));
    }
}

/// A program edgeup runs (a DNS hook, an alert command): an executable file.
fn program(field: &str, path: &std::path::Path, add: &mut impl FnMut(String)) {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 => add(format!(
            "{field}: \"{shown}\" is not an executable file; chmod +x it or give another path"
        )),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
        Err(e) => add(format!(
            "{field}: \"{shown}\" cannot be run ({e}); install it first"
        )),
    }
}
