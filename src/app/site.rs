//! `edgeup site add|remove|list`: change the recorded sites one at a time.
//! The record (/etc/edgeup/site.yaml) is edited as text, so the user's
//! comments and the other sites stay as they were; the edited text is
//! checked to describe exactly the intended sites, then applied (the site
//! record step writes it only once the configuration is live).

use super::converge::{self, ApplyHow};
use super::site_edit::{self, Change, Record};
use super::site_input;
use crate::cli::{Output, SiteAddArgs, SiteRemoveArgs};
use crate::exit;
use crate::host::Host;
use crate::paths::SITE_FILE;
use crate::run::Desired;
use crate::site::{self, Config, Site};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

fn read_record() -> Result<Option<Record>> {
    let path = Path::new(SITE_FILE);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(exit::invalid(format!("cannot read {SITE_FILE}: {e}")));
        }
    };
    Record::parse(text, path).map(Some)
}

pub fn add(
    host: &Host,
    assets: &crate::assets::Assets,
    args: &SiteAddArgs,
    out: &Output,
) -> Result<i32> {
    crate::run::require_root("site add")?;
    let Some(domain) = &args.site.domain else {
        return Err(exit::invalid(
            "edgeup site add needs --domain D and --backend HOST:PORT",
        ));
    };
    if args.site.site_file.is_some() {
        return Err(exit::invalid(
            "edgeup site add adds to the recorded sites; -f FILE is for `edgeup apply -f FILE`",
        ));
    }
    let record = read_record()?;
    let Some(record) = record else {
        // No sites yet: the same as `apply` with these flags.
        let input = site_input::read(&args.site.flags())?;
        return apply(host, assets, input.config, None, args.yes, out);
    };
    if record.site(domain).is_some() {
        return Err(exit::invalid(format!(
            "{domain} is already a site here; to change it, edit {SITE_FILE} and run \
             `edgeup apply` (nothing was changed)"
        )));
    }
    let shared = record.shared_defaults();
    let mut new = record.new_site();
    site_input::overlay_site(&mut new, &args.site.flags());
    let change = record.add(&new)?;
    // The new site's problems name the flags' keys (domain, backends[0], ...).
    let added = change.sites.last().unwrap_or(&new);
    let mut problems = site::validate(added);
    problems.extend(site::name_collisions(&change.sites, false));
    if !problems.is_empty() {
        return Err(site_input::refuse(&problems));
    }
    if new.firewall != shared.firewall || new.listen != shared.listen {
        return Err(exit::invalid(
            "--firewall is shared by every site on this host: change it in the site file \
             (the top-level firewall: key) and run `edgeup apply`",
        ));
    }
    let (config, text) = noted(change, out)?;
    apply(host, assets, config, Some(text), args.yes, out)
}

pub fn remove(
    host: &Host,
    assets: &crate::assets::Assets,
    args: &SiteRemoveArgs,
    out: &Output,
) -> Result<i32> {
    crate::run::require_root("site remove")?;
    let domain = &args.domain;
    let Some(record) = read_record()? else {
        return Err(exit::invalid(format!(
            "no sites are recorded here ({SITE_FILE} does not exist); nothing to remove"
        )));
    };
    if record.site(domain).is_none() {
        return Err(exit::invalid(format!(
            "{domain} is not a site here (the sites are {}); nothing was changed",
            record.domains().join(", ")
        )));
    }
    site_edit::check_removable(&record.sites, domain)?;
    if converge::interactive(out)
        && !args.yes
        && !converge::confirm(&site_edit::remove_question(domain))?
    {
        eprintln!("nothing changed");
        return Ok(exit::OK);
    }
    let (config, text) = noted(record.remove(domain)?, out)?;
    apply(host, assets, config, Some(text), true, out)
}

pub fn list(out: &Output) -> Result<i32> {
    let Some(record) = read_record()? else {
        return Err(exit::invalid(format!(
            "no sites are recorded here ({SITE_FILE} does not exist): `edgeup site add` or `edgeup apply` first"
        )));
    };
    for site in &record.config()?.sites {
        let line = Listed::of(site);
        if out.json {
            crate::outln!("{}", serde_json::to_string(&line)?);
        } else {
            crate::outln!(
                "{}  -> {}  ({}{})",
                line.names.join(", "),
                line.backends.join(", "),
                line.certificate,
                line.path
                    .as_deref()
                    .map(|p| format!(", path {p}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(exit::OK)
}

/// What `site list` shows of a site (never a secret).
#[derive(Serialize)]
struct Listed {
    domain: String,
    names: Vec<String>,
    backends: Vec<String>,
    routing: String,
    /// The prefix of path routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// `off`, or the ACME client and directory.
    certificate: String,
}

impl Listed {
    fn of(site: &Site) -> Listed {
        Listed {
            domain: site.domain.clone(),
            names: site.names(),
            backends: site.backends.iter().map(ToString::to_string).collect(),
            routing: site.routing.to_string(),
            path: site.path_prefix().map(str::to_string),
            certificate: if site.acme.enabled() {
                format!("{} from {}", site.acme.client, site.acme.directory)
            } else {
                "placeholder (acme off)".into()
            },
        }
    }
}

fn apply(
    host: &Host,
    assets: &crate::assets::Assets,
    config: Config,
    record_text: Option<String>,
    yes: bool,
    out: &Output,
) -> Result<i32> {
    let how = ApplyHow {
        playbook: crate::playbook::DEFAULT_PLAYBOOK,
        yes,
        diff: false,
    };
    converge::apply_target(
        host,
        assets,
        &Desired {
            config,
            record_text,
        },
        &how,
        out,
    )
}

/// The change's sites (validated) and text, after saying when the file was
/// rewritten whole.
fn noted(change: Change, out: &Output) -> Result<(Config, String)> {
    let config = change.config()?;
    if change.rewritten && !out.json {
        eprintln!(
            "note: {} (the old file is kept in /var/lib/edgeup/backups/)",
            site_edit::rewrite_note(Path::new(SITE_FILE))
        );
    }
    Ok((config, change.text))
}
