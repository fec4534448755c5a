//! The HTTP-01 responder: a tiny HTTP server on a loopback address (never a
//! public one) that answers /.well-known/acme-challenge/TOKEN with the key
//! authorization, only while an order (or a preflight) is in flight.
//! HAProxy's `acme` backend forwards the challenge path here. One responder
//! serves every token of a batch of certificates (acme/batch.rs) at once.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const PREFIX: &str = "/.well-known/acme-challenge/";

/// Refuses a responder port that an unprivileged process could bind on this
/// host (`net.ipv4.ip_unprivileged_port_start`, 1024 unless lowered): such a
/// process could answer the CA's challenges for the sites, or block them.
pub fn require_privileged_port(host: &crate::host::Host, addr: SocketAddr) -> Result<()> {
    let port = addr.port();
    let start: u32 =
        std::fs::read_to_string(host.path("/proc/sys/net/ipv4/ip_unprivileged_port_start"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
    if u32::from(port) >= start {
        anyhow::bail!(
            "unprivileged processes may bind port {port} on this host \
             (net.ipv4.ip_unprivileged_port_start = {start}), so a local user could answer the CA's \
             challenges on the responder's behalf; nothing was asked of the CA. Raise the sysctl \
             above {port} (the default is 1024) or move listen.acme_responder below {start}"
        );
    }
    Ok(())
}

pub struct Responder {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Binds `addr` (validated to be loopback by the site checks).
    pub fn start(addr: SocketAddr) -> Result<Responder> {
        let listener = TcpListener::bind(addr).with_context(|| {
            format!(
                "cannot listen on {addr} for ACME HTTP-01 challenges (is certbot or another \
                 edgeup run using it?)"
            )
        })?;
        let local = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let tokens = Arc::clone(&tokens);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(listener, tokens, stop))
        };
        Ok(Responder {
            tokens,
            stop,
            addr: local,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn add(&self, token: &str, key_authorization: &str) {
        if let Ok(mut map) = self.tokens.lock() {
            map.insert(token.to_string(), key_authorization.to_string());
        }
    }

    /// Stops answering for `token` (its order or preflight is over).
    pub fn remove(&self, token: &str) {
        if let Ok(mut map) = self.tokens.lock() {
            map.remove(token);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Connections answered at once; more are closed unanswered (any local
/// process can connect). A batch has up to `batch::MAX_IN_FLIGHT` (8) orders
/// validating at once, each name of each from several of the CA's vantage
/// points (Let's Encrypt validates from more than one), or 8 preflights:
/// 64 leaves room for that and stays a few dozen short-lived threads.
const MAX_CONNECTIONS: usize = 64;
/// How long one connection may take to send its request head.
const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// Reads from `stream` until `done(bytes so far)`, EOF, `limit` bytes or
/// `deadline`, whichever comes first (a slow or endless peer cannot hold a
/// reader longer than the deadline nor make it buffer more than the limit).
pub(crate) fn read_bounded(
    stream: &mut TcpStream,
    limit: usize,
    deadline: std::time::Instant,
    done: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !done(&buf) && buf.len() < limit {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    buf.truncate(limit);
    buf
}

fn serve(
    listener: TcpListener,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
) {
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::SeqCst);
                    drop(stream);
                    continue;
                }
                let tokens = Arc::clone(&tokens);
                let open = Arc::clone(&open);
                std::thread::spawn(move || {
                    answer(stream, &tokens);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn answer(mut stream: TcpStream, tokens: &Mutex<HashMap<String, String>>) {
    let _ = stream.set_nonblocking(false);
    let deadline = std::time::Instant::now() + REQUEST_DEADLINE;
    let buf = read_bounded(&mut stream, MAX_HEAD, deadline, |b| {
        b.windows(4).any(|w| w == b"\r\n\r\n")
    });
    let head = String::from_utf8_lossy(&buf);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let body = path
        .strip_prefix(PREFIX)
        .and_then(|token| tokens.lock().ok()?.get(token).cloned());
    let response = match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = stream.write_all(response.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::require_privileged_port;
    use crate::host::{Host, scripted::ScriptedRunner};

    fn addr(text: &str) -> std::net::SocketAddr {
        text.parse().expect("a socket address")
    }

    fn host_with_unprivileged_start(value: Option<&str>) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(value) = value {
            let sys = dir.path().join("proc/sys/net/ipv4");
            std::fs::create_dir_all(&sys).expect("mkdir");
            std::fs::write(sys.join("ip_unprivileged_port_start"), value).expect("write");
        }
        let root = dir.path().to_path_buf();
        let host = Host::new(root.clone(), Box::new(ScriptedRunner::new(root)));
        (dir, host)
    }

    #[test]
    fn only_ports_no_unprivileged_process_can_bind_are_accepted() {
        let (_d, default) = host_with_unprivileged_start(Some("1024\n"));
        assert!(require_privileged_port(&default, addr("127.0.0.1:888")).is_ok());
        let err = require_privileged_port(&default, addr("127.0.0.1:8688"))
            .expect_err("8688 is unprivileged");
        assert!(format!("{err:#}").contains("ip_unprivileged_port_start = 1024"));
        // Containers often lower the sysctl to 0: then no port is safe.
        let (_d, lowered) = host_with_unprivileged_start(Some("0"));
        assert!(require_privileged_port(&lowered, addr("127.0.0.1:888")).is_err());
        // Unreadable: the kernel's default (1024) is assumed.
        let (_d, unknown) = host_with_unprivileged_start(None);
        assert!(require_privileged_port(&unknown, addr("127.0.0.1:888")).is_ok());
        assert!(require_privileged_port(&unknown, addr("[::1]:80")).is_ok());
    }
}
