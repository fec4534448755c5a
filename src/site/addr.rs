//! Addresses of the site model (`HostPort` for backends, `Bind` for
//! listeners) and their parsing, shared by the backend, listen and
//! directory checks. Pure string work: nothing is resolved or bound.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a value was refused: `(reason, fix)`.
pub type Refusal = (String, String);

pub fn refuse(reason: impl Into<String>, fix: impl Into<String>) -> Refusal {
    (reason.into(), fix.into())
}

/// A host to connect to: an IP address or a (lowercased) DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrIp {
    Ip(IpAddr),
    Name(String),
}

impl NameOrIp {
    /// Could a connection to this host land on a socket bound to `bind`?
    /// Only what is knowable without I/O: the same IP, a loopback address
    /// against the any-address of its family, or `localhost` against a
    /// loopback or any-address.
    pub fn reaches(&self, bind: IpAddr) -> bool {
        match self {
            NameOrIp::Ip(ip) => {
                *ip == bind || (bind.is_unspecified() && ip.is_loopback() && same_family(*ip, bind))
            }
            NameOrIp::Name(name) => {
                is_localhost_name(name) && (bind.is_unspecified() || bind.is_loopback())
            }
        }
    }
}

/// A parsed `HOST:PORT` backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: NameOrIp,
    pub port: u16,
}

/// A parsed listen address. `:PORT` (`every`) is stored as `0.0.0.0`: every
/// IPv4 address, and IPv6 too where the host has it and no `[IPv6]:PORT`
/// bind is listed for the same port (see `render::haproxy_binds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind {
    pub ip: IpAddr,
    pub port: u16,
    /// Written `:PORT`.
    pub every: bool,
}

impl Bind {
    /// Where to reach this listen address from this host: `:443` and
    /// `0.0.0.0:443` on 127.0.0.1, `[::]:443` on ::1, a specific address as is.
    pub fn loopback(&self) -> std::net::SocketAddr {
        let ip = match self.ip {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            other => other,
        };
        std::net::SocketAddr::new(ip, self.port)
    }

    /// Two binds collide when they share a port and family and one of them
    /// is the any-address or both are the same address. `:80` and `[::]:80`
    /// do not collide (the usual dual-stack pair).
    pub fn overlaps(&self, other: &Bind) -> bool {
        self.port == other.port
            && same_family(self.ip, other.ip)
            && (self.ip == other.ip || self.ip.is_unspecified() || other.ip.is_unspecified())
    }
}

impl fmt::Display for NameOrIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameOrIp::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            NameOrIp::Ip(ip) => write!(f, "{ip}"),
            NameOrIp::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for HostPort {
    /// `127.0.0.1:3000`, `[::1]:3000`, `open-webui:8080`: as HAProxy and the site file spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Bind {
    /// `:443`, `127.0.0.2:443`, `[::]:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            _ if self.every => write!(f, ":{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
            ip => write!(f, "{ip}:{}", self.port),
        }
    }
}

impl std::str::FromStr for HostPort {
    /// `"reason; fix"`.
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_backend(s).map_err(|(reason, fix)| format!("{s:?} {reason}; {fix}"))
    }
}

impl std::str::FromStr for Bind {
    /// `"reason; fix"`.
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_bind(s, ":443").map_err(|(reason, fix)| format!("{s:?} {reason}; {fix}"))
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

pub fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost")
        || name.eq_ignore_ascii_case("localhost.localdomain")
        || name.to_ascii_lowercase().ends_with(".localhost")
}

/// Text made only of digits and dots: meant as an IPv4 address.
pub fn looks_like_ipv4(s: &str) -> bool {
    !s.is_empty() && s.contains('.') && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A DNS host name as resolvers accept it: labels of letters, digits,
/// hyphens and underscores (container and service names use them),
/// 1..63 characters, no leading/trailing hyphen, 253 characters at most.
/// Single labels (`localhost`, `open-webui`) are fine for a backend.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Splits `HOST:PORT` or `[IPv6]:PORT` into `(host, bracketed, port)`.
fn split_host_port<'a>(s: &'a str, example: &str) -> Result<(&'a str, bool, &'a str), Refusal> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(refuse(
                "has an unclosed [",
                "write IPv6 addresses as [ADDRESS]:PORT, e.g. [::1]:8080",
            ));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(refuse(
                "has no :PORT after the IPv6 address",
                format!("add the port, e.g. [{host}]:PORT"),
            ));
        };
        return Ok((host, true, port));
    }
    match s.rsplit_once(':') {
        None => Err(refuse(
            "has no port",
            format!("add the port, e.g. {example}"),
        )),
        Some((host, port)) if host.contains(':') => Err(refuse(
            "is an IPv6 address without brackets",
            match host.parse::<Ipv6Addr>() {
                Ok(_) => format!("write it as [{host}]:{port}"),
                Err(_) => "write IPv6 addresses as [ADDRESS]:PORT, e.g. [::1]:3000".to_string(),
            },
        )),
        Some((host, port)) => Ok((host, false, port)),
    }
}

pub fn parse_port(p: &str, example: &str) -> Result<u16, Refusal> {
    if p.is_empty() {
        return Err(refuse(
            "has nothing after the colon",
            format!("add the port, e.g. {example}"),
        ));
    }
    if !p.chars().all(|c| c.is_ascii_digit()) {
        return Err(refuse(
            format!("has a port that is not a number ({p:?})"),
            format!("write the port as digits, e.g. {example}"),
        ));
    }
    match p.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(refuse(
            format!("has port {p}, outside 1-65535"),
            format!("use a port from 1 to 65535, e.g. {example}"),
        )),
    }
}

/// Refusals common to every address field: empty, whitespace, scheme, path.
fn common(s: &str, example: &str) -> Result<(), Refusal> {
    if s.is_empty() {
        return Err(refuse(
            "is empty",
            format!("write an address such as {example}"),
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(refuse(
            "contains whitespace",
            format!("remove the spaces, e.g. {example}"),
        ));
    }
    Ok(())
}

/// A backend `HOST:PORT`: IPv4, `[IPv6]` or a host name, port 1..65535.
pub fn parse_backend(s: &str) -> Result<HostPort, Refusal> {
    const EXAMPLE: &str = "127.0.0.1:3000";
    common(s, EXAMPLE)?;
    if let Some((scheme, rest)) = s.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let has_port = split_host_port(authority, EXAMPLE).is_ok();
        let fix = if scheme.eq_ignore_ascii_case("https") {
            "drop the scheme and give the app's plain-HTTP HOST:PORT; HAProxy speaks plain HTTP to the app".to_string()
        } else if has_port {
            format!("drop the scheme and write {authority}")
        } else {
            format!("drop the scheme and write {authority}:80")
        };
        return Err(refuse("includes a URL scheme", fix));
    }
    if let Some((authority, _)) = s.split_once('/') {
        return Err(refuse(
            "includes a path",
            format!(
                "drop the path and write {authority}; HAProxy forwards request paths unchanged"
            ),
        ));
    }
    let (host, bracketed, port) = split_host_port(s, EXAMPLE)?;
    let host = if bracketed {
        match host.parse::<Ipv6Addr>() {
            Ok(ip) => NameOrIp::Ip(IpAddr::V6(ip)),
            Err(_) => {
                return Err(refuse(
                    format!("has [{host}], which is not an IPv6 address"),
                    "put only IPv6 addresses in brackets, e.g. [::1]:3000",
                ));
            }
        }
    } else if host.is_empty() {
        return Err(refuse(
            "has no host before the port",
            format!("name the host, e.g. 127.0.0.1{s} for an app on this machine"),
        ));
    } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
        NameOrIp::Ip(IpAddr::V4(ip))
    } else if looks_like_ipv4(host) {
        return Err(refuse(
            format!("has {host}, which is not a valid IPv4 address"),
            "use four numbers from 0 to 255, e.g. 127.0.0.1:3000",
        ));
    } else if is_hostname(host) {
        NameOrIp::Name(host.to_ascii_lowercase())
    } else {
        return Err(refuse(
            format!("has {host:?}, which is not a valid host name"),
            "use an IP address or a host name of letters, digits, hyphens and dots, e.g. open-webui:8080",
        ));
    };
    let port = parse_port(port, EXAMPLE)?;
    if let NameOrIp::Ip(ip) = host
        && ip.is_unspecified()
    {
        let lo = if ip.is_ipv4() { "127.0.0.1" } else { "[::1]" };
        return Err(refuse(
            "is the any-address, which is for listening, not for connecting",
            format!("use {lo}:{port} for an app on this machine"),
        ));
    }
    Ok(HostPort { host, port })
}

/// A listen address: `:PORT`, `IPv4:PORT` or `[IPv6]:PORT`.
pub fn parse_bind(s: &str, example: &str) -> Result<Bind, Refusal> {
    common(s, example)?;
    if s.contains("://") || s.contains('/') {
        return Err(refuse(
            "is not a listen address (no scheme or path here)",
            format!("write :PORT, IPv4:PORT or [IPv6]:PORT, e.g. {example}"),
        ));
    }
    if !s.contains(':') {
        let fix = if s.chars().all(|c| c.is_ascii_digit()) {
            format!("write \":{s}\" (quoted in YAML) to listen on every IPv4 address")
        } else {
            format!("add the port, e.g. {example}")
        };
        return Err(refuse("has no :PORT", fix));
    }
    let (host, bracketed, port_text) = split_host_port(s, example)?;
    let ip = if bracketed {
        match host.parse::<Ipv6Addr>() {
            Ok(ip) => IpAddr::V6(ip),
            Err(_) => {
                return Err(refuse(
                    format!("has [{host}], which is not an IPv6 address"),
                    "put only IPv6 addresses in brackets, e.g. [::]:443",
                ));
            }
        }
    } else if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else if host == "*" {
        return Err(refuse(
            "uses * for the address",
            format!("write \":{port_text}\" to listen on every IPv4 address"),
        ));
    } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
        IpAddr::V4(ip)
    } else if looks_like_ipv4(host) {
        return Err(refuse(
            format!("has {host}, which is not a valid IPv4 address"),
            format!("use four numbers from 0 to 255, e.g. {example}"),
        ));
    } else {
        return Err(refuse(
            format!("binds to the name {host:?} instead of an address"),
            format!("use an IP address, or \":{port_text}\" for every IPv4 address"),
        ));
    };
    let port = parse_port(port_text, example)?;
    Ok(Bind {
        ip,
        port,
        every: !bracketed && host.is_empty(),
    })
}

/// An `https://` ACME directory URL with a host (and optional port).
pub fn check_https_url(url: &str) -> Result<(), Refusal> {
    const EXAMPLE: &str = "https://acme.example.org/directory";
    if url.chars().any(char::is_whitespace) {
        return Err(refuse(
            "contains whitespace",
            "remove the spaces from the URL",
        ));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        if let Some(rest) = url.strip_prefix("http://") {
            return Err(refuse(
                "uses plain http://, but ACME (RFC 8555) requires HTTPS",
                format!("use https://{rest}"),
            ));
        }
        return Err(refuse(
            "is not an https:// URL",
            format!("give the CA's directory URL, e.g. {EXAMPLE}"),
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(refuse(
            "has user credentials in the URL",
            "remove the user@ part; use acme.eab for CA credentials",
        ));
    }
    if authority.is_empty() {
        return Err(refuse(
            "has no host",
            format!("give the CA's directory URL, e.g. {EXAMPLE}"),
        ));
    }
    let (host, bracketed, port) = if authority.starts_with('[') || authority.contains(':') {
        let (h, b, p) = split_host_port(authority, "https://127.0.0.1:14000/dir")?;
        (h, b, Some(p))
    } else {
        (authority, false, None)
    };
    let host_ok = if bracketed {
        host.parse::<Ipv6Addr>().is_ok()
    } else if looks_like_ipv4(host) {
        host.parse::<Ipv4Addr>().is_ok()
    } else {
        is_hostname(host)
    };
    if !host_ok {
        return Err(refuse(
            format!("has an invalid host {host:?}"),
            format!("give the CA's directory URL, e.g. {EXAMPLE}"),
        ));
    }
    if let Some(port) = port {
        parse_port(port, "https://127.0.0.1:14000/dir")?;
    }
    Ok(())
}

/// The host of an `https://` URL, lowercased (for recognising Let's Encrypt's own URLs).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::parse_bind;

    #[test]
    fn binds_print_as_written_and_are_reached_on_loopback() {
        let cases = [
            (":443", "127.0.0.1:443"),
            ("0.0.0.0:8443", "127.0.0.1:8443"),
            ("[::]:443", "[::1]:443"),
            ("192.0.2.7:443", "192.0.2.7:443"),
            ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ];
        for (listen, reached) in cases {
            let bind = parse_bind(listen, ":443").expect("valid");
            assert_eq!(bind.to_string(), listen);
            assert_eq!(bind.loopback().to_string(), reached, "{listen}");
        }
    }
}
