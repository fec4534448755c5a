//! Alerts delivered for real, on loopback: a webhook server in the test (a
//! std TcpListener on 127.0.0.1 that parses each request, keeps its body and
//! answers 200, 500, or never) and command hooks the test writes (shell
//! scripts). Checked: the exact JSON of renewal_failed, expiry_near and
//! renewed on both kinds of target; a hook that hangs and a webhook that
//! never answers are cut off at the bound (and the hook's children killed)
//! while after_renew still returns in time; a failing hook is reported with
//! its stderr; no delivery line shows a webhook's path or query.

use edgeup::host::Host;
use edgeup::host::scripted::ScriptedRunner;
use edgeup::notify::{
    self, AlertKind, Attempt, Cert, Delivery, Notifier, Outcome, Run, Settings, Target,
};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 2026-02-20T06:00:00Z
const NOW: i64 = 1_771_567_200;
const DAY: i64 = 86_400;
const STATE: &str = "/var/lib/edgeup";
const TOKEN: &str = "T0KEN-s3cr3t";

#[derive(Clone, Copy)]
enum Answer {
    Ok,
    ServerError,
    Never,
}

/// One request the server received.
struct Received {
    request_line: String,
    content_type: Option<String>,
    body: String,
}

/// A loopback HTTP server answering every request the same way.
struct Server {
    port: u16,
    received: Receiver<Received>,
}

impl Server {
    fn start(answer: Answer) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (tx, received) = channel();
        std::thread::spawn(move || {
            // Connections never answered are kept open until the test ends.
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let Ok(request) = read_request(&stream) else {
                    continue;
                };
                if tx.send(request).is_err() {
                    break;
                }
                match answer {
                    Answer::Ok => respond(stream, "200 OK", "ok"),
                    Answer::ServerError => respond(
                        stream,
                        "500 Internal Server Error",
                        "pager\n   quota exceeded",
                    ),
                    Answer::Never => held.push(stream),
                }
            }
        });
        Ok(Server { port, received })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/{TOKEN}?key={TOKEN}", self.port)
    }

    /// Every request received so far (waiting briefly for stragglers).
    fn requests(&self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(r) = self.received.recv_timeout(Duration::from_millis(200)) {
            all.push(r);
        }
        all
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Received> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_type = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(value),
                "content-length" => length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(Received {
        request_line: request_line.trim_end().to_string(),
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(mut stream: TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn host(root: &Path) -> Host {
    Host::new(
        root.to_path_buf(),
        Box::new(ScriptedRunner::new(root.to_path_buf())),
    )
}

/// An executable shell script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

fn cert(days_left: i64) -> Cert {
    Cert {
        domain: "chat.example.com".into(),
        names: vec!["chat.example.com".into(), "www.chat.example.com".into()],
        not_after: Some(NOW + days_left * DAY),
    }
}

/// Each run of these tests records its attempts under this id.
const RUN: &str = "the run";

fn run(now: i64) -> Run<'static> {
    Run {
        id: RUN,
        now,
        hostname: "web1",
    }
}

fn failed_attempt(at: i64) -> Attempt {
    Attempt::new(
        at,
        Outcome::Failed("ordering the certificate: rateLimited: too many certificates".into()),
    )
    .in_run(RUN)
}

fn assert_no_secret(deliveries: &[Delivery]) {
    for d in deliveries {
        let line = d.to_string();
        assert!(!line.contains(TOKEN) && !line.contains("/hooks"), "{line}");
    }
}

#[test]
fn renewal_failed_and_expiry_near_reach_a_webhook_and_a_command_with_the_same_json() -> TestResult {
    let root = tempfile::tempdir()?;
    let hooks = tempfile::tempdir()?;
    let host = host(root.path());
    let server = Server::start(Answer::Ok)?;
    let out = hooks.path().join("events");
    let copy = script(
        hooks.path(),
        "copy.sh",
        &format!(
            "echo \"$#\" >> '{dir}/args'\ncat >> '{out}'\necho >> '{out}'\n",
            dir = hooks.path().display(),
            out = out.display()
        ),
    )?;
    let settings = Settings {
        targets: vec![Target::Webhook(server.url()), Target::Command(copy)],
        days_before_expiry: 14,
    };
    notify::record_attempt(&host, STATE, "chat.example.com", &failed_attempt(NOW - 30))?;

    let report = Notifier::with_timeout(Duration::from_secs(5)).after_renew(
        &host,
        STATE,
        &settings,
        &[cert(9)],
        &run(NOW),
    );
    assert!(report.all_ok(), "{:#?}", report.lines());
    assert_no_secret(&report.deliveries);
    let port = server.port;
    let lines = report.lines();
    assert_eq!(
        lines,
        [
            format!(
                "notify renewal_failed chat.example.com via webhook http://127.0.0.1:{port}: sent"
            ),
            format!(
                "notify renewal_failed chat.example.com via command {}: sent",
                hooks.path().join("copy.sh").display()
            ),
            format!(
                "notify expiry_near chat.example.com via webhook http://127.0.0.1:{port}: sent"
            ),
            format!(
                "notify expiry_near chat.example.com via command {}: sent",
                hooks.path().join("copy.sh").display()
            ),
        ]
    );

    let expected = [
        json!({
            "event": "renewal_failed",
            "domain": "chat.example.com",
            "names": ["chat.example.com", "www.chat.example.com"],
            "not_after": "2026-03-01T06:00:00Z",
            "days_left": 9,
            "error": "ordering the certificate: rateLimited: too many certificates",
            "host": "web1",
            "at": "2026-02-20T05:59:30Z"
        }),
        json!({
            "event": "expiry_near",
            "domain": "chat.example.com",
            "names": ["chat.example.com", "www.chat.example.com"],
            "not_after": "2026-03-01T06:00:00Z",
            "days_left": 9,
            "host": "web1",
            "at": "2026-02-20T06:00:00Z"
        }),
    ];
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for (request, want) in requests.iter().zip(&expected) {
        assert_eq!(
            request.request_line,
            format!("POST /hooks/{TOKEN}?key={TOKEN} HTTP/1.1")
        );
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(&serde_json::from_str::<Value>(&request.body)?, want);
    }
    // The command got byte for byte what the webhook got, one event per run.
    let copied = std::fs::read_to_string(&out)?;
    let bodies: Vec<&str> = requests.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(copied.lines().collect::<Vec<_>>(), bodies);
    assert_eq!(
        std::fs::read_to_string(hooks.path().join("args"))?,
        "0\n0\n",
        "no arguments"
    );

    // The timer's second run the same day, nothing attempted: nothing sent.
    let later = NOW + 12 * 3600;
    let report = Notifier::with_timeout(Duration::from_secs(5)).after_renew(
        &host,
        STATE,
        &settings,
        &[cert(9)],
        &run(later),
    );
    assert!(report.deliveries.is_empty(), "{:#?}", report.lines());
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(server.requests().is_empty());
    Ok(())
}

#[test]
fn a_success_after_an_announced_failure_is_sent_as_renewed() -> TestResult {
    let root = tempfile::tempdir()?;
    let host = host(root.path());
    let server = Server::start(Answer::Ok)?;
    let settings = Settings {
        targets: vec![Target::Webhook(server.url())],
        days_before_expiry: 14,
    };
    let notifier = Notifier::with_timeout(Duration::from_secs(5));
    notify::record_attempt(&host, STATE, "chat.example.com", &failed_attempt(NOW - 30))?;
    let report = notifier.after_renew(&host, STATE, &settings, &[cert(25)], &run(NOW));
    assert!(report.all_ok(), "{:#?}", report.lines());
    assert_eq!(report.deliveries.len(), 1);
    assert_eq!(report.deliveries[0].event, AlertKind::RenewalFailed);
    assert_eq!(server.requests().len(), 1);

    let next = NOW + 12 * 3600;
    let renewed = Attempt::new(next - 20, Outcome::Renewed).in_run(RUN);
    notify::record_attempt(&host, STATE, "chat.example.com", &renewed)?;
    assert_eq!(
        notify::last_attempt(&host, STATE, "chat.example.com")?,
        Some(renewed)
    );
    let report = notifier.after_renew(&host, STATE, &settings, &[cert(90)], &run(next));
    assert!(report.all_ok(), "{:#?}", report.lines());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&requests[0].body)?,
        json!({
            "event": "renewed",
            "domain": "chat.example.com",
            "names": ["chat.example.com", "www.chat.example.com"],
            "not_after": "2026-05-21T06:00:00Z",
            "days_left": 89,
            "host": "web1",
            "at": "2026-02-20T17:59:40Z"
        })
    );

    // A plain success later: nothing.
    let third = next + 12 * 3600;
    let ok = Attempt::new(third - 20, Outcome::Renewed).in_run(RUN);
    notify::record_attempt(&host, STATE, "chat.example.com", &ok)?;
    let report = notifier.after_renew(&host, STATE, &settings, &[cert(90)], &run(third));
    assert!(report.deliveries.is_empty(), "{:#?}", report.lines());
    Ok(())
}

#[test]
fn a_hanging_hook_and_a_silent_webhook_are_cut_off_at_the_bound() -> TestResult {
    let root = tempfile::tempdir()?;
    let hooks = tempfile::tempdir()?;
    let host = host(root.path());
    let server = Server::start(Answer::Never)?;
    let pid_file = hooks.path().join("sleep.pid");
    // The hook's own child: killed with it (its process group).
    let hang = script(
        hooks.path(),
        "hang.sh",
        &format!("sleep 600 &\necho $! > '{}'\nwait\n", pid_file.display()),
    )?;
    let settings = Settings {
        targets: vec![Target::Command(hang.clone()), Target::Webhook(server.url())],
        days_before_expiry: 14,
    };
    notify::record_attempt(&host, STATE, "chat.example.com", &failed_attempt(NOW - 30))?;
    let bound = Duration::from_secs(1);
    let started = Instant::now();
    let report =
        Notifier::with_timeout(bound).after_renew(&host, STATE, &settings, &[cert(9)], &run(NOW));
    let took = started.elapsed();
    assert!(took < bound * 3, "after_renew took {took:?}");
    assert_no_secret(&report.deliveries);

    // renewal_failed timed out on both; expiry_near was not tried again.
    let results: Vec<(AlertKind, String, String)> = report
        .deliveries
        .iter()
        .map(|d| {
            (
                d.event,
                d.target.clone(),
                d.result.clone().err().unwrap_or_default(),
            )
        })
        .collect();
    let port = server.port;
    assert_eq!(
        results,
        [
            (
                AlertKind::RenewalFailed,
                format!("command {}", hang.display()),
                "did not finish within 1 s and was killed".into()
            ),
            (
                AlertKind::RenewalFailed,
                format!("webhook http://127.0.0.1:{port}"),
                "no answer within 1 s; request abandoned".into()
            ),
            (
                AlertKind::ExpiryNear,
                format!("command {}", hang.display()),
                "not sent: this target timed out on an earlier event".into()
            ),
            (
                AlertKind::ExpiryNear,
                format!("webhook http://127.0.0.1:{port}"),
                "not sent: this target timed out on an earlier event".into()
            ),
        ]
    );
    assert_eq!(server.requests().len(), 1, "the webhook got the request");

    let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        assert!(Instant::now() < deadline, "the hook's sleep {pid} survived");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Killed but not yet reaped by whoever adopted it.
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn failing_targets_are_reported_with_what_they_said() -> TestResult {
    let root = tempfile::tempdir()?;
    let hooks = tempfile::tempdir()?;
    let host = host(root.path());
    let server = Server::start(Answer::ServerError)?;
    let closed = TcpListener::bind("127.0.0.1:0")?;
    let refused = format!("http://127.0.0.1:{}/x", closed.local_addr()?.port());
    drop(closed);
    let fail = script(
        hooks.path(),
        "fail.sh",
        "cat > /dev/null\necho 'paging...'\necho 'pager: connection refused' >&2\necho 'giving up' >&2\nexit 3\n",
    )?;
    let writable = script(hooks.path(), "writable.sh", "exit 0\n")?;
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o777))?;
    let settings = Settings {
        targets: vec![
            Target::Command(fail),
            Target::Webhook(server.url()),
            Target::Webhook(refused),
            Target::Command(hooks.path().join("missing.sh")),
            Target::Command(writable),
        ],
        days_before_expiry: 14,
    };
    // expiry_near only: nothing was attempted.
    let started = Instant::now();
    let report = Notifier::with_timeout(Duration::from_secs(5)).after_renew(
        &host,
        STATE,
        &settings,
        &[cert(3)],
        &run(NOW),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_no_secret(&report.deliveries);
    let errors: Vec<String> = report
        .deliveries
        .iter()
        .map(|d| d.result.clone().err().unwrap_or_default())
        .collect();
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert_eq!(
        errors[0],
        "exited with status 3: pager: connection refused | giving up"
    );
    assert_eq!(
        errors[1],
        "answered 500 Internal Server Error: pager quota exceeded"
    );
    assert!(errors[2].contains("onnection refused"), "{}", errors[2]);
    assert!(
        errors[3].starts_with("could not start it:"),
        "{}",
        errors[3]
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report
            .deliveries
            .iter()
            .all(|d| d.event == AlertKind::ExpiryNear)
    );
    assert_eq!(server.requests().len(), 1);
    Ok(())
}
