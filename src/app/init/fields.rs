//! One answer at a time, judged by the site validation itself: a candidate
//! site with the answer in place is validated whole (beside the file's other
//! sites, whose names it may not take), and only the problems of the asked
//! field are kept. So a prompt refuses exactly what the site file would
//! refuse, with the same words.

use crate::site::{self, Problem, RawSite};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long the reachability check waits for each backend address.
pub const REACH_TIMEOUT: Duration = Duration::from_millis(800);

/// `site` with one change: the candidate an answer is validated in.
pub(super) fn with(site: &RawSite, change: impl FnOnce(&mut RawSite)) -> RawSite {
    let mut candidate = site.clone();
    change(&mut candidate);
    candidate
}

/// The problems `field` has in `candidate`, joined; Ok when it has none.
/// `field` matches itself, its list entries (`backends[1]`) and its
/// children (`acme.eab.kid` for `acme.eab`).
///
/// `relaxed` judges the field as if ACME were off: the first time domain and
/// email are asked, the certificate source is not chosen yet, and a LAN name
/// (`chat.lan`) must not be refused for Let's Encrypt's sake. The whole site
/// is validated again at the end of the interview.
pub fn check(candidate: &RawSite, field: &str, relaxed: bool) -> Result<(), String> {
    check_beside(candidate, &[], field, relaxed)
}

/// `check` for a site that joins `others` in one file.
pub fn check_beside(
    candidate: &RawSite,
    others: &[RawSite],
    field: &str,
    relaxed: bool,
) -> Result<(), String> {
    let mut site = candidate.clone();
    if relaxed {
        site.acme.directory = "off".into();
        site.hsts = None;
    }
    let problems: Vec<String> = problems(&site, others)
        .into_iter()
        .filter(|p| belongs(&p.field, field))
        .map(|p| p.to_string())
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The problems of `site` beside `others`: its own, and the names it shares
/// with them (the whole-configuration check, kept to `site`'s side and
/// named as in a one-site file: `domain`, `aliases[0]`).
pub fn problems(site: &RawSite, others: &[RawSite]) -> Vec<Problem> {
    let mut problems = site::validate(site);
    if others.is_empty() {
        return problems;
    }
    let sites: Vec<RawSite> = others.iter().chain([site]).cloned().collect();
    // Each shared name is reported on the later site: `site`, put last.
    let own = format!("sites[{}].", others.len());
    problems.extend(
        site::name_collisions(&sites, true)
            .into_iter()
            .filter_map(|mut p| {
                p.field = p.field.strip_prefix(&own)?.to_string();
                Some(p)
            }),
    );
    problems
}

/// The warnings `site` brings to `others` (e.g. a backend another site
/// already uses).
/// Only once all of them are valid (the warnings compare parsed addresses).
pub fn warnings_beside(site: &RawSite, others: &[RawSite]) -> Vec<String> {
    let warnings = |sites: &[RawSite]| {
        site::validate_config(sites, None)
            .map(|config| site::config_warnings(&config))
            .unwrap_or_default()
    };
    let before = warnings(others);
    let all: Vec<RawSite> = others.iter().chain([site]).cloned().collect();
    warnings(&all)
        .into_iter()
        .filter(|w| !before.contains(w))
        .collect()
}

/// Whether a problem's field is `field` or inside it.
pub fn belongs(problem_field: &str, field: &str) -> bool {
    problem_field == field
        || problem_field
            .strip_prefix(field)
            .is_some_and(|rest| rest.starts_with('[') || rest.starts_with('.'))
}

/// `127.0.0.1:3000, 127.0.0.1:3001` (commas and/or spaces) as a list.
pub fn split_list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `/owui`, `owui/` or `/owui/` as the `path:/owui/` routing value.
pub fn path_routing(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_start_matches("path:");
    let mut value = String::from("path:");
    if !trimmed.starts_with('/') {
        value.push('/');
    }
    value.push_str(trimmed);
    if !trimmed.ends_with('/') {
        value.push('/');
    }
    value
}

/// A warning when nothing accepts connections at `backend` yet (None when
/// something does). Never an error: the app may be started after HAProxy.
pub fn reach_warning(backend: &str) -> Option<String> {
    let addrs: Vec<SocketAddr> = match backend.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            return Some(format!(
                "{backend}: the name does not resolve here ({e}); HAProxy will keep trying, but check it"
            ));
        }
    };
    if addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, REACH_TIMEOUT).is_ok())
    {
        return None;
    }
    Some(format!(
        "nothing answers on {backend} yet: HAProxy will answer 503 until the app listens there \
         (e.g. start Open WebUI with `docker run -d -p 127.0.0.1:{}:8080 ... ghcr.io/open-webui/open-webui:main`)",
        backend.rsplit_once(':').map_or("3000", |(_, port)| port)
    ))
}

/// The first of the usual Open WebUI addresses that accepts connections.
pub fn listening_app() -> Option<String> {
    ["127.0.0.1:3000", "127.0.0.1:8080"]
        .into_iter()
        .find(|a| {
            a.parse::<SocketAddr>()
                .is_ok_and(|addr| TcpStream::connect_timeout(&addr, REACH_TIMEOUT).is_ok())
        })
        .map(str::to_string)
}
