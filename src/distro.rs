//! Distro profiles (`distros/*.yaml`): everything that differs between
//! families is data, so supporting another derivative is a YAML change.

use crate::assets::Assets;
use crate::facts::os_release::OsRelease;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Distro {
    /// Profile name, e.g. `debian`, `rhel`.
    pub name: String,
    /// `debian` or `rhel`: the family, as `detect` reports it.
    pub family: String,
    /// os-release IDs this profile serves directly.
    pub ids: Vec<String>,
    /// os-release ID_LIKE entries this profile serves for unknown derivatives.
    #[serde(default)]
    pub like: Vec<String>,
    pub package_manager: PackageManager,
    /// Packages installed by the packages step.
    pub packages: Vec<String>,
    /// Repository packages installed first (EPEL on RHEL-likes).
    #[serde(default)]
    pub repo_packages: Vec<String>,
    /// Per os-release ID replacements of `repo_packages` (RHEL and Oracle
    /// Linux get EPEL differently); `{major}` is the VERSION_ID's major number.
    #[serde(default)]
    pub repo_packages_by_id: std::collections::BTreeMap<String, Vec<String>>,
    /// Whether the distro's repositories (plus `repo_packages`) carry certbot.
    #[serde(default = "yes")]
    pub certbot_available: bool,
    pub haproxy_user: String,
    pub haproxy_group: String,
    pub paths: Paths,
    pub units: Units,
    /// Shown by `detect` and `plan`: things a user of this distro should know.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub haproxy_config: String,
    pub certs_dir: String,
    pub admin_socket: String,
    pub chroot: String,
    pub certbot_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Units {
    pub haproxy: String,
    pub certbot_timer: String,
}

/// What a profile's packages are installed with (`apt` or `dnf` in the
/// profile; any other word is refused when the profile is loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Apt,
    Dnf,
}

impl PackageManager {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Apt => "apt",
            PackageManager::Dnf => "dnf",
        }
    }
}

impl std::fmt::Display for PackageManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn yes() -> bool {
    true
}

impl Distro {
    /// The profile as it applies to this host: ID-specific repository packages.
    fn for_host(&self, os: &OsRelease) -> Distro {
        let mut distro = self.clone();
        if let Some(packages) = self.repo_packages_by_id.get(&os.id) {
            let major = os.version_id.split('.').next().unwrap_or("");
            distro.repo_packages = packages
                .iter()
                .map(|p| p.replace("{major}", major))
                .collect();
        }
        distro
    }
}

/// All profiles, in file-name order.
pub fn load_all(assets: &Assets) -> Result<Vec<Distro>> {
    assets
        .list("distros")?
        .into_iter()
        .map(|(name, text)| {
            serde_saphyr::from_str::<Distro>(&text)
                .with_context(|| format!("distro profile {name} is not valid"))
        })
        .collect()
}

/// The profile for this os-release: first the profile listing its ID, then, for
/// each ID_LIKE entry in order (closest relative first), a profile listing that
/// entry in `ids`, else one listing it in `like`. Preferring `ids` per entry keeps
/// the choice independent of file-name order: an ID_LIKE=fedora derivative gets
/// the fedora profile even if another profile (amzn) also lists fedora in `like`.
pub fn select(profiles: &[Distro], os: &OsRelease) -> Result<Distro> {
    if let Some(p) = profiles.iter().find(|p| p.ids.contains(&os.id)) {
        return Ok(p.for_host(os));
    }
    for like in &os.id_like {
        let by_id = profiles.iter().find(|p| p.ids.contains(like));
        if let Some(p) = by_id.or_else(|| profiles.iter().find(|p| p.like.contains(like))) {
            return Ok(p.for_host(os));
        }
    }
    bail!(
        "unsupported distribution '{}' (ID={}{}): edgeup supports {}",
        os.pretty_name_or_id(),
        os.id,
        if os.id_like.is_empty() {
            String::new()
        } else {
            format!(", ID_LIKE={}", os.id_like.join(" "))
        },
        supported(profiles)
    )
}

/// "the debian family (debian, ubuntu, ... and derivatives whose ID_LIKE names
/// debian or ubuntu) and the rhel family (...)", families in name order.
fn supported(profiles: &[Distro]) -> String {
    let mut families: Vec<&str> = profiles.iter().map(|p| p.family.as_str()).collect();
    families.sort();
    families.dedup();
    if families.is_empty() {
        return "no distribution: no distro profile is loaded".to_string();
    }
    let described: Vec<String> = families
        .iter()
        .map(|family| {
            let mut ids: Vec<&str> = Vec::new();
            let mut likes: Vec<&str> = Vec::new();
            for p in profiles.iter().filter(|p| p.family == *family) {
                ids.extend(p.ids.iter().map(String::as_str));
                likes.extend(p.like.iter().map(String::as_str));
            }
            dedup_in_order(&mut ids);
            dedup_in_order(&mut likes);
            let mut text = format!("the {family} family ({}", ids.join(", "));
            if !likes.is_empty() {
                text.push_str(&format!(
                    " and derivatives whose ID_LIKE names {}",
                    or_list(&likes)
                ));
            }
            text.push(')');
            text
        })
        .collect();
    described.join(" and ")
}

/// "a", "a or b", "a, b or c".
fn or_list(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => items.join(""),
    }
}

fn dedup_in_order(items: &mut Vec<&str>) {
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(*item));
}
