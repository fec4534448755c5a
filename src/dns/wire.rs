//! One DNS exchange over blocking std sockets: UDP first, TCP when the
//! answer comes back truncated, short timeouts and a bounded number of
//! tries. Messages are hickory-proto's; nothing here trusts what a server
//! sends beyond hickory's decoder (lengths are checked, never sliced blind).

use anyhow::{Context, Result, anyhow, bail};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// How long one UDP try waits for its answer.
pub const UDP_TIMEOUT: Duration = Duration::from_millis(1500);
/// UDP tries before giving up on a server (each a fresh send of the same bytes).
pub const UDP_TRIES: usize = 2;
/// A TCP exchange, connect to last byte.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest answer accepted over UDP (EDNS is not advertised, so a
/// server sends at most 512; a bigger buffer costs nothing).
const UDP_BUFFER: usize = 4096;

/// A DNS name as edgeup writes it (`_acme-challenge.example.test`) as
/// hickory's absolute name.
pub fn name(text: &str) -> Result<Name> {
    let fqdn = format!("{}.", text.trim_end_matches('.'));
    Name::from_ascii(&fqdn).map_err(|e| anyhow!("{text:?} is not a valid DNS name: {e}"))
}

/// A name from a server's answer, the way edgeup writes names: lowercase,
/// without the trailing dot.
pub fn text(name: &Name) -> String {
    name.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_string()
}

/// A query for `name`/`rtype`; `recursion` sets RD (off for the questions to
/// authoritative servers, whose answers must be their own data).
pub fn query(name: &Name, rtype: RecordType, recursion: bool) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = recursion;
    message.add_query(Query::query(name.clone(), rtype));
    message
}

/// Sends `request` (already encoded as `bytes`) to `server` and returns the
/// raw answer: a message with the same ID, marked as a response, from that
/// server. Over UDP, then TCP if the UDP answer was truncated.
pub fn exchange(server: SocketAddr, id: u16, bytes: &[u8]) -> Result<Vec<u8>> {
    let answer = exchange_udp(server, id, bytes)?;
    if is_truncated(&answer) {
        return exchange_tcp(server, id, bytes);
    }
    Ok(answer)
}

/// `exchange` of a message, decoded.
pub fn ask(server: SocketAddr, request: &Message) -> Result<Message> {
    let bytes = request.to_vec().context("encoding a DNS query")?;
    let answer = exchange(server, request.metadata.id, &bytes)?;
    Message::from_vec(&answer).map_err(|e| anyhow!("{server} sent a malformed answer: {e}"))
}

fn is_truncated(answer: &[u8]) -> bool {
    // The TC bit: byte 2, bit 1 (the length was checked by `matches`).
    answer.get(2).is_some_and(|b| b & 0x02 != 0)
}

/// Whether `answer` is a response to query `id` (checked on the raw header,
/// before decoding, so strays are dropped cheaply).
fn matches(answer: &[u8], id: u16) -> bool {
    match (answer.first(), answer.get(1), answer.get(2)) {
        (Some(hi), Some(lo), Some(flags)) if answer.len() >= 12 => {
            u16::from_be_bytes([*hi, *lo]) == id && flags & 0x80 != 0
        }
        _ => false,
    }
}

fn exchange_udp(server: SocketAddr, id: u16, bytes: &[u8]) -> Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).context("opening a UDP socket")?;
    // Connected: the kernel drops datagrams from any other address.
    socket
        .connect(server)
        .with_context(|| format!("no route to {server}"))?;
    let mut buf = vec![0u8; UDP_BUFFER];
    let mut last_error = None;
    for _ in 0..UDP_TRIES {
        socket
            .send(bytes)
            .with_context(|| format!("sending to {server}"))?;
        let deadline = Instant::now() + UDP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last_error = Some(format!("no answer from {server} (UDP, {UDP_TIMEOUT:?})"));
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let answer = buf.get(..n).unwrap_or_default();
                    if matches(answer, id) {
                        return Ok(answer.to_vec());
                    }
                    // A stray or spoofed datagram: keep waiting.
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    last_error = Some(format!("no answer from {server} (UDP, {UDP_TIMEOUT:?})"));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    bail!(
                        "{server} refused the connection (nothing listens on UDP port {})",
                        server.port()
                    );
                }
                Err(e) => return Err(e).with_context(|| format!("reading from {server}")),
            }
        }
    }
    bail!(
        "{}",
        last_error.unwrap_or_else(|| format!("no answer from {server}"))
    )
}

fn exchange_tcp(server: SocketAddr, id: u16, bytes: &[u8]) -> Result<Vec<u8>> {
    let deadline = Instant::now() + TCP_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&server, TCP_TIMEOUT)
        .with_context(|| format!("connecting to {server} over TCP"))?;
    let len = u16::try_from(bytes.len()).context("a DNS message over 64 KiB")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.set_write_timeout(Some(TCP_TIMEOUT))?;
    stream
        .write_all(&framed)
        .with_context(|| format!("sending to {server} over TCP"))?;
    let mut read_exact = |buf: &mut [u8]| -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no answer from {server} (TCP, {TCP_TIMEOUT:?})");
        }
        stream.set_read_timeout(Some(left))?;
        stream
            .read_exact(buf)
            .with_context(|| format!("reading from {server} over TCP"))
    };
    let mut len = [0u8; 2];
    read_exact(&mut len)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_exact(&mut answer)?;
    if !matches(&answer, id) {
        bail!("{server} answered over TCP with a message that is not the answer to the query");
    }
    Ok(answer)
}

/// A decoded answer must be a response to what was asked.
pub fn check_response(server: SocketAddr, answer: &Message) -> Result<()> {
    if answer.metadata.message_type != MessageType::Response {
        bail!("{server} sent a query instead of an answer");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_lowercase_without_the_dot() -> Result<()> {
        assert_eq!(
            text(&name("_acme-challenge.Example.TEST")?),
            "_acme-challenge.example.test"
        );
        assert_eq!(text(&name("example.test.")?), "example.test");
        assert!(name("a..b").is_err());
        Ok(())
    }

    #[test]
    fn short_or_foreign_datagrams_do_not_match() {
        assert!(!matches(&[], 1));
        assert!(!matches(&[0, 1, 0x80], 1));
        let mut header = [0u8; 12];
        header[1] = 7;
        assert!(!matches(&header, 7), "a query, not a response");
        header[2] = 0x80;
        assert!(matches(&header, 7));
        assert!(!matches(&header, 8));
        assert!(!is_truncated(&header));
        header[2] |= 0x02;
        assert!(is_truncated(&header));
    }
}
