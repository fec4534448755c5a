//! `edgeup status`: is the site healthy? Distro, HAProxy (version, unit
//! active/enabled), the certificate (file, else as served), the renewal
//! timer, and HTTPS + websocket probes through HAProxy's own listener with
//! SNI. Read-only: works without root (the certificate file then is judged
//! as served) and says plainly when systemd is absent. Exit 0 healthy,
//! `exit::UNHEALTHY` when any check fails.

pub mod checks;
mod print;
pub mod probe;
#[cfg(test)]
mod tests;

use crate::assets::Assets;
use crate::cli::StatusArgs;
use crate::distro::{self, Distro};
use crate::exit;
use crate::facts::{Systemd, os_release::OsRelease, probes};
use crate::host::{Host, systemd};
use crate::pki::{self, CertInfo};
use crate::site::{AcmeClient, Site};
use anyhow::Result;
use checks::{Check, Level, UnitState};
use probe::{Endpoint, Probe};
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Where Open WebUI's socket.io endpoint takes websocket upgrades.
pub const WEBSOCKET_PATH: &str = "ws/socket.io/?EIO=4&transport=websocket";

#[derive(Debug, Serialize)]
pub struct SiteStatus {
    pub healthy: bool,
    pub domain: String,
    pub distro: Option<String>,
    pub systemd: Systemd,
    pub haproxy: Haproxy,
    pub certificate: Option<Certificate>,
    pub renewal: Renewal,
    pub https: Probe,
    pub websocket: Probe,
    /// One verdict per concern, in display order: the host's first.
    pub checks: Vec<Check>,
    /// How many of `checks` are the host's (distro, systemd, HAProxy): shown
    /// once above the sites' blocks when there are several.
    #[serde(skip)]
    pub host_checks: usize,
}

/// What every site on the host shares, looked at once per `status`.
pub struct HostFacts {
    distro: Option<String>,
    profile: Option<Distro>,
    systemd: Systemd,
    haproxy: Haproxy,
    checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Haproxy {
    pub version: Option<String>,
    /// None without systemd.
    pub unit: Option<UnitState>,
}

#[derive(Debug, Serialize)]
pub struct Certificate {
    /// `file` (read from `path`) or `served` (the file was unreadable, e.g. without root).
    pub source: String,
    pub path: String,
    #[serde(flatten)]
    pub info: CertInfo,
    pub days_left: i64,
    pub expired: bool,
}

#[derive(Debug, Serialize)]
pub struct Renewal {
    /// `builtin` or `certbot`; None with acme.directory off.
    pub client: Option<String>,
    pub timer: Option<UnitState>,
}

/// How to probe: `connect` overrides the loopback form of listen.https[0].
#[derive(Debug, Clone)]
pub struct Options {
    pub connect: Option<SocketAddr>,
    pub timeout: Duration,
    /// Unix seconds "now" (tests pin it).
    pub now: i64,
}

pub fn run(
    host: &Host,
    assets: &Assets,
    args: &StatusArgs,
    out: &super::converge::Output,
) -> Result<i32> {
    refuse_unreadable_default(&args.site)?;
    let config = super::site_input::build(&args.site.flags())?;
    let sites: Vec<&Site> = match &args.only {
        Some(only) => vec![config.site(only).ok_or_else(|| {
            exit::invalid(format!(
                "{only} is not one of the sites ({}); `edgeup site list` shows them",
                config.domains().join(", ")
            ))
        })?],
        None => config.sites.iter().collect(),
    };
    let options = Options {
        connect: args.connect,
        timeout: Duration::from_secs(args.timeout.max(1)),
        now: pki::now(),
    };
    // One report per site (one JSON line each, whole), then the verdict
    // over all; the host is looked at once, and shown once above the sites.
    let facts = gather_host(host, assets);
    let several = sites.len() > 1;
    if several && !out.json {
        print::host(&facts.checks, out.verbosity);
    }
    let mut unhealthy = Vec::new();
    for site in &sites {
        let report = gather_site(host, &facts, site, &options);
        if out.json {
            crate::outln!("{}", serde_json::to_string(&report)?);
        } else {
            print::human(&report, out.verbosity, several);
        }
        if !report.healthy {
            unhealthy.push(site.domain.clone());
        }
    }
    if !out.json && sites.len() > 1 {
        print::summary(sites.len(), &unhealthy);
    }
    Ok(if unhealthy.is_empty() {
        exit::OK
    } else {
        exit::UNHEALTHY
    })
}

/// Without root, the default site file (0600) cannot be read: say how to
/// check anyway, instead of a bare "permission denied".
fn refuse_unreadable_default(args: &crate::cli::SiteArgs) -> Result<()> {
    let default = std::path::Path::new(crate::paths::SITE_FILE);
    if args.site_file.is_some() || args.domain.is_some() || probes::is_root() {
        return Ok(());
    }
    match std::fs::File::open(default) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(exit::invalid(format!(
            "{} is readable by root only (it may hold an EAB key): run `sudo edgeup status`, or \
             give the site as flags (--domain D --email E --backend HOST:PORT ...) to check \
             without root",
            default.display()
        ))),
        _ => Ok(()),
    }
}

/// Everything status looks at for one site, judged (see `gather_site`).
pub fn gather(host: &Host, assets: &Assets, site: &Site, options: &Options) -> SiteStatus {
    gather_site(host, &gather_host(host, assets), site, options)
}

/// The host's side: distro, systemd, HAProxy. Never fails: what cannot be
/// known becomes a failed check that says why.
pub fn gather_host(host: &Host, assets: &Assets) -> HostFacts {
    let mut checks = Vec::new();
    let (distro, profile) = identify(host, assets, &mut checks);
    let systemd = probes::systemd(host);
    if systemd.running {
        checks.push(Check::new("systemd", Level::Ok, "running"));
    } else {
        checks.push(Check::new(
            "systemd",
            Level::Fail,
            format!(
                "systemd is NOT running (PID 1 is '{}'): HAProxy and the renewal timer cannot \
                 run as services here; edgeup needs a host booted with systemd",
                systemd.pid1
            ),
        ));
    }
    let haproxy_unit = profile
        .as_ref()
        .map_or("haproxy.service", |d| d.units.haproxy.as_str());
    let haproxy = Haproxy {
        version: probes::tool_version(host, "haproxy", &["-v"]).map(|v| haproxy_version(&v)),
        unit: systemd
            .running
            .then(|| unit_state(host, haproxy_unit, false)),
    };
    checks.push(checks::haproxy(
        haproxy.version.as_deref(),
        haproxy.unit.as_ref(),
    ));
    HostFacts {
        distro,
        profile,
        systemd,
        haproxy,
        checks,
    }
}

/// One site's side (certificate, renewal, HTTPS and websocket probes with
/// its SNI) after the host's checks. Never fails, like `gather_host`.
pub fn gather_site(host: &Host, facts: &HostFacts, site: &Site, options: &Options) -> SiteStatus {
    let profile = &facts.profile;
    let systemd = facts.systemd.clone();
    let mut checks = facts.checks.clone();
    let host_checks = checks.len();
    let target = Endpoint {
        addr: options
            .connect
            .or_else(|| site.listen.https.first().map(|b| b.loopback()))
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 443))),
        domain: site.domain.clone(),
        timeout: options.timeout,
    };
    let base = site.path_prefix().unwrap_or("/");
    let https = probe::https(&target, base);
    let websocket = probe::websocket(&target, &format!("{base}{WEBSOCKET_PATH}"));

    let certs_dir = profile
        .as_ref()
        .map_or("/etc/haproxy/certs", |d| d.paths.certs_dir.as_str());
    let path = site.cert_path(certs_dir);
    let certificate = certificate(host, &path, site, &https, options.now, &mut checks);

    let client = site.acme.enabled().then_some(site.acme.client);
    let timer_unit = match client {
        Some(AcmeClient::Certbot) => profile
            .as_ref()
            .map_or("certbot.timer", |d| d.units.certbot_timer.as_str()),
        _ => crate::paths::RENEW_TIMER,
    };
    let renewal = Renewal {
        timer: (client.is_some() && systemd.running).then(|| unit_state(host, timer_unit, true)),
        client: client.map(|c| c.to_string()),
    };
    checks.push(checks::renewal(
        renewal.client.as_deref(),
        renewal.timer.as_ref(),
    ));
    if site.acme.enabled() {
        checks.push(checks::last_renewal(crate::notify::last_attempt(
            host,
            crate::paths::STATE_DIR,
            &site.domain,
        )));
    }
    checks.push(checks::https(&https, &site.backends));
    checks.push(checks::websocket(&websocket));

    SiteStatus {
        healthy: checks.iter().all(|c| c.level != Level::Fail),
        domain: site.domain.clone(),
        distro: facts.distro.clone(),
        systemd,
        haproxy: facts.haproxy.clone(),
        certificate,
        renewal,
        https,
        websocket,
        checks,
        host_checks,
    }
}

/// The distro's name and profile (None, with a failed check, when unsupported).
fn identify(
    host: &Host,
    assets: &Assets,
    checks: &mut Vec<Check>,
) -> (Option<String>, Option<Distro>) {
    let os = match OsRelease::read(host.root()) {
        Ok(os) => os,
        Err(e) => {
            checks.push(Check::new("distro", Level::Fail, format!("{e:#}")));
            return (None, None);
        }
    };
    let name = os.pretty_name_or_id().to_string();
    let selected = distro::load_all(assets).and_then(|profiles| distro::select(&profiles, &os));
    match selected {
        Ok(d) => {
            checks.push(Check::new(
                "distro",
                Level::Ok,
                format!("{name} (profile {})", d.name),
            ));
            (Some(name), Some(d))
        }
        Err(e) => {
            checks.push(Check::new("distro", Level::Fail, format!("{name}: {e:#}")));
            (Some(name), None)
        }
    }
}

/// The certificate file if readable, else what HAProxy served; judged.
fn certificate(
    host: &Host,
    path: &str,
    site: &Site,
    https: &Probe,
    now: i64,
    checks: &mut Vec<Check>,
) -> Option<Certificate> {
    let acme = site.acme.enabled();
    let (source, info, note) = match host.read(path) {
        Ok(Some(bytes)) => match pki::parse_bundle(&bytes) {
            Ok(bundle) => match bundle.leaf() {
                Some(leaf) if bundle.key_matches() => ("file", leaf.clone(), None),
                Some(leaf) => {
                    checks.push(Check::new(
                        "certificate",
                        Level::Fail,
                        format!(
                            "{path}: the private key does not belong to the certificate; run `edgeup apply`"
                        ),
                    ));
                    return Some(described("file", path, leaf.clone(), now));
                }
                None => return fail_cert(checks, format!("{path} holds no certificate")),
            },
            Err(e) => return fail_cert(checks, format!("{path} is not a certificate: {e:#}")),
        },
        Ok(None) => {
            return fail_cert(checks, format!("{path} does not exist: run `edgeup apply`"));
        }
        Err(e) => match &https.certificate {
            Some(served) => (
                "served",
                served.clone(),
                Some(format!(
                    "{path} is not readable ({}); judged as HAProxy serves it (run as root to check the file)",
                    root_cause(&e)
                )),
            ),
            None => {
                return fail_cert(
                    checks,
                    format!(
                        "{path} is not readable ({}), and HAProxy served no certificate; run as root",
                        root_cause(&e)
                    ),
                );
            }
        },
    };
    let mut check = checks::certificate(&info, source, now, &site.domain, acme);
    if let Some(note) = note {
        check.message = format!("{}; {note}", check.message);
    }
    checks.push(check);
    if source == "file"
        && let Some(served) = &https.certificate
        && *served != info
    {
        checks.push(Check::new(
            "certificate",
            Level::Warn,
            format!(
                "HAProxy serves another certificate ({}, expires {}) than {path} holds: \
                 reload it (systemctl reload haproxy)",
                served.subject,
                checks::utc(served.not_after)
            ),
        ));
    }
    Some(described(source, path, info, now))
}

fn fail_cert(checks: &mut Vec<Check>, message: String) -> Option<Certificate> {
    checks.push(Check::new("certificate", Level::Fail, message));
    None
}

fn described(source: &str, path: &str, info: CertInfo, now: i64) -> Certificate {
    Certificate {
        source: source.into(),
        path: path.into(),
        days_left: info.days_left(now),
        expired: info.expired(now),
        info,
    }
}

fn root_cause(e: &anyhow::Error) -> String {
    e.root_cause().to_string()
}

/// `systemctl show` of one unit (plus the next elapse for timers).
fn unit_state(host: &Host, unit: &str, timer: bool) -> UnitState {
    let mut props = vec!["LoadState", "ActiveState", "UnitFileState"];
    if timer {
        props.push("NextElapseUSecRealtime");
    }
    let mut state = UnitState {
        unit: unit.to_string(),
        ..UnitState::default()
    };
    let shown = match systemd::show(host, unit, &props) {
        Ok(shown) => shown,
        Err(e) => {
            state.active = format!("unknown ({e:#})");
            return state;
        }
    };
    for (key, value) in shown {
        match key.as_str() {
            "LoadState" => state.load = value,
            "ActiveState" => state.active = value,
            "UnitFileState" => state.enabled = value,
            "NextElapseUSecRealtime" => state.next_run = Some(value),
            _ => {}
        }
    }
    state
}

/// `HAProxy version 2.6.12-1+deb12u1 2023/12/16 - https://haproxy.org/` -> `2.6.12-1+deb12u1`.
fn haproxy_version(first_line: &str) -> String {
    let mut words = first_line.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("version")
            && let Some(v) = words.next()
        {
            return v.to_string();
        }
    }
    first_line.to_string()
}
