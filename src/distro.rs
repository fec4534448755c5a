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
    /// `apt` or `dnf`.
    pub package_manager: String,
    /// Packages installed by the packages step.
    pub packages: Vec<String>,
    /// Repository packages installed first (EPEL on RHEL-likes).
    #[serde(default)]
    pub repo_packages: Vec<String>,
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
    pub letsencrypt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Units {
    pub haproxy: String,
    pub certbot_timer: String,
}

fn yes() -> bool {
    true
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

/// The profile for this os-release: first by ID, then by each ID_LIKE entry in order.
pub fn select(profiles: &[Distro], os: &OsRelease) -> Result<Distro> {
    if let Some(p) = profiles.iter().find(|p| p.ids.contains(&os.id)) {
        return Ok(p.clone());
    }
    for like in &os.id_like {
        if let Some(p) = profiles
            .iter()
            .find(|p| p.ids.contains(like) || p.like.contains(like))
        {
            return Ok(p.clone());
        }
    }
    let mut families: Vec<String> = profiles
        .iter()
        .map(|p| format!("{} ({})", p.name, p.ids.join(", ")))
        .collect();
    families.dedup();
    bail!(
        "unsupported distribution '{}'{}: edgeup supports {}",
        os.pretty_name_or_id(),
        if os.id_like.is_empty() {
            String::new()
        } else {
            format!(" (like {})", os.id_like.join(" "))
        },
        families.join("; ")
    )
}
