//! User and group ids from the host's /etc/passwd and /etc/group (system
//! users such as haproxy always live there, and reading the files keeps
//! transcript tests and sysroots honest).

use super::Host;
use anyhow::{Result, bail};

impl Host {
    pub fn uid(&self, user: &str) -> Result<u32> {
        if user == "root" {
            return Ok(0);
        }
        lookup(self, "/etc/passwd", user, "user")
    }

    pub fn gid(&self, group: &str) -> Result<u32> {
        if group == "root" {
            return Ok(0);
        }
        lookup(self, "/etc/group", group, "group")
    }
}

fn lookup(host: &Host, file: &str, name: &str, what: &str) -> Result<u32> {
    let text = host.read_string(file)?.unwrap_or_default();
    for line in text.lines() {
        let mut fields = line.split(':');
        if fields.next() == Some(name)
            && let Some(id) = fields.nth(1).and_then(|f| f.parse().ok())
        {
            return Ok(id);
        }
    }
    bail!("{what} '{name}' does not exist on this host (not in {file}); is its package installed?")
}
