//! `edgeup fleet` against hosts that lie, flood and inject terminal escapes,
//! through a fake `ssh` on PATH that plays each host (no network): each bad
//! host fails alone, the controller neither crashes nor buffers without
//! bound, prints no control characters, never names a path the host chose,
//! shows a recap as the host's claim, cuts off a host that never finishes,
//! and hands ssh the user as `-l USER` and the address after `--` (issue:
//! hardening).

use std::path::PathBuf;
use std::process::Command;

/// The fake ssh: logs its arguments, plays the host named by the address:
/// answers the probe (nothing of this edgeup installed), logs the copy
/// script it is sent and the end of what follows it on stdin (the site
/// file is sent last), then prints that host's run.
const FAKE_SSH: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_SSH_LOG"
seen=0; addr=""; script=""
for a in "$@"; do
  if [ "$seen" = 2 ]; then script="$a"; seen=3; fi
  if [ "$seen" = 1 ]; then addr="$a"; seen=2; fi
  if [ "$a" = "--" ] && [ "$seen" = 0 ]; then seen=1; fi
done
recap() { printf '{"event":"recap","ok":%s,"changed":%s,"failed":%s,"skipped":0,"mode":"apply","duration_ms":1}\n' "$1" "$2" "$3"; }
case "$script" in
  *"echo edgeup-fleet-probe;"*) ;;
  *) echo "not the session script" >&2; exit 1;;
esac
echo edgeup-fleet-probe
if [ "$addr" = garbled ]; then printf 'x86 64\n0\n'; else printf 'x86_64\n0\n'; fi
echo edgeup-fleet-probe-end
IFS= read -r size || exit 0
{ head -c "$size"; echo; } >> "$FAKE_SSH_LOG.scripts"
tail -c 4096 >> "$FAKE_SSH_LOG.stdin"
case "$addr" in
  flood) head -c 3000000 /dev/zero | tr '\0' 'a'; echo; recap 1 0 0; exit 0;;
  escape)
    printf '{"event":"step","index":1,"total":1,"name":"\\u001b[2Jwiped","status":"failed","handler":false,"changes":[],"message":"\\u001b]0;pwned\\u0007 rang","duration_ms":1}\n'
    printf 'raw \033[31mred\r\n'
    recap 0 0 1; exit 1;;
  lie) recap 18446744073709551615 18446744073709551615 0; exit 0;;
  hang) printf '{"event":"start","command":"apply","playbook":"open-webui","distro":"x","steps":1}\n'; exec sleep 600;;
  newer)
    printf '{"event":"step","index":1,"total":2,"name":"colour step","status":"changed","handler":false,"changes":[],"duration_ms":1,"colour":"blue","v":2}\n'
    printf '{"event":"progress","percent":50,"v":2}\n'
    printf '{"event":"recap","ok":1,"changed":1,"failed":0,"skipped":0,"mode":"apply","duration_ms":1,"retries":0,"v":2}\n'
    exit 0;;
  older)
    printf '{"event":"step","index":1,"total":1,"name":"old step","status":"failed","handler":false,"changes":[],"message":"it broke","duration_ms":1}\n'
    recap 0 0 1; exit 1;;
  *) recap 3 0 0; exit 0;;
esac
"#;

/// A directory holding the fake ssh, its log's path, and a PATH that finds it first.
fn fake_ssh() -> (tempfile::TempDir, PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let ssh = dir.path().join("ssh");
    std::fs::write(&ssh, FAKE_SSH).expect("write the fake ssh");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let log = dir.path().join("ssh.log");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, log, path)
}

/// The line fleet printed for `host` (its name, then a space), or "".
fn host_line(stdout: &str, host: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn hostile_hosts_fail_alone_and_cannot_harm_the_controller() {
    let (_dir, log, path) = fake_ssh();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeup"));
    cmd.env("PATH", path)
        .env("FAKE_SSH_LOG", &log)
        .env_remove("NO_COLOR")
        .args(["fleet", "--forks", "5"])
        .args(["--domain", "chat.example.com", "--email", "ops@example.org"])
        .args(["--backend", "127.0.0.1:3000", "--acme-directory", "off"]);
    for host in ["good", "flood", "escape", "lie", "garbled"] {
        cmd.args(["--host", &format!("root@{host}")]);
    }
    let out = cmd.output().expect("run edgeup fleet");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let all = format!("{stdout}{stderr}");
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Nothing the hosts sent reaches the terminal as a control character.
    for c in ['\u{1b}', '\u{7}', '\r'] {
        assert!(!all.contains(c), "{c:?} printed:\n{all}");
    }
    assert!(
        all.contains("\\u{1b}[2Jwiped"),
        "the escape is shown, not run:\n{all}"
    );
    let line = |host: &str| host_line(&stdout, host);
    assert!(line("good").contains("ok=3 changed=0 failed=0"), "{stdout}");
    assert!(line("flood").contains("longer than 1024 KiB"), "{stdout}");
    assert!(
        line("garbled").contains("unexpected answer to the probe"),
        "{stdout}"
    );
    assert!(line("lie").contains("(as the host reports)"), "{stdout}");
    assert!(
        stdout.contains("ok=18446744073709551615"),
        "the lying host's figures saturate, no overflow:\n{stdout}"
    );
    // One ssh session per host, each given `-l USER ... -- ADDRESS`; the
    // controller names no path on a host beyond its own constants (the
    // staging directory is the host's shell variable).
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(calls.lines().count(), 5, "{calls}");
    assert!(
        calls
            .lines()
            .all(|l| l.contains(" -l root ") && l.contains(" -- ")),
        "{calls}"
    );
    let scripts = std::fs::read_to_string(log.with_extension("log.scripts")).unwrap_or_default();
    assert_eq!(
        scripts.matches("receive edgeup ").count(),
        4,
        "every host but the garbled one was sent the binary:\n{scripts}"
    );
    for text in [&calls, &scripts] {
        assert!(
            !text
                .replace("/tmp/edgeup.XXXXXXXXXX", "")
                .contains("/tmp/edgeup."),
            "{text}"
        );
    }
}

/// A site with an EAB key, sent to a host: the key travels in the uploaded
/// file (ssh's stdin), never on an ssh command line, and never in what the
/// controller prints.
#[test]
fn a_sites_secret_never_reaches_an_ssh_command_line_or_the_output() {
    const KEY: &str = "c2VjcmV0LWVhYi1rZXktZm9yLXRoZS1mbGVldC10ZXN0";
    let (dir, log, path) = fake_ssh();
    let site = dir.path().join("site.yaml");
    std::fs::write(
        &site,
        format!(
            "domain: chat.example.com\nemail: ops@example.org\nbackends: ['127.0.0.1:3000']\n\
             acme:\n  directory: https://ca.example.org/dir\n  eab: {{kid: kid-1, hmac_key: {KEY}}}\n"
        ),
    )
    .expect("site file");
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeup"));
        cmd.env("PATH", &path).env("FAKE_SSH_LOG", &log);
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(["fleet", "-f"])
            .arg(&site)
            .args(["--host", "root@good", "--host", "root@escape"])
            .output()
            .expect("run edgeup fleet");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("good"), "{all}");
        assert!(
            !all.contains(KEY),
            "json {json}: the key was printed:\n{all}"
        );
    }
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let scripts = std::fs::read_to_string(log.with_extension("log.scripts")).unwrap_or_default();
    let stdin = std::fs::read(log.with_extension("log.stdin")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&stdin).contains(KEY),
        "the site (with its key) did not travel on ssh's stdin"
    );
    for (what, text) in [
        ("an ssh command line", &calls),
        ("the copy script", &scripts),
    ] {
        assert!(!text.contains(KEY), "the key was in {what}:\n{text}");
    }
}

/// Hosts running another edgeup: a newer one (`v` 2, fields and an event
/// kind this edgeup does not know) and an older one (no `v`): each is read
/// as far as this edgeup can, the unknown kind is shown as the host's
/// output, and neither fails for it; fleet's own lines carry `"v":1`.
#[test]
fn hosts_running_another_edgeup_are_read_not_failed() {
    let (_dir, log, path) = fake_ssh();
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgeup"));
        cmd.env("PATH", &path).env("FAKE_SSH_LOG", &log);
        if json {
            cmd.arg("--json");
        }
        cmd.args(["fleet", "--domain", "chat.example.com"])
            .args(["--email", "ops@example.org", "--backend", "127.0.0.1:3000"])
            .args(["--acme-directory", "off"])
            .args(["--host", "root@newer", "--host", "root@older"]);
        let out = cmd.output().expect("run edgeup fleet");
        assert_eq!(out.status.code(), Some(1), "the older host's step failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plain = run(false);
    for wanted in [
        "newer: [1/2] colour step ... changed",
        r#"newer: {"event":"progress","percent":50,"v":2}"#,
        "older: [1/1] old step ... failed",
        "older:     it broke",
    ] {
        assert!(plain.contains(wanted), "{wanted:?} missing:\n{plain}");
    }
    let recap = |host: &str| host_line(&plain, host);
    assert!(
        recap("newer").contains("ok=1 changed=1 failed=0"),
        "{plain}"
    );
    assert!(
        recap("older").contains("ok=0 changed=0 failed=1"),
        "{plain}"
    );
    assert!(
        plain.contains("total: 2 hosts  ok=1 changed=1 failed=1"),
        "{plain}"
    );

    let json = run(true);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["v"] == 1), "{json}");
    let newer: Vec<&serde_json::Value> = lines.iter().filter(|l| l["host"] == "newer").collect();
    assert_eq!(newer[0]["event"], "step", "{json}");
    assert!(newer[0].get("colour").is_none(), "{json}");
    assert_eq!(newer[1]["event"], "output", "{json}");
    assert_eq!(
        newer[1]["line"], r#"{"event":"progress","percent":50,"v":2}"#,
        "{json}"
    );
    let host_recap = newer
        .iter()
        .find(|l| l["event"] == "host_recap")
        .expect("newer's host_recap");
    assert_eq!(host_recap["recap"]["changed"], 1, "{json}");
    assert_eq!(host_recap["exit_code"], 0, "{json}");
    let last = lines.last().expect("a last line");
    assert_eq!(
        (&last["event"], &last["hosts"], &last["hosts_failed"]),
        (
            &serde_json::json!("recap"),
            &serde_json::json!(2),
            &serde_json::json!(1)
        ),
        "{json}"
    );
}

/// A host that stays connected and never finishes (it said it started,
/// then nothing) is cut off at `--timeout` and fails alone; the others'
/// results stand and the controller ends.
#[test]
fn a_host_that_never_finishes_is_cut_off_at_the_timeout() {
    let (_dir, log, path) = fake_ssh();
    let out = Command::new(env!("CARGO_BIN_EXE_edgeup"))
        .env("PATH", &path)
        .env("FAKE_SSH_LOG", &log)
        .args(["fleet", "--timeout", "2", "--domain", "chat.example.com"])
        .args(["--email", "ops@example.org", "--backend", "127.0.0.1:3000"])
        .args(["--acme-directory", "off"])
        .args(["--host", "root@hang", "--host", "root@good"])
        .output()
        .expect("run edgeup fleet");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = |host: &str| host_line(&stdout, host);
    assert!(
        line("hang").contains("had not finished after 2 s; the session was cut off"),
        "{stdout}"
    );
    assert!(line("good").contains("ok=3 changed=0 failed=0"), "{stdout}");
    assert!(stdout.contains("total: 2 hosts"), "{stdout}");
}
