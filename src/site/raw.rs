//! The site as written: strings, as serde reads them from the site file or
//! flags set them. Nothing here is judged; `validate::parse_site` turns a
//! `RawSite` into the typed `Site` (or every problem with it).

use super::{DEFAULT_ACME_RESPONDER, LEGACY_ACME_RESPONDER};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
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
    pub acme: RawAcme,
    #[serde(default)]
    pub listen: RawListen,
    /// Host-wide: who is told when a renewal fails or expiry is near.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<RawNotify>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAcme {
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
    /// `http-01` (the CA fetches a token through port 80) or `dns-01` (a TXT
    /// record in the zone: no inbound port needed, wildcards allowed).
    /// (Not written when http-01: records stay as earlier releases wrote them.)
    #[serde(default = "default_challenge", skip_serializing_if = "is_http01")]
    pub challenge: String,
    /// How dns-01 writes its TXT records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<RawDns>,
}

/// `acme.dns`: the provider that writes the dns-01 TXT records.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// `rfc2136` (dynamic updates with a TSIG key) or `exec` (a hook).
    #[serde(default)]
    pub provider: String,
    /// rfc2136: the primary that accepts updates, `IP` or `IP:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// rfc2136: the TSIG key, BIND key-file format, mode 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_key_file: Option<PathBuf>,
    /// exec: run as `COMMAND present|cleanup FQDN VALUE` (lego's contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<PathBuf>,
    /// exec: `KEY=VALUE` lines (API tokens) put in the hook's environment, mode 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
    /// Where the zone's SOA and NS are looked up, `IP` or `IP:PORT`
    /// (default: the rfc2136 server, or the system's first nameserver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<String>,
    /// How long every authoritative server may take to answer the records:
    /// `120s`, `2m` or a number of seconds.
    #[serde(default = "default_propagation_timeout")]
    pub propagation_timeout: String,
}

/// `notify:` (host-wide): where alerts about certificates go.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    /// `expiry_near` once a day when a certificate has fewer days left.
    #[serde(default = "default_days_before_expiry")]
    pub days_before_expiry: u32,
}

/// One `notify.targets` entry: exactly one of the keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// An absolute path, run with the event's JSON on stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<PathBuf>,
    /// An http(s):// URL the event's JSON is POSTed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
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
pub struct RawListen {
    #[serde(default = "default_http")]
    pub http: Vec<String>,
    #[serde(default = "default_https")]
    pub https: Vec<String>,
    #[serde(default = "default_responder")]
    pub acme_responder: String,
}

impl Default for RawSite {
    /// Every default a site file may leave out (domain and backends are empty:
    /// validation asks for them).
    fn default() -> Self {
        RawSite {
            domain: String::new(),
            aliases: Vec::new(),
            email: None,
            backends: Vec::new(),
            routing: default_routing(),
            health: None,
            firewall: default_firewall(),
            hsts: None,
            acme: RawAcme::default(),
            listen: RawListen::default(),
            notify: None,
        }
    }
}

impl Default for RawAcme {
    fn default() -> Self {
        RawAcme {
            directory: default_directory(),
            ca_bundle: None,
            client: default_client(),
            key_type: default_key_type(),
            eab: None,
            preflight: true,
            validation_port: default_validation_port(),
            challenge: default_challenge(),
            dns: None,
        }
    }
}

impl Default for RawListen {
    fn default() -> Self {
        RawListen {
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
fn default_challenge() -> String {
    "http-01".into()
}
fn is_http01(challenge: &str) -> bool {
    challenge == "http-01"
}
pub(crate) fn default_propagation_timeout() -> String {
    "120s".into()
}
fn default_days_before_expiry() -> u32 {
    14
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

impl RawListen {
    /// Earlier releases' default responder becomes today's; true when it did.
    pub fn migrate(&mut self) -> bool {
        if self.acme_responder == LEGACY_ACME_RESPONDER {
            self.acme_responder = DEFAULT_ACME_RESPONDER.into();
            return true;
        }
        false
    }
}

impl RawAcme {
    /// Not `directory: off` (the questions and checks that run before the
    /// site is typed need it; typed: `Acme::enabled`).
    pub fn enabled(&self) -> bool {
        self.directory != "off"
    }

    /// `challenge: dns-01` as written (typed: `Acme::dns`).
    pub fn dns01(&self) -> bool {
        self.challenge == "dns-01"
    }
}

impl RawSite {
    /// Every name the site answers to: the domain first.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(&self.domain)
            .chain(&self.aliases)
            .cloned()
            .collect()
    }

    /// The prefix of `path:PREFIX` as written (typed: `Site::path_prefix`).
    pub fn path_prefix(&self) -> Option<&str> {
        self.routing.strip_prefix("path:")
    }

    /// HSTS as it would be rendered (typed: `Site::hsts_enabled`).
    pub fn hsts_enabled(&self) -> bool {
        self.hsts.unwrap_or_else(|| self.acme.enabled())
    }
}
