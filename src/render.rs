//! Template rendering (minijinja, strict undefined) for configuration files
//! and for the playbook itself.

use crate::assets::Assets;
use crate::distro::Distro;
use crate::site::{Config, Site, addr::Bind};
use anyhow::{Context, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// What templates and playbooks may refer to: `sites` (each with its own
/// `derived` and `acme`), `host` (what all sites share on this HAProxy),
/// `distro`, `facts`, `haproxy` (features of the installed version),
/// `acme` (run-wide ACME plumbing), `retired` (sites no longer served) and
/// `paths` (edgeup's well-known paths and unit names, `crate::paths`).
#[derive(Debug, Clone, Serialize)]
pub struct Vars {
    pub sites: Vec<SiteVars>,
    pub host: HostVars,
    pub distro: Distro,
    pub facts: FactVars,
    pub haproxy: HaproxyFeatures,
    pub acme: crate::acme::AcmeVars,
    pub retired: Vec<Retired>,
    pub paths: crate::paths::PathVars,
    /// The configuration these vars were made from (the site record writes it).
    #[serde(skip)]
    pub config: Config,
    /// The text to record for it, when it came from a file (comments kept).
    #[serde(skip)]
    pub record_text: Option<String>,
    /// These vars as templates see them, made at the first render and reused
    /// by every later one (with 200 sites, each conversion serializes every
    /// site again). Reset by `set_haproxy_version`, the one change made after
    /// rendering starts.
    #[serde(skip)]
    cached: std::cell::OnceCell<Value>,
}

/// One site as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct SiteVars {
    pub site: Site,
    pub derived: Derived,
    pub acme: crate::acme::SiteAcme,
}

/// A site that was served before and is not in the configuration any more.
#[derive(Debug, Clone, Serialize)]
pub struct Retired {
    pub domain: String,
    pub cert_path: String,
    /// certbot's deploy hook for it, when certbot was its client.
    pub hook_path: String,
}

/// Facts as templates see them (a small, stable subset of `facts::Facts`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct FactVars {
    pub selinux: String,
    pub firewall: String,
    pub systemd: bool,
    pub ipv6: bool,
    pub haproxy_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HaproxyFeatures {
    /// `major.minor` the config is rendered for.
    pub version: String,
    /// Whether the version was read from the host (false: not installed yet).
    pub detected: bool,
    /// ALPN advertised on the TLS bind.
    pub alpn: String,
}

/// What every site on this HAProxy shares.
#[derive(Debug, Clone, Serialize)]
pub struct HostVars {
    /// Bind addresses as HAProxy spells them (`:PORT` gets an IPv6 twin
    /// where the host has IPv6).
    pub http_binds: Vec<String>,
    pub https_binds: Vec<String>,
    pub acme_responder: String,
    pub firewall: String,
    /// host name -> backend map (every name of every site).
    pub sites_map: String,
    /// Served to clients that send no SNI: the first site's certificate.
    pub default_cert: String,
    /// `:PORT` to add to `https://HOST` in redirects (empty for 443).
    pub https_port_suffix: String,
    /// Some site has a wildcard name: haproxy.cfg also looks up the host's
    /// parent (see `Derived::map_keys`) when the exact name is not mapped.
    pub wildcards: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Derived {
    pub cert_path: String,
    /// The HAProxy backend serving this site.
    pub backend: String,
    /// Every name (domain first), and the names besides the domain.
    pub names: Vec<String>,
    /// `names` as keys of the host map: a wildcard `*.example.com` is
    /// `.example.com`, what haproxy.cfg looks up after cutting a host
    /// name's first label (one label deep, as the certificate covers).
    pub map_keys: Vec<String>,
    pub aliases: Vec<String>,
    /// HTTP health-check path, if any.
    pub health: Option<String>,
    pub servers: Vec<Server>,
    /// HAProxy health-checks the servers (replicas, or a health path).
    pub check: bool,
    pub hsts: bool,
    /// `path:/PREFIX/` routing, normalised to `/PREFIX/` (leading and trailing slash).
    pub path_prefix: Option<String>,
    /// `path_prefix` as a regular expression matching it literally (metacharacters
    /// wrapped in `[]`, so HAProxy's config parser sees no backslashes).
    pub path_prefix_regex: Option<String>,
    pub https_origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub name: String,
    pub address: String,
}

/// The oldest HAProxy we render for when none is installed yet (RHEL 9, Ubuntu 22.04).
const ASSUMED_VERSION: (u32, u32) = (2, 4);

impl HaproxyFeatures {
    pub fn for_version(version: Option<&str>) -> HaproxyFeatures {
        let parsed = version.and_then(major_minor);
        let (major, minor) = parsed.unwrap_or(ASSUMED_VERSION);
        // h2 on the TLS bind only from 2.6: earlier releases had WebSocket-over-h2
        // (RFC 8441) bugs; with h2 we also stop advertising RFC 8441 globally
        // (h2-workaround-bogus-websocket-clients), so browsers open websockets
        // over HTTP/1.1, the path every backend supports.
        let alpn = if (major, minor) >= (2, 6) {
            "h2,http/1.1"
        } else {
            "http/1.1"
        };
        HaproxyFeatures {
            version: format!("{major}.{minor}"),
            detected: parsed.is_some(),
            alpn: alpn.into(),
        }
    }
}

/// `major.minor` of a version as packages and `haproxy -v` print it:
/// `2.6.12-1+deb12u4`, `1:2.6.12` (epoch), `2.4.22-3.el9`, `3.0`,
/// `HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/` -> (2, 6).
/// The first whitespace-separated word that starts with `N.N` wins.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    version.split_whitespace().find_map(|word| {
        // Drop a package epoch (`1:`), never a URL's `https:`.
        let word = match word.split_once(':') {
            Some((epoch, rest))
                if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) =>
            {
                rest
            }
            _ => word,
        };
        let (major, rest) = split_number(word)?;
        let (minor, _) = split_number(rest.strip_prefix('.')?)?;
        Some((major, minor))
    })
}

/// Leading decimal digits of `s` and what follows them.
fn split_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

/// A regular expression matching `literal` exactly: each metacharacter becomes a
/// one-character class (`.` -> `[.]`), which needs no backslash in haproxy.cfg.
fn regex_literal(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 2);
    out.push('^');
    for c in literal.chars() {
        if ".+*?()|{}$".contains(c) {
            out.push('[');
            out.push(c);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

/// Where the host -> backend map lives: beside haproxy.cfg.
pub fn sites_map_path(distro: &Distro) -> String {
    sites_map_path_beside(&distro.paths.haproxy_config)
}

/// The host map beside this haproxy.cfg.
pub fn sites_map_path_beside(haproxy_config: &str) -> String {
    let dir = std::path::Path::new(haproxy_config)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/etc/haproxy".into());
    format!("{dir}/edgeup-sites.map")
}

/// A listen address as HAProxy spells it: `:PORT` (every address) becomes
/// `:PORT` plus `[::]:PORT v6only` where the host has IPv6: two sockets, so
/// IPv4 clients keep plain IPv4 source addresses (a `v4v6` socket would show
/// them as `::ffff:a.b.c.d` in X-Forwarded-For). Not when the list names an
/// `[IPv6]:PORT` of its own (the older `[":80", "[::]:80"]` pair).
fn haproxy_binds(bind: &Bind, ipv6: bool, all: &[&Bind]) -> Vec<String> {
    let own_v6 = all.iter().any(|b| b.ip.is_ipv6() && b.port == bind.port);
    if bind.every && ipv6 && !own_v6 {
        vec![bind.to_string(), format!("[::]:{} v6only", bind.port)]
    } else {
        vec![bind.to_string()]
    }
}

fn derived(site: &Site, certs_dir: &str) -> Derived {
    let servers: Vec<Server> = site
        .backends
        .iter()
        .enumerate()
        .map(|(i, address)| Server {
            name: format!("app{}", i + 1),
            address: address.to_string(),
        })
        .collect();
    let path_prefix = site.path_prefix().map(str::to_string);
    Derived {
        cert_path: site.cert_path(certs_dir),
        backend: site.backend_name(),
        map_keys: site
            .names()
            .iter()
            .map(|n| n.strip_prefix('*').unwrap_or(n).to_string())
            .collect(),
        names: site.names(),
        aliases: site.aliases.clone(),
        health: site.health.clone(),
        check: servers.len() > 1 || site.health.is_some(),
        servers,
        hsts: site.hsts_enabled(),
        path_prefix_regex: path_prefix.as_deref().map(regex_literal),
        path_prefix,
        https_origin: site.https_origin(),
    }
}

impl Vars {
    /// `retired` names the domains served before (the previous site record)
    /// that `config` no longer has; `edgeup_binary` is where the renewal
    /// units run edgeup from (`acme::renewal_binary`).
    pub fn new(
        config: &Config,
        distro: &Distro,
        facts: FactVars,
        retired: &[String],
        edgeup_binary: &str,
    ) -> Result<Vars> {
        let haproxy = HaproxyFeatures::for_version(facts.haproxy_version.as_deref());
        let certs_dir = &distro.paths.certs_dir;
        let sites: Vec<SiteVars> = config
            .sites
            .iter()
            .map(|site| SiteVars {
                derived: derived(site, certs_dir),
                acme: crate::acme::SiteAcme::new(site, distro, edgeup_binary),
                site: site.clone(),
            })
            .collect();
        let shared = config.shared().context("the configuration has no site")?;
        let all: Vec<&Bind> = shared
            .listen
            .http
            .iter()
            .chain(&shared.listen.https)
            .collect();
        let binds = |list: &[Bind]| -> Vec<String> {
            list.iter()
                .flat_map(|b| haproxy_binds(b, facts.ipv6, &all))
                .collect()
        };
        let host = HostVars {
            http_binds: binds(&shared.listen.http),
            https_binds: binds(&shared.listen.https),
            acme_responder: shared.listen.acme_responder.to_string(),
            firewall: shared.firewall.to_string(),
            sites_map: sites_map_path(distro),
            default_cert: shared.cert_path(certs_dir),
            https_port_suffix: shared.https_port_suffix(),
            wildcards: config
                .sites
                .iter()
                .any(|s| s.names().iter().any(|n| n.starts_with("*."))),
        };
        let retired = retired
            .iter()
            .map(|domain| Retired {
                domain: domain.clone(),
                cert_path: format!("{certs_dir}/{domain}.pem"),
                hook_path: crate::acme::certbot::hook_path(&distro.paths.certbot_dir, domain),
            })
            .collect();
        Ok(Vars {
            acme: crate::acme::AcmeVars::new(config, edgeup_binary),
            sites,
            host,
            distro: distro.clone(),
            facts,
            haproxy,
            retired,
            paths: crate::paths::PATH_VARS,
            config: config.clone(),
            record_text: None,
            cached: std::cell::OnceCell::new(),
        })
    }

    /// After the packages step: templates render for the HAProxy now installed.
    pub fn set_haproxy_version(&mut self, version: Option<String>) {
        self.haproxy = HaproxyFeatures::for_version(version.as_deref());
        self.facts.haproxy_version = version;
        self.cached = std::cell::OnceCell::new();
    }

    fn value(&self) -> Value {
        self.cached.get_or_init(|| Value::from(Serde(self))).clone()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // trim/lstrip so `{% if %}` lines leave no blank lines in haproxy.cfg.
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// Renders the template file `templates/<name>`.
pub fn render_template(assets: &Assets, name: &str, vars: &Vars) -> Result<String> {
    let source = assets.get(&format!("templates/{name}"))?;
    render_str(&source, vars).with_context(|| format!("rendering template {name}"))
}

/// Renders any template text (the playbook is one too).
pub fn render_str(source: &str, vars: &Vars) -> Result<String> {
    let env = environment();
    let rendered = env
        .render_str(source, vars.value())
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(rendered)
}

/// Evaluates a `when:` expression (e.g. `facts.selinux == "enforcing"`).
pub fn eval_condition(expr: &str, vars: &Vars) -> Result<bool> {
    let env = environment();
    let compiled = env
        .compile_expression(expr)
        .map_err(|e| anyhow::anyhow!("invalid condition `{expr}`: {e:#}"))?;
    let value = compiled
        .eval(vars.value())
        .map_err(|e| anyhow::anyhow!("evaluating condition `{expr}`: {e:#}"))?;
    Ok(value.is_true())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_minor_reads_package_and_banner_versions() {
        assert_eq!(major_minor("2.6.12-1+deb12u4"), Some((2, 6)));
        assert_eq!(major_minor("1:2.6.12"), Some((2, 6)));
        assert_eq!(major_minor("2.4.22-3.el9"), Some((2, 4)));
        assert_eq!(major_minor("3.0"), Some((3, 0)));
        assert_eq!(major_minor(" 2.8.5 "), Some((2, 8)));
        assert_eq!(
            major_minor("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"),
            Some((2, 6))
        );
        assert_eq!(major_minor("3"), None);
        assert_eq!(major_minor(""), None);
        assert_eq!(major_minor("none"), None);
    }

    #[test]
    fn alpn_h2_from_2_6() {
        assert_eq!(HaproxyFeatures::for_version(None).alpn, "http/1.1");
        assert!(!HaproxyFeatures::for_version(Some("garbage")).detected);
        assert_eq!(
            HaproxyFeatures::for_version(Some("2.4.22")).alpn,
            "http/1.1"
        );
        let f = HaproxyFeatures::for_version(Some("2.6.12-1+deb12u4"));
        assert_eq!(
            (f.version.as_str(), f.detected, f.alpn.as_str()),
            ("2.6", true, "h2,http/1.1")
        );
        assert_eq!(
            HaproxyFeatures::for_version(Some("3.0.11")).alpn,
            "h2,http/1.1"
        );
    }

    #[test]
    fn prefix_and_bind_helpers() {
        assert_eq!(regex_literal("/chat.v1/"), "^/chat[.]v1/");
        let bind = |s: &str| crate::site::addr::parse_bind(s, ":443").expect("bind");
        let none: Vec<&Bind> = Vec::new();
        assert_eq!(
            haproxy_binds(&bind(":443"), true, &none),
            [":443", "[::]:443 v6only"]
        );
        assert_eq!(haproxy_binds(&bind(":443"), false, &none), [":443"]);
        assert_eq!(
            haproxy_binds(&bind("127.0.0.1:8443"), true, &none),
            ["127.0.0.1:8443"]
        );
        let v6 = bind("[::]:443");
        assert_eq!(haproxy_binds(&bind(":443"), true, &[&v6]), [":443"]);
    }
}
