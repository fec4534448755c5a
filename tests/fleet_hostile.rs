//! `edgeup fleet` against hosts that lie, flood and inject terminal escapes,
//! through a fake `ssh` on PATH that plays each host (no network): each bad
//! host fails alone, the controller neither crashes nor buffers without
//! bound, prints no control characters, never names a path the host chose,
//! shows a recap as the host's claim, and hands ssh the user as `-l USER`
//! and the address after `--` (issue: hardening).

use std::path::Path;
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
  *) recap 3 0 0; exit 0;;
esac
"#;

fn write_fake_ssh(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("ssh");
    std::fs::write(&path, FAKE_SSH).expect("write the fake ssh");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn hostile_hosts_fail_alone_and_cannot_harm_the_controller() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_fake_ssh(dir.path());
    let log = dir.path().join("ssh.log");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
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
    let line = |host: &str| {
        stdout
            .lines()
            .find(|l| {
                l.strip_prefix(host)
                    .is_some_and(|rest| rest.starts_with(' '))
            })
            .unwrap_or_default()
            .to_string()
    };
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
    let dir = tempfile::tempdir().expect("tempdir");
    write_fake_ssh(dir.path());
    let log = dir.path().join("ssh.log");
    let site = dir.path().join("site.yaml");
    std::fs::write(
        &site,
        format!(
            "domain: chat.example.com\nemail: ops@example.org\nbackends: ['127.0.0.1:3000']\n\
             acme:\n  directory: https://ca.example.org/dir\n  eab: {{kid: kid-1, hmac_key: {KEY}}}\n"
        ),
    )
    .expect("site file");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
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
