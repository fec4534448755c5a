//! The user's site: what to serve, where, and how to get its certificate.
//! Loaded from YAML and/or command-line flags, then validated as a whole
//! (see `site/validate.rs`) before anything touches the host.

pub mod config;
pub mod edit;
mod validate;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use config::{Config, SiteFile};
pub use validate::{Problem, config_warnings, name_collisions, validate, validate_config};

/// Where the HTTP-01 responder (builtin client or certbot standalone) listens
/// by default: a loopback port below 1024, which only root can bind, so no
/// local user can answer (or block) the CA's challenges for the sites.
pub const DEFAULT_ACME_RESPONDER: &str = "127.0.0.1:888";

/// The default of earlier releases, which wrote it into every site record:
/// read as the current default (an unprivileged port any local user could
/// bind; see `Listen::migrate`).
pub const LEGACY_ACME_RESPONDER: &str = "127.0.0.1:8688";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The public name, e.g. chat.example.com.
    #[serde(default)]
    pub domain: String,
    /// More names on the same certificate (SANs), routed to the same app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Contact address for the ACME account (required unless ACME is off).
    #[serde(default)]
    pub email: Option<String>,
    /// One or more `HOST:PORT` of the app (several = replicas, load-balanced with sticky sessions).
    #[serde(default)]
    pub backends: Vec<String>,
    /// `subdomain` (host header) or `path:/PREFIX/`.
    #[serde(default = "default_routing")]
    pub routing: String,
    /// HTTP health-check path (e.g. `/health`): HAProxy checks every backend with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// `auto`, `firewalld`, `ufw` or `none`.
    #[serde(default = "default_firewall")]
    pub firewall: String,
    /// Strict-Transport-Security; defaults to on only with a CA-issued certificate
    /// (HSTS on a self-signed placeholder would lock browsers out).
    #[serde(default)]
    pub hsts: Option<bool>,
    #[serde(default)]
    pub acme: Acme,
    #[serde(default)]
    pub listen: Listen,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// `letsencrypt`, `letsencrypt-staging`, an https:// directory URL, or `off`.
    #[serde(default = "default_directory")]
    pub directory: String,
    /// PEM bundle to trust for a private CA's directory (e.g. Pebble).
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// `builtin` (instant-acme) or `certbot`.
    #[serde(default = "default_client")]
    pub client: String,
    /// `ecdsa-p256` or `rsa-2048`.
    #[serde(default = "default_key_type")]
    pub key_type: String,
    /// External account binding, for CAs that require one.
    #[serde(default)]
    pub eab: Option<Eab>,
    /// Prove the challenge path works (DNS -> port 80 -> HAProxy) before
    /// contacting the CA. Turn off only for split-horizon DNS.
    #[serde(default = "yes")]
    pub preflight: bool,
    /// The port the CA connects to for HTTP-01: 80 for every public CA; a test
    /// CA (Pebble) can be pointed elsewhere.
    #[serde(default = "default_validation_port")]
    pub validation_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Eab {
    pub kid: String,
    pub hmac_key: String,
}

/// Advanced: where HAProxy and the ACME responder listen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    #[serde(default = "default_http")]
    pub http: Vec<String>,
    #[serde(default = "default_https")]
    pub https: Vec<String>,
    #[serde(default = "default_responder")]
    pub acme_responder: String,
}

impl Default for Site {
    /// Every default a site file may leave out (domain and backends are empty:
    /// validation asks for them).
    fn default() -> Self {
        Site {
            domain: String::new(),
            aliases: Vec::new(),
            email: None,
            backends: Vec::new(),
            routing: default_routing(),
            health: None,
            firewall: default_firewall(),
            hsts: None,
            acme: Acme::default(),
            listen: Listen::default(),
        }
    }
}

impl Default for Acme {
    fn default() -> Self {
        Acme {
            directory: default_directory(),
            ca_bundle: None,
            client: default_client(),
            key_type: default_key_type(),
            eab: None,
            preflight: true,
            validation_port: default_validation_port(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            http: default_http(),
            https: default_https(),
            acme_responder: default_responder(),
        }
    }
}

fn default_routing() -> String {
    "subdomain".into()
}
fn default_firewall() -> String {
    "auto".into()
}
fn default_directory() -> String {
    "letsencrypt".into()
}
fn default_client() -> String {
    "builtin".into()
}
fn default_key_type() -> String {
    "ecdsa-p256".into()
}
fn yes() -> bool {
    true
}
fn default_validation_port() -> u16 {
    80
}
fn default_http() -> Vec<String> {
    vec![":80".into()]
}
fn default_https() -> Vec<String> {
    vec![":443".into()]
}
fn default_responder() -> String {
    DEFAULT_ACME_RESPONDER.into()
}

impl Listen {
    /// Earlier releases' default responder becomes today's; true when it did.
    pub fn migrate(&mut self) -> bool {
        if self.acme_responder == LEGACY_ACME_RESPONDER {
            self.acme_responder = DEFAULT_ACME_RESPONDER.into();
            return true;
        }
        false
    }
}

impl Acme {
    pub fn enabled(&self) -> bool {
        self.directory != "off"
    }

    /// The directory URL, with the two Let's Encrypt keywords expanded.
    pub fn directory_url(&self) -> Option<String> {
        match self.directory.as_str() {
            "off" => None,
            "letsencrypt" => Some("https://acme-v02.api.letsencrypt.org/directory".into()),
            "letsencrypt-staging" => {
                Some("https://acme-staging-v02.api.letsencrypt.org/directory".into())
            }
            url => Some(url.to_string()),
        }
    }
}

impl Site {
    /// HSTS as it will be rendered: explicit choice, else on only with ACME.
    pub fn hsts_enabled(&self) -> bool {
        self.hsts.unwrap_or_else(|| self.acme.enabled())
    }

    /// The path prefix for `path:/PREFIX/` routing, `None` for subdomain routing.
    pub fn path_prefix(&self) -> Option<&str> {
        self.routing.strip_prefix("path:")
    }

    /// Every name the site answers to and its certificate covers: the domain first.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(&self.domain)
            .chain(&self.aliases)
            .cloned()
            .collect()
    }

    /// The combined certificate + key PEM HAProxy serves for this site.
    pub fn cert_path(&self, certs_dir: &str) -> String {
        format!("{certs_dir}/{}.pem", self.domain)
    }

    /// The HAProxy backend that serves this site (domain characters are all
    /// valid in a backend name).
    pub fn backend_name(&self) -> String {
        format!("site_{}", self.domain)
    }

    /// `:PORT` when the first HTTPS bind is not on 443, else empty.
    pub fn https_port_suffix(&self) -> String {
        let port = self
            .listen
            .https
            .first()
            .and_then(|b| b.rsplit_once(':'))
            .map(|(_, port)| port);
        match port {
            Some(port) if port != "443" => format!(":{port}"),
            _ => String::new(),
        }
    }

    /// `https://DOMAIN`, plus `:PORT` when the first HTTPS bind is not on 443.
    pub fn https_origin(&self) -> String {
        format!("https://{}{}", self.domain, self.https_port_suffix())
    }
}
