//! Individual read-only probes of the host.

use super::{FirewallFacts, Systemd};
use crate::host::{Cmd, Host};
use anyhow::Result;

/// sd_booted(3): systemd is running iff /run/systemd/system is a directory.
pub fn systemd(host: &Host) -> Systemd {
    let running = host.path("/run/systemd/system").is_dir();
    let pid1 = std::fs::read_to_string(host.path("/proc/1/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    Systemd { running, pid1 }
}

/// The kernel has IPv6 on at least one interface (/proc/net/if_inet6 lists
/// its addresses; it is absent or empty with IPv6 disabled), so HAProxy can
/// bind `[::]` with `v4v6`.
pub fn ipv6(host: &Host) -> bool {
    std::fs::read_to_string(host.path("/proc/net/if_inet6"))
        .is_ok_and(|text| text.lines().any(|l| !l.trim().is_empty()))
}

/// `enforcing`, `permissive` or `disabled`, from selinuxfs (no fork).
pub fn selinux(host: &Host) -> String {
    match std::fs::read_to_string(host.path("/sys/fs/selinux/enforce")) {
        Ok(s) if s.trim() == "1" => "enforcing".into(),
        Ok(_) => "permissive".into(),
        Err(_) => "disabled".into(),
    }
}

/// The active firewall front-end. ufw state is read from its config file;
/// firewalld is asked only when it is installed.
pub fn firewall(host: &Host) -> Result<FirewallFacts> {
    let firewalld_installed = host.has_program("firewall-cmd");
    let ufw_installed = host.has_program("ufw");
    let firewalld_active = firewalld_installed
        && host
            .run(&Cmd::new("firewall-cmd").arg("--state"))
            .map(|o| o.status == 0)
            .unwrap_or(false);
    let ufw_active = ufw_installed
        && host
            .read_string("/etc/ufw/ufw.conf")?
            .is_some_and(|conf| ufw_enabled(&conf));
    let active = if firewalld_active {
        "firewalld"
    } else if ufw_active {
        "ufw"
    } else {
        "none"
    };
    Ok(FirewallFacts {
        active: active.into(),
        firewalld_installed,
        ufw_installed,
    })
}

fn ufw_enabled(conf: &str) -> bool {
    conf.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix("ENABLED=").is_some_and(|v| {
            v.trim_matches(|c| c == '"' || c == '\'')
                .eq_ignore_ascii_case("yes")
        })
    })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `haproxy -v` style first-line versions, for `detect` (forks; not on the hot path).
pub fn tool_version(host: &Host, program: &str, args: &[&str]) -> Option<String> {
    if !host.has_program(program) {
        return None;
    }
    let out = host
        .run(&Cmd::new(program).args(args.iter().copied()))
        .ok()?;
    let text = if out.stdout.trim().is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    text.lines().next().map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ufw_conf_enabled_values() {
        assert!(super::ufw_enabled("# comment\nENABLED=yes\n"));
        assert!(super::ufw_enabled("ENABLED=\"yes\""));
        assert!(!super::ufw_enabled("ENABLED=no\n"));
        assert!(!super::ufw_enabled("#ENABLED=yes\n"));
    }
}
