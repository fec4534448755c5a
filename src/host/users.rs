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

impl Host {
    /// `uid` as people read it: the user's name, or the number when it has none.
    pub fn user_name(&self, uid: u32) -> String {
        name_of(self, "/etc/passwd", uid)
    }

    /// `gid` as people read it: the group's name, or the number when it has none.
    pub fn group_name(&self, gid: u32) -> String {
        name_of(self, "/etc/group", gid)
    }
}

fn name_of(host: &Host, file: &str, id: u32) -> String {
    if id == 0 {
        return "root".into();
    }
    let text = host.read_string(file).ok().flatten().unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)?.parse::<u32>().ok()? == id).then(|| name.to_string())
        })
        .unwrap_or_else(|| id.to_string())
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
