//! `edgeup detect`: what this host is, read-only.

use crate::assets::Assets;
use crate::distro;
use crate::facts::{Facts, os_release::OsRelease, probes};
use crate::host::Host;
use anyhow::Result;
use serde::Serialize;

#[derive(Serialize)]
struct Detection {
    #[serde(flatten)]
    facts: Facts,
    versions: Versions,
    /// Why no profile matched (unsupported distro).
    #[serde(skip_serializing_if = "Option::is_none")]
    unsupported: Option<String>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct Versions {
    haproxy: Option<String>,
    openssl: Option<String>,
    certbot: Option<String>,
}

pub fn run(host: &Host, assets: &Assets, json: bool) -> Result<i32> {
    let os = OsRelease::read(host.root())?;
    let profiles = distro::load_all(assets)?;
    let (profile, unsupported) = match distro::select(&profiles, &os) {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let facts = Facts::gather(host, profile.as_ref())?;
    let versions = Versions {
        haproxy: probes::tool_version(host, "haproxy", &["-v"]),
        openssl: probes::tool_version(host, "openssl", &["version"]),
        // certbot is Python: `certbot --version` costs ~250 ms; the package
        // database already knows (pip installs fall back to asking certbot).
        certbot: facts
            .packages
            .get("certbot")
            .map(|v| format!("certbot {v} (package)"))
            .or_else(|| probes::tool_version(host, "certbot", &["--version"])),
    };
    let report = Detection {
        notes: profile
            .as_ref()
            .map(|p| p.notes.clone())
            .unwrap_or_default(),
        facts,
        versions,
        unsupported,
    };
    if json {
        crate::outln!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    Ok(if report.unsupported.is_some() {
        crate::exit::HOST_UNSUITABLE
    } else {
        crate::exit::OK
    })
}

fn print_human(r: &Detection) {
    let f = &r.facts;
    let na = |v: &Option<String>| v.clone().unwrap_or_else(|| "not installed".into());
    crate::outln!(
        "distro:          {} (ID={} VERSION_ID={})",
        f.os.pretty_name_or_id(),
        f.os.id,
        f.os.version_id
    );
    match (&f.profile, &r.unsupported) {
        (Some(p), _) => crate::outln!(
            "profile:         {p} (family {}, package manager {})",
            f.family.as_deref().unwrap_or("?"),
            f.package_manager.map_or("?", |m| m.as_str())
        ),
        (None, Some(why)) => crate::outln!("profile:         none: {why}"),
        (None, None) => {}
    }
    if f.systemd.running {
        crate::outln!("systemd:         running");
    } else {
        crate::outln!(
            "systemd:         NOT running (PID 1 is '{}'): apply cannot manage services here",
            f.systemd.pid1
        );
    }
    let installed = |yes: bool| if yes { "installed" } else { "not installed" };
    crate::outln!(
        "firewall:        {} active (firewalld {}, ufw {})",
        f.firewall.active,
        installed(f.firewall.firewalld_installed),
        installed(f.firewall.ufw_installed)
    );
    crate::outln!("SELinux:         {}", f.selinux);
    crate::outln!("root:            {}", if f.is_root { "yes" } else { "no" });
    crate::outln!("haproxy:         {}", na(&r.versions.haproxy));
    crate::outln!("openssl:         {}", na(&r.versions.openssl));
    crate::outln!("certbot:         {}", na(&r.versions.certbot));
    for note in &r.notes {
        crate::outln!("note:            {note}");
    }
}
