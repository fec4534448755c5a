//! The typed site: what `validate::parse_site` returns once a `RawSite`
//! has no problem left. Everything downstream (rendering, ACME, status,
//! summaries) reads these types, and every fact derived from a site (its
//! certificate path, HTTPS origin, whether Let's Encrypt issues it) is a
//! method here, defined once.
//!
//! Templates and the site record still see the file's spelling: a `Site`
//! serializes as the `RawSite` it stands for (`to_raw`).

use super::addr::{Bind, HostPort, url_host};
use super::raw::{Eab, RawAcme, RawDns, RawListen, RawNotify, RawSite, RawTarget};
use crate::{dns, notify};
use serde::{Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The public name, e.g. chat.example.com (lowercase, validated).
    pub domain: String,
    /// More names on the same certificate (SANs), routed to the same app.
    pub aliases: Vec<String>,
    /// Contact address for the ACME account (present unless ACME is off).
    pub email: Option<String>,
    /// The app: one or more replicas.
    pub backends: Vec<HostPort>,
    pub routing: Routing,
    /// HTTP health-check path (e.g. `/health`).
    pub health: Option<String>,
    pub firewall: FirewallBackend,
    /// Strict-Transport-Security as written (see `hsts_enabled`).
    pub hsts: Option<bool>,
    pub acme: Acme,
    pub listen: Listen,
    /// Host-wide: where alerts about certificates go.
    pub notify: Option<notify::Settings>,
}

/// How requests reach the site: by host name, or by a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    Subdomain,
    /// `/PREFIX/`: leading and trailing slash, validated segments.
    Path(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirewallBackend {
    Auto,
    Firewalld,
    Ufw,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Acme {
    pub directory: Directory,
    /// PEM bundle to trust for a private CA's directory (e.g. Pebble).
    pub ca_bundle: Option<PathBuf>,
    pub client: AcmeClient,
    pub key_type: KeyType,
    pub eab: Option<Eab>,
    pub preflight: bool,
    pub validation_port: u16,
    pub challenge: Challenge,
}

/// How the CA is shown that this host speaks for the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The CA fetches a token from http://NAME/.well-known/acme-challenge/.
    Http01,
    /// The CA reads a TXT record at _acme-challenge.NAME.
    Dns01(dns::Settings),
}

/// Where certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directory {
    LetsEncrypt,
    Staging,
    /// Any other CA's https:// directory URL.
    Url(String),
    Off,
}

/// Spelled the same in flags, site files and step specs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AcmeClient {
    Builtin,
    Certbot,
}

/// Spelled the same in flags, site files and step specs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum KeyType {
    #[value(name = "ecdsa-p256")]
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "rsa-2048")]
    #[serde(rename = "rsa-2048")]
    Rsa2048,
}

/// Where HAProxy and the ACME responder listen (host-wide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub http: Vec<Bind>,
    pub https: Vec<Bind>,
    /// A loopback address below port 1024 (validated).
    pub acme_responder: Bind,
}

/// The spelling of a `ValueEnum` value, as flags and the site file write it.
fn value_name<T: clap::ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Reads a `ValueEnum` value from its exact spelling.
pub fn from_name<T: clap::ValueEnum>(name: &str) -> Option<T> {
    T::value_variants()
        .iter()
        .find(|v| value_name(*v) == name)
        .cloned()
}

/// Every spelling of a `ValueEnum`, in declaration order.
pub fn names<T: clap::ValueEnum>() -> Vec<String> {
    T::value_variants().iter().map(value_name).collect()
}

macro_rules! display_as_value_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&value_name(self))
            }
        }
    )*};
}
display_as_value_name!(FirewallBackend, AcmeClient, KeyType);

impl fmt::Display for Routing {
    /// `subdomain` or `path:/PREFIX/`, as the site file writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Routing::Subdomain => f.write_str("subdomain"),
            Routing::Path(prefix) => write!(f, "path:{prefix}"),
        }
    }
}

const LETSENCRYPT_URL: &str = "https://acme-v02.api.letsencrypt.org/directory";
const STAGING_URL: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
const LETSENCRYPT_HOST: &str = "acme-v02.api.letsencrypt.org";
const STAGING_HOST: &str = "acme-staging-v02.api.letsencrypt.org";

impl Directory {
    /// The directory URL; None when ACME is off.
    pub fn url(&self) -> Option<&str> {
        match self {
            Directory::LetsEncrypt => Some(LETSENCRYPT_URL),
            Directory::Staging => Some(STAGING_URL),
            Directory::Url(url) => Some(url),
            Directory::Off => None,
        }
    }

    /// Let's Encrypt, by keyword or by one of its own directory URLs.
    pub fn is_letsencrypt(&self) -> bool {
        match self {
            Directory::LetsEncrypt | Directory::Staging => true,
            Directory::Url(url) => {
                url_host(url).is_some_and(|h| h == LETSENCRYPT_HOST || h == STAGING_HOST)
            }
            Directory::Off => false,
        }
    }
}

impl fmt::Display for Directory {
    /// As the site file writes it: a keyword or the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Directory::LetsEncrypt => f.write_str("letsencrypt"),
            Directory::Staging => f.write_str("letsencrypt-staging"),
            Directory::Url(url) => f.write_str(url),
            Directory::Off => f.write_str("off"),
        }
    }
}

impl Acme {
    pub fn enabled(&self) -> bool {
        self.directory != Directory::Off
    }

    /// The dns-01 settings, when that is the challenge.
    pub fn dns(&self) -> Option<&dns::Settings> {
        match &self.challenge {
            Challenge::Dns01(settings) => Some(settings),
            Challenge::Http01 => None,
        }
    }
}

impl Challenge {
    /// `http-01` or `dns-01`, as the site file writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::Dns01(_) => "dns-01",
        }
    }
}

/// `acme.dns` as the file spells it.
fn raw_dns(settings: &dns::Settings) -> RawDns {
    let mut raw = RawDns {
        resolver: settings.resolver.map(|a| a.to_string()),
        propagation_timeout: format!("{}s", settings.propagation_timeout.as_secs()),
        ..RawDns::default()
    };
    match &settings.provider {
        dns::Provider::Rfc2136 {
            server,
            tsig_key_file,
        } => {
            raw.provider = "rfc2136".into();
            raw.server = Some(server.to_string());
            raw.tsig_key_file = Some(tsig_key_file.clone());
        }
        dns::Provider::Exec { command, env_file } => {
            raw.provider = "exec".into();
            raw.command = Some(command.clone());
            raw.env_file = env_file.clone();
        }
    }
    raw
}

/// `notify:` as the file spells it.
fn raw_notify(settings: &notify::Settings) -> RawNotify {
    RawNotify {
        targets: settings
            .targets
            .iter()
            .map(|t| match t {
                notify::Target::Command(path) => RawTarget {
                    command: Some(path.clone()),
                    webhook: None,
                },
                notify::Target::Webhook(url) => RawTarget {
                    command: None,
                    webhook: Some(url.clone()),
                },
            })
            .collect(),
        days_before_expiry: settings.days_before_expiry,
    }
}

impl Site {
    /// HSTS as it will be rendered: explicit choice, else on only with ACME.
    pub fn hsts_enabled(&self) -> bool {
        self.hsts.unwrap_or_else(|| self.acme.enabled())
    }

    /// The `/PREFIX/` of path routing, `None` for subdomain routing.
    pub fn path_prefix(&self) -> Option<&str> {
        match &self.routing {
            Routing::Path(prefix) => Some(prefix),
            Routing::Subdomain => None,
        }
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
        match self.listen.https.first() {
            Some(bind) if bind.port != 443 => format!(":{}", bind.port),
            _ => String::new(),
        }
    }

    /// `https://DOMAIN`, plus `:PORT` when the first HTTPS bind is not on 443.
    pub fn https_origin(&self) -> String {
        format!("https://{}{}", self.domain, self.https_port_suffix())
    }

    /// The site's address for people: the HTTPS origin, plus the path prefix.
    pub fn url(&self) -> String {
        match self.path_prefix() {
            Some(prefix) => format!("{}{prefix}", self.https_origin()),
            None => format!("{}/", self.https_origin()),
        }
    }

    /// The site as the file spells it.
    pub fn to_raw(&self) -> RawSite {
        let strings = |list: &[Bind]| list.iter().map(ToString::to_string).collect();
        RawSite {
            domain: self.domain.clone(),
            aliases: self.aliases.clone(),
            email: self.email.clone(),
            backends: self.backends.iter().map(ToString::to_string).collect(),
            routing: self.routing.to_string(),
            health: self.health.clone(),
            firewall: self.firewall.to_string(),
            hsts: self.hsts,
            acme: RawAcme {
                directory: self.acme.directory.to_string(),
                ca_bundle: self.acme.ca_bundle.clone(),
                client: self.acme.client.to_string(),
                key_type: self.acme.key_type.to_string(),
                eab: self.acme.eab.clone(),
                preflight: self.acme.preflight,
                validation_port: self.acme.validation_port,
                challenge: self.acme.challenge.name().into(),
                dns: self.acme.dns().map(raw_dns),
            },
            listen: RawListen {
                http: strings(&self.listen.http),
                https: strings(&self.listen.https),
                acme_responder: self.listen.acme_responder.to_string(),
            },
            notify: self.notify.as_ref().map(raw_notify),
        }
    }
}

impl Serialize for Site {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(serializer)
    }
}
