//! Test backends on 127.0.0.1, served by threads of the test process: an
//! app that echoes request heads and accepts websocket upgrades, and an
//! ACME HTTP-01 responder stand-in.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::Duration;

pub const ACME_TOKEN_BODY: &str = "tok.key-authorization-from-the-stand-in";

#[derive(Clone, Copy)]
pub enum Role {
    /// The app: echoes the request head; answers websocket upgrades with 101.
    App(&'static str),
    /// The ACME HTTP-01 responder stand-in.
    Acme,
}

/// A backend on 127.0.0.1 served by threads of this test process.
pub fn start_backend(role: Role) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a test backend");
    let port = listener.local_addr().expect("backend address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, role));
        }
    });
    port
}

/// Reads one request head (up to the blank line); empty for health checks.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn serve(mut stream: TcpStream, role: Role) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let head = read_head(&mut stream);
    if head.is_empty() {
        return;
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let response = match role {
        Role::Acme if path == "/.well-known/acme-challenge/tok" => ok(ACME_TOKEN_BODY),
        Role::Acme => {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
        Role::App(id)
            if header(&head, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) =>
        {
            let key = header(&head, "sec-websocket-key").unwrap_or("");
            let mut r = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\nX-Backend: {id}\r\n\r\n",
                websocket_accept(key)
            )
            .into_bytes();
            // One unmasked text frame through the tunnel, then close; with
            // `?ticks=N`, N more frames 200 ms apart first (a long-lived socket).
            let payload = b"hello over the tunnel";
            r.extend_from_slice(&[0x81, payload.len() as u8]);
            r.extend_from_slice(payload);
            let _ = stream.write_all(&r);
            let _ = stream.flush();
            for i in 0..ticks(&path, 0) {
                std::thread::sleep(Duration::from_millis(200));
                let frame = format!("tick {i}");
                let mut bytes = vec![0x81, frame.len() as u8];
                bytes.extend_from_slice(frame.as_bytes());
                if stream
                    .write_all(&bytes)
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
            }
            return;
        }
        Role::App(_) if path.starts_with("/stream") => {
            // A long-lived response: a line every 200 ms for ~6 s (or
            // `?ticks=N` lines), then "done".
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
            );
            for i in 0..ticks(&path, 30) {
                if stream.write_all(format!("tick {i}\n").as_bytes()).is_err() {
                    return;
                }
                let _ = stream.flush();
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = stream.write_all(b"done\n");
            return;
        }
        Role::App(id) => ok(&format!("backend: {id}\r\n{head}")),
    };
    let _ = stream.write_all(response.as_bytes());
}

/// `ticks=N` from the request path's query, else `default`.
fn ticks(path: &str, default: u32) -> u32 {
    path.split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("ticks=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

pub fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// RFC 6455: base64(SHA-1(key + GUID)).
pub fn websocket_accept(key: &str) -> String {
    base64(&sha1(
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    ))
}

/// SHA-1 (FIPS 180-4), enough for Sec-WebSocket-Accept.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
