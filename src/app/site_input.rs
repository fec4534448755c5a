//! Builds the `Config` (every site) from a YAML file and/or flags, and
//! validates it whole. Every error here exits with INVALID_INPUT before the
//! host is touched. The flags arrive as `cli::Flags`, plain data: this
//! module knows no clap (`cli::SiteArgs::flags` makes them).

use crate::cli::Flags;
use crate::exit;
use crate::site::{self, Config, Problem, RawSite, SiteFile};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The old name, still used by `status`.
use crate::paths::SITE_FILE;

/// What the user asked for: the configuration, and the text of the file it
/// came from when flags changed nothing in it (recorded as written, comments
/// and all).
pub struct Input {
    pub config: Config,
    pub text: Option<String>,
}

pub fn build(args: &Flags) -> Result<Config> {
    Ok(read(args)?.config)
}

pub fn read(args: &Flags) -> Result<Input> {
    let file = match &args.site_file {
        Some(path) => Some(path.clone()),
        None if args.domain.is_none() && Path::new(SITE_FILE).exists() => {
            Some(PathBuf::from(SITE_FILE))
        }
        None => None,
    };
    let (raw, text) = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                exit::invalid(format!("cannot read site file {}: {e}", path.display()))
            })?;
            (parse(&text, path)?, Some(text))
        }
        None => {
            let Some(domain) = &args.domain else {
                return Err(exit::invalid(
                    "no site given: pass --domain D --email E --backend HOST:PORT, \
                     or -f site.yaml (or run `edgeup init`)",
                ));
            };
            let raw = SiteFile {
                domain: Some(domain.clone()),
                ..SiteFile::default()
            };
            (raw, None)
        }
    };
    let mut sites = raw.resolve().map_err(|p| refuse(&p))?;
    let unchanged = sites.clone();
    overlay(&mut sites, args, raw.is_multi())?;
    let config = site::validate_config(&sites, Some(&raw)).map_err(|p| refuse(&p))?;
    // Recorded as written only when that is what it means: no flag changed
    // it, and it does not name the former responder default.
    let text = text.filter(|_| sites == unchanged && !raw.names_legacy_responder());
    Ok(Input { config, text })
}

/// A site file's text as the raw file (shape only).
pub fn parse(text: &str, path: &Path) -> Result<SiteFile> {
    crate::site::config::from_secret_yaml::<SiteFile>(text).map_err(|e| {
        exit::invalid(format!(
            "site file {} is not valid: {e}\n(see README: \"Site file\" for every key)",
            path.display()
        ))
    })
}

/// The INVALID_INPUT error listing every problem.
pub fn refuse(problems: &[Problem]) -> anyhow::Error {
    let mut message = format!(
        "the site configuration has {} problem{} (nothing was changed):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        message.push_str(&format!("\n  - {p}"));
    }
    exit::invalid(message)
}

/// The sites recorded by the last apply, when the record exists and reads.
pub fn recorded() -> Option<Config> {
    std::fs::read_to_string(SITE_FILE)
        .ok()
        .and_then(|text| Config::from_text(&text))
}

/// `apply --domain D ...` (flags only) must not silently drop the other
/// sites the host serves: refused unless `--replace` says so.
pub fn refuse_silent_removal(args: &Flags, config: &Config, replace: bool) -> Result<()> {
    if replace || args.site_file.is_some() || args.domain.is_none() {
        return Ok(());
    }
    let Some(recorded) = recorded() else {
        return Ok(());
    };
    let dropped: Vec<&str> = recorded
        .domains()
        .into_iter()
        .filter(|d| config.site(d).is_none())
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    let domain = args.domain.as_deref().unwrap_or_default();
    Err(exit::invalid(format!(
        "this host serves {} (recorded in {SITE_FILE}); applying only --domain {domain} \
         would remove {}. Nothing was changed. To add {domain} beside them: \
         `edgeup site add --domain {domain} --backend HOST:PORT ...`; to make {domain} the only \
         site: the same command with --replace.",
        recorded.domains().join(", "),
        dropped.join(", "),
    )))
}

/// Flags override what the file says: the site's own flags (domain,
/// backends, aliases, routing, health) on a one-site configuration; the
/// shared ones on every site.
fn overlay(sites: &mut [RawSite], args: &Flags, multi: bool) -> Result<()> {
    let own = [
        ("--domain", args.domain.is_some()),
        ("--backend", !args.backends.is_empty()),
        ("--alias", !args.aliases.is_empty()),
        ("--routing", args.routing.is_some()),
        ("--health", args.health.is_some()),
    ];
    if multi && let Some((flag, _)) = own.iter().find(|(_, given)| *given) {
        return Err(exit::invalid(format!(
            "{flag} names one site, but the site file lists several under sites:; \
             edit the file, or use `edgeup site add` / `edgeup site remove`"
        )));
    }
    for site in sites {
        overlay_site(site, args);
    }
    Ok(())
}

/// Every flag given, written over one site (as the file would spell it:
/// the result is validated with the rest).
pub fn overlay_site(site: &mut RawSite, args: &Flags) {
    if let Some(v) = &args.domain {
        site.domain = v.clone();
    }
    if !args.backends.is_empty() {
        site.backends = args.backends.clone();
    }
    if !args.aliases.is_empty() {
        site.aliases = args.aliases.clone();
    }
    if let Some(v) = &args.routing {
        site.routing = v.clone();
    }
    if let Some(v) = &args.health {
        site.health = Some(v.clone());
    }
    if let Some(v) = &args.email {
        site.email = Some(v.clone());
    }
    if let Some(v) = &args.acme_directory {
        site.acme.directory = v.clone();
    }
    if let Some(v) = &args.acme_ca_bundle {
        site.acme.ca_bundle = Some(v.clone());
    }
    if let Some(v) = args.acme_client {
        site.acme.client = v.to_string();
    }
    if let Some(v) = args.firewall {
        site.firewall = v.to_string();
    }
    if args.skip_preflight {
        site.acme.preflight = false;
    }
    if args.hsts.is_some() {
        site.hsts = args.hsts;
    }
}
