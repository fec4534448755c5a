//! What the host already is: distribution, init system, firewall, SELinux,
//! and the versions of the tools edgeup manages. Gathering is read-only and,
//! except for tool versions (`detect` only), forks nothing on Debian hosts.

pub mod os_release;
pub mod probes;

use crate::distro::Distro;
use crate::host::Host;
use anyhow::Result;
use os_release::OsRelease;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub os: OsRelease,
    /// Profile chosen for this host (None: unsupported distro).
    pub profile: Option<String>,
    pub family: Option<String>,
    pub package_manager: Option<crate::distro::PackageManager>,
    pub systemd: Systemd,
    pub firewall: FirewallFacts,
    pub selinux: String,
    /// The host has IPv6: `:PORT` listeners are rendered dual-stack.
    pub ipv6: bool,
    pub is_root: bool,
    /// Installed package versions (haproxy, certbot, openssl...).
    pub packages: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Systemd {
    /// systemd is PID 1 and running (/run/systemd/system exists).
    pub running: bool,
    /// What PID 1 is, to explain why systemd is not running.
    pub pid1: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FirewallFacts {
    /// `firewalld`, `ufw` or `none`: the one that is active.
    pub active: String,
    pub firewalld_installed: bool,
    pub ufw_installed: bool,
}

impl Facts {
    pub fn gather(host: &Host, distro: Option<&Distro>) -> Result<Facts> {
        let os = OsRelease::read(host.root())?;
        let packages = match distro {
            Some(d) => host.installed_packages(d.package_manager, &d.packages)?,
            None => Default::default(),
        };
        Ok(Facts {
            os,
            profile: distro.map(|d| d.name.clone()),
            family: distro.map(|d| d.family.clone()),
            package_manager: distro.map(|d| d.package_manager),
            systemd: probes::systemd(host),
            firewall: probes::firewall(host)?,
            selinux: probes::selinux(host),
            ipv6: probes::ipv6(host),
            is_root: probes::is_root(),
            packages,
        })
    }

    pub fn haproxy_version(&self) -> Option<&str> {
        self.packages.get("haproxy").map(String::as_str)
    }
}
