//! The site file as written (`SiteFile`: one site in the top-level keys, or
//! `sites:` with shared defaults above it), as resolved (one complete
//! `RawSite` per site, shared keys folded in) and as validated (`Config`:
//! typed sites). Everything downstream works on `Config`; only this module
//! knows the two file shapes.
//!
//! Host-wide settings (`firewall`, `listen`) exist once, at the top. Site
//! settings (`email`, `hsts`, `acme.*`) at the top are defaults that a
//! `sites:` entry may override key by key.

use super::raw::{Eab, RawAcme, RawDns, RawListen, RawNotify, RawSite};
use super::{Problem, Site};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Every site a host serves, typed and validated (see `validate_config`);
/// never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub sites: Vec<Site>,
}

/// The file as written. Unknown keys are errors.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteFile {
    // One-site form: the site itself at the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    // Shared by every site (defaults for `sites:` entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeKeys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<RawListen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<RawNotify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<SiteEntry>>,
}

/// One `sites:` entry: the site's own keys and its overrides of the shared ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteEntry {
    #[serde(default)]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub backends: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeKeys>,
}

/// `acme:` keys as written: each one absent (inherit / default) or set.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AcmeKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eab: Option<Eab>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// Set as a whole: a site's `dns:` replaces the shared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<RawDns>,
}

impl AcmeKeys {
    /// `base` with every key set here written over it.
    fn over(&self, base: &RawAcme) -> RawAcme {
        let mut acme = base.clone();
        if let Some(v) = &self.directory {
            acme.directory = v.clone();
        }
        if let Some(v) = &self.ca_bundle {
            acme.ca_bundle = Some(v.clone());
        }
        if let Some(v) = &self.client {
            acme.client = v.clone();
        }
        if let Some(v) = &self.key_type {
            acme.key_type = v.clone();
        }
        if let Some(v) = &self.eab {
            acme.eab = Some(v.clone());
        }
        if let Some(v) = self.preflight {
            acme.preflight = v;
        }
        if let Some(v) = self.validation_port {
            acme.validation_port = v;
        }
        if let Some(v) = &self.challenge {
            acme.challenge = v.clone();
        }
        if let Some(v) = &self.dns {
            acme.dns = Some(v.clone());
        }
        acme
    }

    /// Is `key` (e.g. `directory`, `eab.kid`) set here?
    fn sets(&self, key: &str) -> bool {
        match key.split('.').next().unwrap_or_default() {
            "directory" => self.directory.is_some(),
            "ca_bundle" => self.ca_bundle.is_some(),
            "client" => self.client.is_some(),
            "key_type" => self.key_type.is_some(),
            "eab" => self.eab.is_some(),
            "preflight" => self.preflight.is_some(),
            "validation_port" => self.validation_port.is_some(),
            "challenge" => self.challenge.is_some(),
            "dns" => self.dns.is_some(),
            _ => false,
        }
    }

    /// Every key of `acme`, for writing a resolved site out.
    fn all(acme: &RawAcme) -> AcmeKeys {
        AcmeKeys {
            directory: Some(acme.directory.clone()),
            ca_bundle: acme.ca_bundle.clone(),
            client: Some(acme.client.clone()),
            key_type: Some(acme.key_type.clone()),
            eab: acme.eab.clone(),
            preflight: Some(acme.preflight),
            validation_port: Some(acme.validation_port),
            challenge: acme.dns01().then(|| acme.challenge.clone()),
            dns: acme.dns.clone(),
        }
    }
}

/// Reads YAML that may hold a secret (an EAB key): errors name the line and
/// column, never quote the file's lines.
pub fn from_secret_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options(text, options)
}

/// The keys that belong to one site (everything else at the top is shared).
pub(crate) const SITE_KEYS: &[&str] = &["domain", "aliases", "backends", "routing", "health"];

impl SiteFile {
    /// Is this the `sites:` form?
    pub fn is_multi(&self) -> bool {
        self.sites.is_some()
    }

    /// Does the file still name the responder address of earlier releases
    /// (read as today's default; the record is rewritten without it)?
    pub fn names_legacy_responder(&self) -> bool {
        self.listen
            .as_ref()
            .is_some_and(|l| l.acme_responder == super::LEGACY_ACME_RESPONDER)
    }

    /// Every site, complete; or what makes the file's shape wrong. Values are
    /// not judged here (`validate_config` does that).
    pub fn resolve(&self) -> Result<Vec<RawSite>, Vec<Problem>> {
        let defaults = RawSite::default();
        let acme = match &self.acme {
            Some(keys) => keys.over(&defaults.acme),
            None => defaults.acme.clone(),
        };
        let shared = RawSite {
            email: self.email.clone(),
            firewall: self.firewall.clone().unwrap_or(defaults.firewall.clone()),
            hsts: self.hsts,
            acme,
            listen: self.listen.clone().unwrap_or_default(),
            notify: self.notify.clone(),
            ..defaults.clone()
        };
        let mut shared = shared;
        shared.listen.migrate();
        let legacy: Vec<&str> = SITE_KEYS
            .iter()
            .copied()
            .filter(|key| self.has_top_level(key))
            .collect();
        let Some(entries) = &self.sites else {
            return Ok(vec![RawSite {
                domain: self.domain.clone().unwrap_or_default(),
                aliases: self.aliases.clone().unwrap_or_default(),
                backends: self.backends.clone().unwrap_or_default(),
                routing: self.routing.clone().unwrap_or(defaults.routing),
                health: self.health.clone(),
                ..shared
            }]);
        };
        if !legacy.is_empty() {
            return Err(legacy
                .into_iter()
                .map(|key| {
                    Problem::new(
                        key,
                        "",
                        "is set at the top of a file that also has sites:",
                        format!("move {key}: into the site it belongs to, under sites:"),
                    )
                })
                .collect());
        }
        if entries.is_empty() {
            return Err(vec![Problem::new(
                "sites",
                "",
                "is empty",
                "list at least one site, e.g. sites: [{domain: chat.example.com, backends: [\"127.0.0.1:3000\"]}]",
            )]);
        }
        let sites = entries
            .iter()
            .map(|e| RawSite {
                domain: e.domain.clone(),
                aliases: e.aliases.clone(),
                backends: e.backends.clone(),
                routing: e.routing.clone().unwrap_or(defaults.routing.clone()),
                health: e.health.clone(),
                email: e.email.clone().or(shared.email.clone()),
                hsts: e.hsts.or(shared.hsts),
                acme: match &e.acme {
                    Some(keys) => keys.over(&shared.acme),
                    None => shared.acme.clone(),
                },
                ..shared.clone()
            })
            .collect();
        Ok(sites)
    }

    fn has_top_level(&self, key: &str) -> bool {
        match key {
            "domain" => self.domain.is_some(),
            "aliases" => self.aliases.is_some(),
            "backends" => self.backends.is_some(),
            "routing" => self.routing.is_some(),
            "health" => self.health.is_some(),
            _ => false,
        }
    }

    /// Where a problem with `field` of site `index` is to be fixed: the
    /// entry's own key (`sites[1].acme.directory`) when the entry sets it,
    /// else the shared key at the top (`acme.directory`).
    pub fn locate(&self, index: usize, field: &str) -> String {
        let Some(entry) = self.sites.as_ref().and_then(|s| s.get(index)) else {
            return field.to_string();
        };
        let root = field
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_string();
        let own = match root.as_str() {
            key if SITE_KEYS.contains(&key) => true,
            "email" => entry.email.is_some(),
            "hsts" => entry.hsts.is_some(),
            "acme" => entry
                .acme
                .as_ref()
                .is_some_and(|keys| keys.sets(field.strip_prefix("acme.").unwrap_or_default())),
            _ => false,
        };
        if own {
            format!("sites[{index}].{field}")
        } else {
            field.to_string()
        }
    }
}

impl Config {
    /// The configuration a site file describes, when it parses, resolves and
    /// is valid.
    pub fn from_text(text: &str) -> Option<Config> {
        Config::from_file(&from_secret_yaml::<SiteFile>(text).ok()?)
    }

    /// The configuration a parsed site file describes, when it resolves and
    /// is valid.
    pub fn from_file(file: &SiteFile) -> Option<Config> {
        super::validate_config(&file.resolve().ok()?, Some(file)).ok()
    }

    /// The site whose host-wide settings (firewall, listen) every site
    /// shares, by construction: the first. None only for a configuration
    /// built by hand with no site (validation refuses one).
    pub fn shared(&self) -> Option<&Site> {
        self.sites.first()
    }

    pub fn domains(&self) -> Vec<&str> {
        self.sites.iter().map(|s| s.domain.as_str()).collect()
    }

    pub fn site(&self, domain: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.domain == domain)
    }

    /// The file that describes exactly this configuration (see `file_of`).
    pub fn to_file(&self) -> SiteFileText {
        file_of(&self.raw_sites())
    }

    /// The raw file of `to_file` (for key-by-key merging, e.g. fleet inventories).
    pub fn to_site_file(&self) -> SiteFile {
        match self.to_file() {
            SiteFileText::Many(file) => file,
            SiteFileText::One(site) => SiteFile {
                domain: Some(site.domain),
                aliases: (!site.aliases.is_empty()).then_some(site.aliases),
                backends: Some(site.backends),
                routing: Some(site.routing),
                health: site.health,
                email: site.email,
                firewall: Some(site.firewall),
                hsts: site.hsts,
                acme: Some(AcmeKeys::all(&site.acme)),
                listen: Some(site.listen),
                notify: site.notify,
                sites: None,
            },
        }
    }

    /// The YAML of `to_file`.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        yaml_of(&self.raw_sites())
    }

    /// Every site as the file spells it.
    pub fn raw_sites(&self) -> Vec<RawSite> {
        self.sites.iter().map(Site::to_raw).collect()
    }
}

/// The sites a site file's text describes, when it parses and resolves
/// (values are not judged).
pub fn raw_sites(text: &str) -> Option<Vec<RawSite>> {
    from_secret_yaml::<SiteFile>(text).ok()?.resolve().ok()
}

/// The file that describes exactly these sites: the one-site form for one
/// site (the same text earlier releases wrote), else `sites:` with every
/// site's keys spelled out under the shared firewall and listen.
pub fn file_of(sites: &[RawSite]) -> SiteFileText {
    match sites {
        [one] => SiteFileText::One(one.clone()),
        sites => {
            let shared = sites.first().cloned().unwrap_or_default();
            SiteFileText::Many(SiteFile {
                firewall: Some(shared.firewall),
                listen: Some(shared.listen),
                notify: shared.notify,
                sites: Some(
                    sites
                        .iter()
                        .map(|s| SiteEntry {
                            acme: Some(AcmeKeys::all(&s.acme)),
                            domain: s.domain.clone(),
                            aliases: s.aliases.clone(),
                            backends: s.backends.clone(),
                            routing: Some(s.routing.clone()),
                            health: s.health.clone(),
                            email: s.email.clone(),
                            hsts: s.hsts,
                        })
                        .collect(),
                ),
                ..SiteFile::default()
            })
        }
    }
}

/// The YAML of `file_of`.
pub fn yaml_of(sites: &[RawSite]) -> anyhow::Result<String> {
    use anyhow::Context;
    match file_of(sites) {
        SiteFileText::One(site) => serde_saphyr::to_string(&site),
        SiteFileText::Many(file) => serde_saphyr::to_string(&file),
    }
    .context("encoding the sites as YAML")
}

/// A configuration as a file: one site in the top-level keys, or `sites:`.
pub enum SiteFileText {
    One(RawSite),
    Many(SiteFile),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(yaml: &str) -> Result<Vec<RawSite>, Vec<Problem>> {
        serde_saphyr::from_str::<SiteFile>(yaml)
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
            .resolve()
    }

    fn valid(yaml: &str) -> Config {
        let file = serde_saphyr::from_str::<SiteFile>(yaml).expect("parses");
        let sites = file.resolve().expect("resolves");
        crate::site::validate_config(&sites, Some(&file)).expect("valid")
    }

    #[test]
    fn one_site_file_is_one_site() {
        let sites = resolve("domain: a.example.com\nbackends: [127.0.0.1:3000]\nemail: x@y.org\nacme: {directory: off}\n")
            .expect("resolves");
        let [site] = sites.as_slice() else {
            panic!("one site: {sites:?}");
        };
        assert_eq!(site.domain, "a.example.com");
        assert_eq!(site.email.as_deref(), Some("x@y.org"));
        assert_eq!(site.acme.directory, "off");
        assert_eq!(site.acme.client, "builtin");
        assert_eq!(site.routing, "subdomain");
    }

    #[test]
    fn sites_inherit_shared_keys_and_override_them_key_by_key() {
        let sites = resolve(
            "email: ops@example.org\nhsts: false\nacme: {directory: letsencrypt-staging, client: certbot}\nfirewall: none\n\
             sites:\n  - domain: a.example.com\n    backends: [127.0.0.1:3000]\n\
             \x20 - domain: b.example.com\n    backends: [127.0.0.1:3001]\n    email: b@example.org\n    hsts: true\n    acme: {directory: off}\n",
        )
        .expect("resolves");
        let [a, b] = sites.as_slice() else {
            panic!("two sites: {sites:?}");
        };
        assert_eq!(a.email.as_deref(), Some("ops@example.org"));
        assert_eq!(
            (a.hsts, a.acme.directory.as_str(), a.acme.client.as_str()),
            (Some(false), "letsencrypt-staging", "certbot")
        );
        assert_eq!(b.email.as_deref(), Some("b@example.org"));
        // directory overridden, client still inherited
        assert_eq!(
            (b.hsts, b.acme.directory.as_str(), b.acme.client.as_str()),
            (Some(true), "off", "certbot")
        );
        assert_eq!((a.firewall.as_str(), b.firewall.as_str()), ("none", "none"));
    }

    #[test]
    fn site_keys_at_the_top_of_a_sites_file_are_refused() {
        let problems = resolve("domain: a.example.com\nsites: [{domain: b.example.com}]\n")
            .expect_err("refused");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "domain");
        let empty = resolve("sites: []\n").expect_err("refused");
        assert_eq!(empty[0].field, "sites");
    }

    #[test]
    fn problems_point_at_the_key_to_edit() {
        let file: SiteFile = serde_saphyr::from_str(
            "acme: {directory: bogus}\nsites:\n  - {domain: a.example.com, acme: {client: x}}\n",
        )
        .expect("parses");
        assert_eq!(file.locate(0, "acme.directory"), "acme.directory");
        assert_eq!(file.locate(0, "acme.client"), "sites[0].acme.client");
        assert_eq!(file.locate(0, "backends[0]"), "sites[0].backends[0]");
        assert_eq!(file.locate(0, "email"), "email");
        assert_eq!(file.locate(0, "listen.http[0]"), "listen.http[0]");
    }

    #[test]
    fn written_files_read_back_as_the_same_config() {
        for yaml in [
            "domain: a.example.com\nemail: o@widgets.dev\nbackends: [127.0.0.1:3000]\n",
            "email: o@widgets.dev\nsites:\n  - {domain: a.example.com, aliases: [www.a.example.com], backends: [127.0.0.1:3000], health: /health}\n  - {domain: b.example.com, backends: [127.0.0.1:3001], acme: {client: certbot}}\n",
            "email: o@widgets.dev\nnotify: {targets: [{webhook: https://hooks.widgets.dev/e}], days_before_expiry: 10}\n\
             acme: {directory: https://127.0.0.1:14000/dir, ca_bundle: /etc/edgeup/ca.pem}\nsites:\n\
             \x20 - {domain: a.example.test, aliases: [\"*.a.example.test\"], backends: [127.0.0.1:3000], acme: {challenge: dns-01, dns: {provider: exec, command: /usr/local/bin/hook, propagation_timeout: 2m}}}\n\
             \x20 - {domain: b.example.test, backends: [127.0.0.1:3001]}\n",
        ] {
            let config = valid(yaml);
            let text = config.to_yaml().expect("encodes");
            assert_eq!(valid(&text), config, "{text}");
        }
    }

    #[test]
    fn one_site_is_written_as_earlier_releases_wrote_it() {
        let config =
            valid("domain: a.example.com\nemail: o@widgets.dev\nbackends: [127.0.0.1:3000]\n");
        let text = config.to_yaml().expect("encodes");
        let site = serde_saphyr::to_string(&config.sites[0].to_raw()).expect("encodes");
        assert_eq!(text, site);
        assert!(
            !text.contains("aliases") && !text.contains("health") && !text.contains("sites"),
            "{text}"
        );
    }
}
