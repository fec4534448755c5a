//! Before asking the CA: prove that http://DOMAIN/.well-known/acme-challenge/
//! reaches the responder the way the CA will reach it (DNS -> port 80 ->
//! HAProxy -> responder), and name the hop that fails. A failed validation
//! at Let's Encrypt counts against its limits; a failed preflight costs nothing.

use super::responder::Responder;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves `domain:port` the way the CA would (system resolver).
pub fn resolve(domain: &str, port: u16) -> Result<Vec<SocketAddr>> {
    match (domain, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                bail!("DNS: {domain} has no A/AAAA record; point it at this host's public address");
            }
            Ok(addrs)
        }
        Err(e) => bail!(
            "DNS: {domain} does not resolve ({e}); create an A (and/or AAAA) record pointing at \
             this host's public address"
        ),
    }
}

/// The whole preflight of `domain`: resolve it, then fetch a token served by
/// `responder` through every address, on `port` (where the CA connects).
pub fn run(domain: &str, port: u16, responder: &Responder) -> Result<()> {
    resolve(domain, port)
        .and_then(|addrs| check(domain, &addrs, responder))
        .with_context(|| format!("preflight for {domain} failed; the CA was not contacted"))
}

/// `run` on a responder of its own, stopped when it returns (certbot's
/// standalone server binds the same port next).
pub fn run_alone(domain: &str, port: u16, responder_addr: SocketAddr) -> Result<()> {
    let responder = Responder::start(responder_addr)
        .with_context(|| format!("preflight for {domain} failed; the CA was not contacted"))?;
    run(domain, port, &responder)
}

/// Serves a random token on `responder` and fetches it through each
/// address. The responder may serve other tokens meanwhile (a batch's
/// preflights and orders share it); this one is removed afterwards.
pub fn check(domain: &str, addrs: &[SocketAddr], responder: &Responder) -> Result<()> {
    // Unique per preflight: preflights running at once must not share a
    // token (one's removal would end the other's).
    let token = crate::random::hex(16, "the preflight's token")?;
    let expected = format!("edgeup-preflight.{token}");
    responder.add(&token, &expected);
    let fetched = addrs
        .iter()
        .try_for_each(|addr| fetch(domain, *addr, &token, &expected));
    responder.remove(&token);
    fetched
}

fn fetch(domain: &str, addr: SocketAddr, token: &str, expected: &str) -> Result<()> {
    let port = addr.port();
    let mut stream = match TcpStream::connect_timeout(&addr, TIMEOUT) {
        Ok(s) => s,
        Err(e) => bail!(
            "port {port} on {addr} ({domain}): {e}. The CA connects there: open port {port} in \
             the firewall / cloud security group, or forward it to this host{}",
            if addr.is_ipv6() {
                " (or remove the AAAA record: CAs prefer IPv6 when it exists)"
            } else {
                ""
            }
        ),
    };
    let request = format!(
        "GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: {domain}\r\nUser-Agent: edgeup-preflight\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        bail!("port {port} on {addr}: connection broke while sending ({e})");
    }
    // The answer is a short challenge: read at most 64 KiB within TIMEOUT
    // overall, whatever answers on port 80.
    let response = super::responder::read_bounded(
        &mut stream,
        64 * 1024,
        std::time::Instant::now() + TIMEOUT,
        |_| false,
    );
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap_or("(no answer)");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    if status == "200" && body == expected {
        return Ok(());
    }
    let hint = match status {
        "301" | "302" | "307" | "308" => {
            "it redirects the challenge path (the HTTPS redirect must exempt /.well-known/acme-challenge/)"
        }
        "503" => {
            "HAProxy routes the path but the responder did not answer (is HAProxy running edgeup's config?)"
        }
        "200" => "something else answered with different content (another web server on port 80?)",
        _ => {
            "it is not routing /.well-known/acme-challenge/ to edgeup's responder (is HAProxy running edgeup's config?)"
        }
    };
    bail!(
        "HTTP on {addr} ({domain}) answered {status} instead of the challenge: {hint}. \
         If DNS points elsewhere on purpose (split horizon), use --skip-preflight"
    )
}
