//! After a successful `apply`: where the site is, and the Open WebUI
//! settings that make it work behind the proxy (absolute URLs, CORS, secure
//! cookies, trusting the proxy's forwarded headers).

use crate::cli::Output;
use crate::engine::Recap;
use crate::host::Host;
use crate::report::Verbosity;
use crate::site::{Config, Site, addr::HostPort};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

/// Prints the summary on human output (not with --json or -q, not after a
/// failure): the Open WebUI settings for a one-site host, one line per site
/// otherwise.
pub fn after_apply(host: &Host, config: &Config, recap: &Recap, out: &Output) {
    if out.json || out.verbosity == Verbosity::Quiet || recap.failed > 0 {
        return;
    }
    crate::outln!();
    if let [site] = config.sites.as_slice() {
        let docker = docker_present(host);
        for line in lines(site, &proxy_addresses(&site.backends), docker) {
            crate::outln!("{line}");
        }
        return;
    }
    for site in &config.sites {
        crate::outln!("{}", headline(site));
    }
}

/// `Your site: URL/  (where its certificate comes from)`.
fn headline(site: &Site) -> String {
    let certificate = if site.acme.enabled() {
        "certificate from the CA, renewed automatically"
    } else {
        "self-signed placeholder: browsers will warn (acme.directory is off)"
    };
    format!("Your site: {}  ({certificate})", site.url())
}

/// The summary's lines (pure: `proxy` is what the app sees as the client
/// address of HAProxy's connections; `docker` whether Docker is installed).
pub fn lines(site: &Site, proxy: &[String], docker: bool) -> Vec<String> {
    let url = site.url();
    let mut out = vec![
        headline(site),
        "Set these in Open WebUI's environment, then restart it:".to_string(),
        format!("  WEBUI_URL={}", url.trim_end_matches('/')),
        format!("  CORS_ALLOW_ORIGIN={}", site.https_origin()),
        "  WEBUI_SESSION_COOKIE_SECURE=true".to_string(),
        format!(
            "  FORWARDED_ALLOW_IPS={}",
            if proxy.is_empty() {
                "127.0.0.1".to_string()
            } else {
                proxy.join(",")
            }
        ),
    ];
    if docker {
        out.push(
            "Open WebUI in Docker: publish it on loopback only (-p 127.0.0.1:3000:8080, not \
             -p 3000:8080). Docker-published ports bypass ufw and firewalld, so the app would be \
             reachable from outside without HTTPS. Requests from HAProxy then arrive from Docker's \
             bridge gateway (usually 172.17.0.1; see `docker network inspect bridge`): put that \
             address in FORWARDED_ALLOW_IPS instead."
                .to_string(),
        );
    }
    if site.path_prefix().is_some() {
        out.push(
            "routing is path-based: Open WebUI has no sub-path support and will not work under \
             a prefix; use routing: subdomain for it."
                .to_string(),
        );
    }
    out.push("Check it any time: edgeup status".to_string());
    out
}

/// The source address HAProxy uses towards each backend, as the app sees
/// it: 127.0.0.1 for loopback backends, else this host's address on the
/// route to the backend (a UDP "connect" picks it; no packet is sent).
pub fn proxy_addresses(backends: &[HostPort]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for backend in backends {
        let Some(addr) = resolve(&backend.to_string()) else {
            continue;
        };
        let source = if addr.ip().is_loopback() {
            Some(addr.ip())
        } else {
            local_address_towards(addr)
        };
        if let Some(ip) = source.map(|ip| ip.to_string())
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

fn resolve(backend: &str) -> Option<SocketAddr> {
    backend.to_socket_addrs().ok()?.next()
}

fn local_address_towards(addr: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(addr).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// Docker is installed (its CLI or its daemon's socket).
pub fn docker_present(host: &Host) -> bool {
    host.has_program("docker")
        || host.path("/run/docker.sock").exists()
        || host.path("/var/run/docker.sock").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(yaml: &str) -> Site {
        let yaml = format!("email: ops@widgets.dev\n{yaml}");
        let raw: crate::site::RawSite =
            serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
        crate::site::parse_site(&raw).unwrap_or_else(|p| panic!("{p:?}"))
    }

    fn backends(list: &[&str]) -> Vec<HostPort> {
        list.iter()
            .map(|b| crate::site::addr::parse_backend(b).expect("backend"))
            .collect()
    }

    #[test]
    fn names_the_url_and_every_open_webui_setting() {
        let s = site("domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\n");
        let text = lines(&s, &proxy_addresses(&s.backends), false).join("\n");
        for expected in [
            "Your site: https://chat.example.com/",
            "WEBUI_URL=https://chat.example.com\n",
            "CORS_ALLOW_ORIGIN=https://chat.example.com\n",
            "WEBUI_SESSION_COOKIE_SECURE=true",
            "FORWARDED_ALLOW_IPS=127.0.0.1\n",
            "edgeup status",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(!text.contains("Docker"), "{text}");
        assert!(text.contains("renewed automatically"), "{text}");
    }

    #[test]
    fn docker_note_only_with_docker_and_placeholder_is_called_so() {
        let s = site(
            "domain: chat.example.com\nbackends: [\"localhost:3000\"]\nacme: {directory: \"off\"}\n",
        );
        let text = lines(&s, &proxy_addresses(&s.backends), true).join("\n");
        assert!(text.contains("-p 127.0.0.1:3000:8080"), "{text}");
        assert!(text.contains("bypass ufw"), "{text}");
        assert!(text.contains("self-signed placeholder"), "{text}");
    }

    #[test]
    fn path_routing_puts_the_prefix_in_webui_url_and_warns() {
        let s = site(
            "domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nrouting: \"path:/owui/\"\n",
        );
        let text = lines(&s, &[], false).join("\n");
        assert!(
            text.contains("WEBUI_URL=https://chat.example.com/owui\n"),
            "{text}"
        );
        assert!(
            text.contains("CORS_ALLOW_ORIGIN=https://chat.example.com\n"),
            "{text}"
        );
        assert!(text.contains("no sub-path support"), "{text}");
    }

    #[test]
    fn an_https_port_other_than_443_is_in_every_url() {
        let s = site(
            "domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nlisten: {https: [\":8443\"]}\n",
        );
        let text = lines(&s, &[], false).join("\n");
        for expected in [
            "Your site: https://chat.example.com:8443/",
            "WEBUI_URL=https://chat.example.com:8443\n",
            "CORS_ALLOW_ORIGIN=https://chat.example.com:8443\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn proxy_address_of_loopback_backends_is_loopback() {
        assert_eq!(
            proxy_addresses(&backends(&["127.0.0.1:3000", "127.0.0.1:3001"])),
            ["127.0.0.1"]
        );
        assert_eq!(proxy_addresses(&backends(&["[::1]:3000"])), ["::1"]);
    }
}
