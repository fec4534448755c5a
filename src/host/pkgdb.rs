//! Installed packages and their versions. On dpkg hosts the status database
//! is read directly (no fork: this is on every run's hot path); on rpm hosts
//! one `rpm -q` answers for all packages at once.

use super::{Cmd, Host};
use crate::distro::PackageManager;
use anyhow::Result;
use std::collections::BTreeMap;

/// package name -> installed version (absent: not installed).
pub type Installed = BTreeMap<String, String>;

impl Host {
    pub fn installed_packages(
        &self,
        manager: PackageManager,
        names: &[String],
    ) -> Result<Installed> {
        match manager {
            PackageManager::Apt => self.dpkg_installed(names),
            PackageManager::Dnf => self.rpm_installed(names),
        }
    }

    fn dpkg_installed(&self, names: &[String]) -> Result<Installed> {
        let status = self
            .read_string("/var/lib/dpkg/status")?
            .unwrap_or_default();
        Ok(parse_dpkg_status(&status, names))
    }

    fn rpm_installed(&self, names: &[String]) -> Result<Installed> {
        if names.is_empty() {
            return Ok(Installed::new());
        }
        let out = self.run(
            &Cmd::new("rpm")
                .arg("-q")
                .arg("--qf")
                .arg("%{NAME} %{VERSION}-%{RELEASE}\\n")
                .args(names.iter().cloned()),
        )?;
        // rpm exits non-zero when any package is missing; the lines still tell.
        Ok(parse_rpm_query(&out.stdout, names))
    }

    /// Every package dpkg has installed (the ledger tells what an install added).
    pub fn dpkg_all_installed(&self) -> Result<std::collections::BTreeSet<String>> {
        let status = self
            .read_string("/var/lib/dpkg/status")?
            .unwrap_or_default();
        Ok(dpkg_installed_stanzas(&status)
            .map(|(name, _)| name.to_string())
            .collect())
    }
}

/// `rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\n'` output: the packages of
/// interest that are installed (lines such as "package x is not installed"
/// have more than two words and are skipped).
pub fn parse_rpm_query(stdout: &str, wanted: &[String]) -> Installed {
    let mut found = Installed::new();
    for line in stdout.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(version), None) = (parts.next(), parts.next(), parts.next())
            && wanted.iter().any(|n| n == name)
        {
            found.insert(name.to_string(), version.to_string());
        }
    }
    found
}

/// Reads the packages of interest out of /var/lib/dpkg/status.
pub fn parse_dpkg_status(status: &str, wanted: &[String]) -> Installed {
    dpkg_installed_stanzas(status)
        .filter(|(name, _)| wanted.iter().any(|w| w == name))
        .map(|(name, version)| (name.to_string(), version.to_string()))
        .collect()
}

/// (name, version) of each installed package in a dpkg status file.
fn dpkg_installed_stanzas(status: &str) -> impl Iterator<Item = (&str, &str)> {
    status.split("\n\n").filter_map(|stanza| {
        let mut name = None;
        let mut installed = false;
        let mut version = None;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim());
            }
        }
        match (name, installed, version) {
            (Some(name), true, Some(version)) => Some((name, version)),
            _ => None,
        }
    })
}

/// Packages dpkg marks as needing a reinstall (`Status: WANT reinstreq
/// STATE`): a dpkg killed while unpacking them. `dpkg --configure -a`
/// cannot finish those.
pub fn reinstall_required(status: &str) -> Vec<String> {
    let mut found = Vec::new();
    for stanza in status.split("\n\n") {
        let mut name = None;
        let mut broken = false;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                broken = v.split_whitespace().nth(1) == Some("reinstreq");
            }
        }
        if let (Some(name), true) = (name, broken) {
            found.push(name.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_killed_mid_unpack_need_a_reinstall() {
        let status = "Package: python3-certifi\nStatus: install reinstreq half-installed\n\n\
                      Package: haproxy\nStatus: install ok unpacked\n\n\
                      Package: openssl\nStatus: install ok installed\n";
        assert_eq!(reinstall_required(status), ["python3-certifi"]);
        assert!(reinstall_required("").is_empty());
    }

    #[test]
    fn dpkg_status_distinguishes_installed_from_removed() {
        let status = "Package: haproxy\nStatus: install ok installed\nVersion: 2.6.12-1+deb12u4\n\n\
Package: certbot\nStatus: deinstall ok config-files\nVersion: 2.1.0-4\n\n\
Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.17-1~deb12u3\n";
        let wanted: Vec<String> = ["haproxy", "certbot", "openssl"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = parse_dpkg_status(status, &wanted);
        assert_eq!(
            found.get("haproxy").map(String::as_str),
            Some("2.6.12-1+deb12u4")
        );
        assert_eq!(
            found.get("openssl").map(String::as_str),
            Some("3.0.17-1~deb12u3")
        );
        assert!(
            !found.contains_key("certbot"),
            "config-files only is not installed"
        );
    }
}
