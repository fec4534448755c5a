//! The fleet inventory: hosts (address, user, port, identity, per-host site
//! overrides), groups, and defaults; or hosts given as `--host user@addr[:port]`.
//! Every host's effective site is validated before anything is contacted.

use crate::site::{self, Config, SiteFile};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub defaults: HostSettings,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostSettings>,
}

/// Settings of one host, or defaults for all. `site` is a partial site
/// merged key by key over the defaults' site.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub identity: Option<PathBuf>,
    /// `become: true`: run edgeup through `sudo -n` (for a non-root login user).
    #[serde(default, rename = "become")]
    pub sudo: Option<bool>,
    #[serde(default)]
    pub site: Option<serde_json::Value>,
}

/// A host ready to be contacted.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetHost {
    pub name: String,
    pub address: String,
    pub user: String,
    pub port: u16,
    pub identity: Option<PathBuf>,
    /// Run remote commands through `sudo -n`.
    pub sudo: bool,
    /// Every site this host serves, resolved and validated.
    pub config: Config,
}

pub fn load(path: &Path) -> Result<Inventory> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("inventory {} is not valid", path.display()))
}

/// YAML 1.2 booleans only: site fragments are untyped here, and `directory:
/// off` must stay the string "off", not become `false` (YAML 1.1). Errors
/// never quote the file's lines (a site may hold an EAB key).
pub fn parse(text: &str) -> Result<Inventory> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    Ok(serde_saphyr::from_str_with_options(text, options)?)
}

/// `user@addr[:port]` from the command line.
pub fn parse_host_flag(spec: &str) -> Result<(String, HostSettings)> {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        _ => (None, spec),
    };
    let (address, port) = match rest.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') || a.ends_with(']') => {
            let port: u16 = p
                .parse()
                .with_context(|| format!("--host {spec}: '{p}' is not a port"))?;
            (
                a.trim_start_matches('[').trim_end_matches(']').to_string(),
                Some(port),
            )
        }
        _ => (
            rest.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            None,
        ),
    };
    if address.is_empty() {
        bail!("--host {spec}: no address; write user@address[:port]");
    }
    Ok((
        address.clone(),
        HostSettings {
            address: Some(address),
            user,
            port,
            ..HostSettings::default()
        },
    ))
}

/// Hosts selected by `limit` (host names or group names, comma-separated;
/// all when empty), each with its settings and site resolved and validated.
pub fn targets(
    inv: &Inventory,
    base_site: Option<&Config>,
    limit: &[String],
) -> Result<Vec<FleetHost>> {
    let selected: Vec<&String> = inv
        .hosts
        .keys()
        .filter(|name| {
            limit.is_empty()
                || limit.iter().any(|l| {
                    l == *name
                        || inv
                            .groups
                            .get(l)
                            .is_some_and(|members| members.contains(name))
                })
        })
        .collect();
    for l in limit {
        if !inv.hosts.contains_key(l) && !inv.groups.contains_key(l) {
            bail!("--limit {l}: no host or group of that name in the inventory");
        }
    }
    for (group, members) in &inv.groups {
        if let Some(unknown) = members.iter().find(|m| !inv.hosts.contains_key(*m)) {
            bail!("group {group} names {unknown}, which is not under hosts:");
        }
    }
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for name in selected {
        let host = &inv.hosts[name];
        let site_value = merge(
            base_site
                .map(|c| serde_json::to_value(c.to_site_file()))
                .transpose()?
                .unwrap_or(serde_json::Value::Null),
            merge(
                inv.defaults.site.clone().unwrap_or(serde_json::Value::Null),
                host.site.clone().unwrap_or(serde_json::Value::Null),
            ),
        );
        let mut site_value = site_value;
        site_booleans(&mut site_value);
        let file: SiteFile = match serde_json::from_value(site_value) {
            Ok(file) => file,
            Err(e) => {
                problems.push(format!("{name}: site: {e}"));
                continue;
            }
        };
        let address = host.address.clone().unwrap_or_else(|| name.clone());
        let user = host
            .user
            .clone()
            .or_else(|| inv.defaults.user.clone())
            .unwrap_or_else(|| "root".into());
        for (what, value, colon) in [
            ("host name", name.as_str(), true),
            ("address", address.as_str(), true),
            ("user", user.as_str(), false),
        ] {
            if let Err(why) = ssh_word(value, colon) {
                problems.push(format!("{name}: {what} {value:?} {why}"));
            }
        }
        let config = match file
            .resolve()
            .and_then(|sites| site::validate_config(&sites, Some(&file)))
        {
            Ok(config) => config,
            Err(found) => {
                problems.extend(found.iter().map(|p| format!("{name}: {p}")));
                continue;
            }
        };
        out.push(FleetHost {
            name: name.clone(),
            address,
            user,
            port: host.port.or(inv.defaults.port).unwrap_or(22),
            identity: host
                .identity
                .clone()
                .or_else(|| inv.defaults.identity.clone()),
            sudo: host.sudo.or(inv.defaults.sudo).unwrap_or(false),
            config,
        });
    }
    if !problems.is_empty() {
        bail!(
            "the fleet's sites have problems (nothing was contacted):\n  - {}",
            problems.join("\n  - ")
        );
    }
    if out.is_empty() {
        bail!("no hosts selected: add hosts to the inventory or pass --host user@address");
    }
    Ok(out)
}

/// A user, address or host name ssh is handed: letters, digits and `._-`
/// (and `:` for IPv6 addresses), not starting with `-` (ssh would read an
/// option), nothing a shell or ssh config would interpret.
fn ssh_word(value: &str, colon: bool) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.starts_with('-') {
        return Err("starts with '-', which ssh would read as an option");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || (colon && c == ':'))
    {
        return Err(
            "has characters other than letters, digits, '.', '_', '-' (and ':' in addresses)",
        );
    }
    Ok(())
}

/// The site's boolean keys, as paths.
const SITE_BOOLEANS: &[&[&str]] = &[&["hsts"], &["acme", "preflight"]];

/// The inventory is read with YAML 1.2 booleans so that `directory: off`
/// stays a string; the site's boolean keys then accept the words a site file
/// accepts there (`hsts: off`, `preflight: no`), with the same meaning.
fn site_booleans(site: &mut serde_json::Value) {
    if let Some(entries) = site.get_mut("sites").and_then(|s| s.as_array_mut()) {
        for entry in entries {
            site_booleans(entry);
        }
    }
    for path in SITE_BOOLEANS {
        let mut value = Some(&mut *site);
        for key in *path {
            value = value.and_then(|v| v.get_mut(*key));
        }
        if let Some(v) = value {
            let word = v.as_str().map(str::to_ascii_lowercase);
            match word.as_deref() {
                Some("on" | "yes" | "true") => *v = serde_json::Value::Bool(true),
                Some("off" | "no" | "false") => *v = serde_json::Value::Bool(false),
                _ => {}
            }
        }
    }
}

/// `over` merged key by key onto `base` (objects recursively; anything else replaces).
fn merge(base: serde_json::Value, over: serde_json::Value) -> serde_json::Value {
    match (base, over) {
        (serde_json::Value::Object(mut b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            serde_json::Value::Object(b)
        }
        (base, serde_json::Value::Null) => base,
        (_, over) => over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"
defaults:
  user: deploy
  become: true
  site:
    email: ops@company.org
    backends: ["127.0.0.1:3000"]
    acme: {directory: off}
groups:
  eu: [a, b]
hosts:
  a: {address: 10.1.0.2, site: {domain: a.company.org}}
  b: {address: 10.1.0.3, port: 2222, user: root, become: false, site: {domain: b.company.org, acme: {key_type: rsa-2048}}}
  c: {site: {domain: c.company.org}}
"#;

    #[test]
    fn hosts_inherit_defaults_and_merge_sites_key_by_key() -> Result<()> {
        let inv = parse(INVENTORY)?;
        let all = targets(&inv, None, &[])?;
        assert_eq!(all.len(), 3);
        let b = &all[1];
        assert_eq!((b.user.as_str(), b.port, b.sudo), ("root", 2222, false));
        assert_eq!(
            b.config.sites[0].acme.key_type,
            crate::site::KeyType::Rsa2048
        );
        assert_eq!(
            b.config.sites[0].acme.directory,
            crate::site::Directory::Off,
            "nested keys merge, not replace"
        );
        assert_eq!(b.config.sites[0].email.as_deref(), Some("ops@company.org"));
        let c = &all[2];
        assert_eq!(
            (c.address.as_str(), c.user.as_str(), c.port, c.sudo),
            ("c", "deploy", 22, true)
        );
        let eu = targets(&inv, None, &["eu".into()])?;
        assert_eq!(
            eu.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(targets(&inv, None, &["nope".into()]).is_err());
        Ok(())
    }

    #[test]
    fn a_bad_site_on_any_host_stops_everything_and_names_the_host() -> Result<()> {
        let inv = parse(
            "hosts:\n  x: {site: {domain: 'not a domain', backends: ['127.0.0.1:3000'], acme: {directory: off}}}\n",
        )?;
        let err = format!("{:#}", targets(&inv, None, &[]).err().context("must fail")?);
        assert!(err.contains("x: domain"), "{err}");
        Ok(())
    }

    #[test]
    fn boolean_words_mean_what_they_mean_in_a_site_file() -> Result<()> {
        let inv = parse(
            "defaults: {site: {email: a@b.org, backends: ['127.0.0.1:3000']}}\nhosts:\n  \
             x: {site: {domain: x.example.org, hsts: off, acme: {directory: off, preflight: no}}}\n  \
             y: {site: {domain: y.example.org, hsts: on}}\n",
        )?;
        let all = targets(&inv, None, &[])?;
        assert_eq!(all[0].config.sites[0].hsts, Some(false));
        assert!(!all[0].config.sites[0].acme.preflight);
        assert_eq!(
            all[0].config.sites[0].acme.directory,
            crate::site::Directory::Off
        );
        assert_eq!(all[1].config.sites[0].hsts, Some(true));
        Ok(())
    }

    #[test]
    fn a_host_site_may_list_several_sites_under_the_shared_defaults() -> Result<()> {
        let inv = parse(
            "defaults: {site: {email: a@b.org, acme: {directory: off}}}\nhosts:\n  \
             x: {site: {sites: [{domain: a.example.org, backends: ['127.0.0.1:3000'], hsts: off}, \
                                {domain: b.example.org, backends: ['127.0.0.1:3001']}]}}\n  \
             y: {site: {domain: y.example.org, backends: ['127.0.0.1:3000'], \
                        sites: [{domain: z.example.org, backends: ['127.0.0.1:3000']}]}}\n",
        )?;
        let err = format!(
            "{:#}",
            targets(&inv, None, &[]).err().context("y must fail")?
        );
        assert!(err.contains("y: domain") && err.contains("sites:"), "{err}");
        let x = targets(&inv, None, &["x".into()])?;
        let sites = &x[0].config.sites;
        assert_eq!(x[0].config.domains(), ["a.example.org", "b.example.org"]);
        assert_eq!(sites[0].hsts, Some(false), "boolean words inside sites:");
        assert!(sites.iter().all(|s| s.email.as_deref() == Some("a@b.org")));
        assert!(
            sites
                .iter()
                .all(|s| s.acme.directory == crate::site::Directory::Off)
        );
        Ok(())
    }

    #[test]
    fn users_addresses_and_names_cannot_smuggle_ssh_options() -> Result<()> {
        let inv = parse(
            "defaults: {site: {domain: a.example.org, backends: ['127.0.0.1:3000'], acme: {directory: off}}}\n\
             hosts:\n  \
             ok: {address: '::1', user: deploy}\n  \
             a: {address: '-oProxyCommand=touch /tmp/pwned'}\n  \
             b: {address: 10.0.0.1, user: '-oProxyCommand=x'}\n  \
             'c;d': {address: 10.0.0.2}\n  \
             e: {address: 'h $(id)'}\n",
        )?;
        let err = format!("{:#}", targets(&inv, None, &[]).err().context("must fail")?);
        for bad in ["a: address", "b: user", "c;d: host name", "e: address"] {
            assert!(err.contains(bad), "{bad} not refused:\n{err}");
        }
        assert!(!err.contains("ok:"), "{err}");
        assert!(targets(&inv, None, &["ok".into()]).is_ok());
        Ok(())
    }

    #[test]
    fn host_flags() -> Result<()> {
        assert_eq!(parse_host_flag("root@10.0.0.2:2222")?.1.port, Some(2222));
        assert_eq!(parse_host_flag("web1")?.1.user, None);
        assert_eq!(parse_host_flag("u@[::1]:22")?.0, "::1");
        assert!(parse_host_flag("u@h:x").is_err());
        Ok(())
    }
}
