//! Template rendering (minijinja, strict undefined) for configuration files
//! and for the playbook itself.

use crate::assets::Assets;
use crate::distro::Distro;
use crate::site::Site;
use anyhow::{Context, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// What templates and playbooks may refer to: `site`, `distro`, `facts`, and
/// `haproxy` (features derived from the installed HAProxy version).
#[derive(Debug, Clone, Serialize)]
pub struct Vars {
    pub site: Site,
    pub distro: Distro,
    pub facts: FactVars,
    pub haproxy: HaproxyFeatures,
    /// Derived values templates should not have to compute.
    pub derived: Derived,
}

/// Facts as templates see them (a small, stable subset of `facts::Facts`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct FactVars {
    pub selinux: String,
    pub firewall: String,
    pub systemd: bool,
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

#[derive(Debug, Clone, Serialize)]
pub struct Derived {
    pub cert_path: String,
    pub servers: Vec<Server>,
    /// Bind addresses as HAProxy spells them.
    pub http_binds: Vec<String>,
    pub https_binds: Vec<String>,
    pub acme_responder: String,
    pub hsts: bool,
    pub path_prefix: Option<String>,
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

/// `2.6.12-1+deb12u4` or `2.6.12` -> (2, 6).
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let upstream = version.split([':']).next_back()?;
    let mut parts = upstream.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// How a `HOST:PORT` from the site becomes an HAProxy bind address.
fn bind_address(listen: &str) -> String {
    listen.to_string()
}

impl Vars {
    pub fn new(site: &Site, distro: &Distro, facts: FactVars) -> Vars {
        let haproxy = HaproxyFeatures::for_version(facts.haproxy_version.as_deref());
        let servers = site
            .backends
            .iter()
            .enumerate()
            .map(|(i, address)| Server {
                name: format!("app{}", i + 1),
                address: address.clone(),
            })
            .collect();
        let derived = Derived {
            cert_path: format!("{}/{}.pem", distro.paths.certs_dir, site.domain),
            servers,
            http_binds: site.listen.http.iter().map(|a| bind_address(a)).collect(),
            https_binds: site.listen.https.iter().map(|a| bind_address(a)).collect(),
            acme_responder: site.listen.acme_responder.clone(),
            hsts: site.hsts_enabled(),
            path_prefix: site.path_prefix().map(str::to_string),
        };
        Vars {
            site: site.clone(),
            distro: distro.clone(),
            facts,
            haproxy,
            derived,
        }
    }

    fn value(&self) -> Value {
        Value::from(Serde(self))
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
