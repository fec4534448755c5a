//! The HTTP-01 responder: a tiny HTTP server on a loopback address (never a
//! public one) that answers /.well-known/acme-challenge/TOKEN with the key
//! authorization, only while an order (or a preflight) is in flight.
//! HAProxy's `acme` backend forwards the challenge path here.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const PREFIX: &str = "/.well-known/acme-challenge/";

pub struct Responder {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Binds `addr` (validated to be loopback by the site checks).
    pub fn start(addr: &str) -> Result<Responder> {
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
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let tokens = Arc::clone(&tokens);
                std::thread::spawn(move || answer(stream, &tokens));
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
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
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
