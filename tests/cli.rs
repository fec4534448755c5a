//! The binary's everyday commands without a terminal: `init` refuses at once
//! (never hangs, never writes), completions and man pages come from the clap
//! definitions, and `status` exits with its documented codes.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn edgeup() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeup"));
    cmd.env_remove("NO_COLOR").env_remove("EDGEUP_DATA_DIR");
    cmd
}

/// Runs with stdin an open pipe nobody writes to (a prompt reading it would
/// block, not see EOF) and a generous deadline: a run that waited for input
/// is killed and reported, not left to hang the suite. No wall-clock bound
/// below the deadline: a loaded machine may be slow, never blocked.
fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Output {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting edgeup");
    loop {
        match child.try_wait().expect("waiting for edgeup") {
            Some(_) => break,
            None if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("edgeup did not exit within {deadline:?} (is it waiting for input?)");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let status = child.wait().expect("status");
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut stdout).expect("stdout");
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_end(&mut stderr).expect("stderr");
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_without_a_terminal_exits_2_at_once_naming_the_alternatives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = dir.path().join("site.yaml");
    let mut cmd = edgeup();
    cmd.args(["init", "-f"]).arg(&site);
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for expected in [
        "needs a terminal",
        "stdin, stdout and stderr are not a terminal",
        "nothing was asked or written",
        "edgeup apply --domain chat.example.com --email you@example.com --backend 127.0.0.1:3000",
        "edgeup apply -f site.yaml",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(!site.exists(), "init wrote a file without asking");
}

#[test]
fn init_with_json_is_refused_as_invalid_input() {
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["--json", "init", "-f", "/nonexistent/site.yaml"]);
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    let line = text(&out.stdout);
    let event: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON error line");
    assert_eq!(event["event"], "error");
    assert_eq!(event["exit_code"], 2);
    assert_eq!(event["v"], 1, "the protocol's version: {line}");
    assert!(
        line.starts_with(r#"{"event":"error","exit_code":2,"message":"#),
        "{line}"
    );
}

#[test]
fn completions_for_every_shell_name_the_new_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_with_deadline(
            {
                let mut c = edgeup();
                c.args(["completions", shell]);
                c
            },
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in ["init", "status", "apply", "completions", "acme-directory"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // bash accepts what it generated.
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["completions", "bash"]);
            c
        },
        Duration::from_secs(60),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("edgeup.bash");
    std::fs::write(&file, &out.stdout).expect("write");
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p edgeup", file.display()))
        .output()
        .expect("bash is required to check the completion script");
    assert!(
        check.status.success(),
        "bash rejected the completion script: {}",
        text(&check.stderr)
    );
    assert!(text(&check.stdout).contains("edgeup"));
    let bad = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["completions", "tcsh"]);
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(bad.status.code(), Some(2), "unknown shell is a usage error");
}

#[test]
fn man_page_from_the_clap_definitions() {
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.arg("man");
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH edgeup 1"), "{page}");
    for word in ["init", "status", "completions", "\\-\\-json"] {
        assert!(page.contains(word), "man page lacks {word}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["man", "--dir"]).arg(dir.path());
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "edgeup.1",
        "edgeup-init.1",
        "edgeup-status.1",
        "edgeup-apply.1",
        "edgeup-completions.1",
    ] {
        assert!(
            pages.iter().any(|p| p == expected),
            "{expected} not in {pages:?}"
        );
    }
    let status_page = std::fs::read_to_string(dir.path().join("edgeup-status.1")).expect("page");
    assert!(
        status_page.contains(".TH edgeup-status 1  \"edgeup "),
        "{status_page}"
    );
    assert!(status_page.contains("\\-\\-connect"), "{status_page}");
    assert!(
        status_page.contains("\\-\\-json"),
        "global flags on subcommand pages"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn status_exit_codes_and_json() {
    let connect = format!("127.0.0.1:{}", free_port());
    let site = [
        "--domain",
        "chat.example.com",
        "--email",
        "ops@your-company.com",
        "--backend",
        "127.0.0.1:3000",
        "--acme-directory",
        "off",
    ];
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["status", "--json", "--timeout", "2", "--connect", &connect]);
            c.args(site);
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(text(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(report["healthy"], false);
    assert_eq!(report["domain"], "chat.example.com");
    let checks = report["checks"].as_array().expect("checks");
    let https = checks
        .iter()
        .find(|c| c["name"] == "https")
        .expect("https check");
    assert_eq!(https["level"], "fail");
    assert!(
        https["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing listens"),
        "{https}"
    );
    // This machine's systemd state is reported as it is.
    let systemd = checks
        .iter()
        .find(|c| c["name"] == "systemd")
        .expect("systemd check");
    let booted = PathBuf::from("/run/systemd/system").is_dir();
    assert_eq!(
        systemd["level"],
        if booted { "ok" } else { "fail" },
        "{systemd}"
    );
    if !booted {
        assert!(
            systemd["message"]
                .as_str()
                .unwrap_or("")
                .contains("systemd is NOT running"),
            "{systemd}"
        );
    }

    // Human output: one line per check and the verdict.
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["status", "--timeout", "2", "--connect", &connect]);
            c.args(site);
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(6));
    let human = text(&out.stdout);
    assert!(human.contains("NOT healthy"), "{human}");
    assert!(!human.contains('\x1b'), "colour on a pipe: {human:?}");

    // No site at all: invalid input, as for plan.
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.args(["status", "-f", "/nonexistent/site.yaml"]);
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn help_lists_the_everyday_commands_and_exit_code_6() {
    let out = run_with_deadline(
        {
            let mut c = edgeup();
            c.arg("--help");
            c
        },
        Duration::from_secs(60),
    );
    let help = text(&out.stdout);
    for word in [
        "init",
        "status",
        "completions",
        "man",
        "6 status: not healthy",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

/// A site file with an EAB key and a mistake: the error names the line and
/// exits 2, and no output channel (plain or --json) quotes the key.
#[test]
fn site_file_errors_never_quote_a_secret() {
    const KEY: &str = "aVeryS3cretHmacKeyThatMustNeverBeShown_0123456789";
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, yaml) in [
        (
            "unknown-key",
            format!(
                "domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nemail: a@b.org\n\
                 acme:\n  directory: https://ca.example.org/dir\n  eab: {{kid: k, hmac_key: {KEY}, hmac: x}}\n"
            ),
        ),
        (
            "bad-yaml",
            format!("domain: chat.example.com\nacme:\n  eab: {{kid: k, hmac_key: {KEY}\n"),
        ),
        (
            "bad-value",
            format!(
                "domain: chat.example.com\nbackends: [\"127.0.0.1:3000\"]\nemail: a@b.org\n\
                 acme:\n  directory: https://ca.example.org/dir\n  eab: {{kid: k, hmac_key: \"{KEY}==\"}}\n"
            ),
        ),
    ] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).expect("write the site file");
        for json in [false, true] {
            let mut cmd = edgeup();
            if json {
                cmd.arg("--json");
            }
            cmd.arg("plan").arg("-f").arg(&path);
            let out = run_with_deadline(cmd, Duration::from_secs(60));
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert_eq!(out.status.code(), Some(2), "{name}: {all}");
            assert!(
                !all.contains(KEY),
                "{name} (json {json}) shows the key:\n{all}"
            );
            assert!(
                all.contains("line") || all.contains("hmac_key"),
                "{name}: {all}"
            );
        }
    }
}

#[test]
fn dns01_files_are_checked_against_the_host_before_anything_runs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("tsig.key");
    std::fs::write(
        &key,
        "key \"edgeup\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };\n",
    )
    .expect("write the key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let hook = dir.path().join("page-me");
    std::fs::write(&hook, "#!/bin/sh\n").expect("write the hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let site = dir.path().join("site.yaml");
    std::fs::write(
        &site,
        format!(
            "domain: example.test\naliases: [\"*.example.test\"]\nbackends: [\"127.0.0.1:3000\"]\n\
             email: ops@widgets.dev\nacme:\n  directory: https://127.0.0.1:14000/dir\n  challenge: dns-01\n\
             \x20 dns: {{provider: rfc2136, server: \"127.0.0.1:5353\", tsig_key_file: {}}}\n\
             notify: {{targets: [{{command: {}}}]}}\n",
            key.display(),
            hook.display()
        ),
    )
    .expect("write the site file");
    let mut cmd = edgeup();
    cmd.arg("plan").arg("-f").arg(&site);
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("acme.dns.tsig_key_file")
            && all.contains("has mode 0644: group or others may read or change it"),
        "{all}"
    );
    assert!(
        all.contains("notify.targets command") && all.contains("is not an executable file"),
        "{all}"
    );
    assert!(
        !all.contains("c2VjcmV0"),
        "the secret is never shown: {all}"
    );
}
