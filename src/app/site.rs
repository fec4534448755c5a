//! `edgeup site add|remove|list`: change the recorded sites one at a time.
//! The record (/etc/edgeup/site.yaml) is edited as text, so the user's
//! comments and the other sites stay as they were; the edited text is
//! checked to describe exactly the intended sites, then applied (the site
//! record step writes it only once the configuration is live).

use super::converge::{self, ApplyHow, Output, Target};
use super::site_input::{self, DEFAULT_SITE_FILE};
use crate::cli::{SiteAddArgs, SiteRemoveArgs};
use crate::exit;
use crate::host::Host;
use crate::site::config::{AcmeKeys, SiteEntry};
use crate::site::{self, Config, RawSite, Site, SiteFile, edit};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// The record as it is: its text, the raw file, its sites as written
/// (resolved) and as validated.
struct Record {
    text: String,
    file: SiteFile,
    sites: Vec<RawSite>,
    config: Config,
}

fn read_record() -> Result<Option<Record>> {
    let path = Path::new(DEFAULT_SITE_FILE);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(exit::invalid(format!(
                "cannot read {DEFAULT_SITE_FILE}: {e}"
            )));
        }
    };
    let file = site_input::parse(&text, path)?;
    let sites = file.resolve().map_err(|p| site_input::refuse(&p))?;
    let config = site::validate_config(&sites, Some(&file)).map_err(|p| site_input::refuse(&p))?;
    Ok(Some(Record {
        text,
        file,
        sites,
        config,
    }))
}

pub fn add(
    host: &Host,
    assets: &crate::assets::Assets,
    args: &SiteAddArgs,
    out: &Output,
) -> Result<i32> {
    converge::require_root("site add")?;
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
    if record.config.site(domain).is_some() {
        return Err(exit::invalid(format!(
            "{domain} is already a site here; to change it, edit {DEFAULT_SITE_FILE} and run \
             `edgeup apply` (nothing was changed)"
        )));
    }
    let shared = shared_defaults(&record);
    let mut new = RawSite {
        domain: String::new(),
        aliases: Vec::new(),
        backends: Vec::new(),
        routing: RawSite::default().routing,
        health: None,
        ..shared.clone()
    };
    site_input::overlay_site(&mut new, &args.site.flags());
    let mut sites = record.sites.clone();
    sites.push(new.clone());
    // The new site's problems name the flags' keys (domain, backends[0], ...).
    let mut problems = site::validate(&new);
    problems.extend(site::name_collisions(&sites, false));
    if !problems.is_empty() {
        return Err(site_input::refuse(&problems));
    }
    let config = site::validate_config(&sites, None).map_err(|p| site_input::refuse(&p))?;
    if new.firewall != shared.firewall || new.listen != shared.listen {
        return Err(exit::invalid(
            "--firewall is shared by every site on this host: change it in the site file \
             (the top-level firewall: key) and run `edgeup apply`",
        ));
    }
    let entry = serde_saphyr::to_string(&entry_of(&new, &shared))
        .map_err(|e| anyhow::anyhow!("encoding the new site as YAML: {e}"))?;
    let text = edited(&config, edit::add_site(&record.text, &entry), out)?;
    apply(host, assets, config, Some(text), args.yes, out)
}

pub fn remove(
    host: &Host,
    assets: &crate::assets::Assets,
    args: &SiteRemoveArgs,
    out: &Output,
) -> Result<i32> {
    converge::require_root("site remove")?;
    let domain = &args.domain;
    let Some(record) = read_record()? else {
        return Err(exit::invalid(format!(
            "no sites are recorded here ({DEFAULT_SITE_FILE} does not exist); nothing to remove"
        )));
    };
    if record.config.site(domain).is_none() {
        return Err(exit::invalid(format!(
            "{domain} is not a site here (the sites are {}); nothing was changed",
            record.config.domains().join(", ")
        )));
    }
    if record.config.sites.len() == 1 {
        return Err(exit::invalid(format!(
            "{domain} is the only site; edgeup needs at least one. Add the next one first \
             (`edgeup site add`), or replace it with `edgeup apply --domain NEW ... --replace`"
        )));
    }
    if converge::interactive(out) && !args.yes {
        let question = format!(
            "Remove {domain}? Its route leaves HAProxy and its certificate is archived under /var/lib/edgeup/archive"
        );
        if !converge::confirm(&question)? {
            eprintln!("nothing changed");
            return Ok(exit::OK);
        }
    }
    let mut config = record.config.clone();
    config.sites.retain(|s| s.domain != *domain);
    let text = edited(&config, edit::remove_site(&record.text, domain), out)?;
    apply(host, assets, config, Some(text), true, out)
}

pub fn list(out: &Output) -> Result<i32> {
    let Some(record) = read_record()? else {
        return Err(exit::invalid(format!(
            "no sites are recorded here ({DEFAULT_SITE_FILE} does not exist): `edgeup site add` or `edgeup apply` first"
        )));
    };
    for site in &record.config.sites {
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
        &Target {
            config,
            record_text,
        },
        &how,
        out,
    )
}

/// What a new site inherits: the shared settings of a `sites:` file, or
/// the one site's settings of a one-site file.
fn shared_defaults(record: &Record) -> RawSite {
    if record.file.is_multi() {
        let probe = SiteFile {
            sites: Some(vec![SiteEntry::default()]),
            ..record.file.clone()
        };
        if let Ok(sites) = probe.resolve()
            && let Some(site) = sites.into_iter().next()
        {
            return site;
        }
    }
    record.sites.first().cloned().unwrap_or_default()
}

/// The `sites:` entry for `site`: its own keys, and the shared ones only
/// where it differs from them.
fn entry_of(site: &RawSite, shared: &RawSite) -> SiteEntry {
    let a = &site.acme;
    let b = &shared.acme;
    let differ = |x: bool| x.then_some(());
    let acme = AcmeKeys {
        directory: differ(a.directory != b.directory).map(|()| a.directory.clone()),
        ca_bundle: differ(a.ca_bundle != b.ca_bundle).and(a.ca_bundle.clone()),
        client: differ(a.client != b.client).map(|()| a.client.clone()),
        key_type: differ(a.key_type != b.key_type).map(|()| a.key_type.clone()),
        eab: differ(a.eab != b.eab).and(a.eab.clone()),
        preflight: differ(a.preflight != b.preflight).map(|()| a.preflight),
        validation_port: differ(a.validation_port != b.validation_port).map(|()| a.validation_port),
    };
    SiteEntry {
        domain: site.domain.clone(),
        aliases: site.aliases.clone(),
        backends: site.backends.clone(),
        routing: (site.routing != RawSite::default().routing).then(|| site.routing.clone()),
        health: site.health.clone(),
        email: (site.email != shared.email)
            .then(|| site.email.clone())
            .flatten(),
        hsts: (site.hsts != shared.hsts).then_some(site.hsts).flatten(),
        acme: (acme != AcmeKeys::default()).then_some(acme),
    }
}

/// The record's new text: the textual edit when it describes exactly
/// `config`, else the whole configuration written out (the comments are
/// then lost, and the user is told).
fn edited(config: &Config, edit: Result<String>, out: &Output) -> Result<String> {
    if let Ok(text) = edit
        && Config::from_text(&text).as_ref() == Some(config)
    {
        return Ok(text);
    }
    if !out.json {
        eprintln!(
            "note: {DEFAULT_SITE_FILE} could not be edited in place (its layout is not the block \
             style edgeup edits); it is rewritten whole, without its comments (the old file is \
             kept in /var/lib/edgeup/backups/)"
        );
    }
    Ok(format!(
        "# The sites edgeup serves (written by `edgeup site`). Edit it and run `edgeup apply`.\n{}",
        config.to_yaml()?
    ))
}
