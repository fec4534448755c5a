//! Builds the `Config` (every site) from a YAML file and/or flags, and
//! validates it whole. Every error here exits with INVALID_INPUT before the
//! host is touched.

use crate::cli::SiteArgs;
use crate::exit;
use crate::site::{self, Config, Problem, Site, SiteFile};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Where `edgeup init` and `edgeup site` write the sites, where `apply`
/// records them, and where plan/apply look by default.
pub const DEFAULT_SITE_FILE: &str = "/etc/edgeup/site.yaml";

/// What the user asked for: the configuration, and the text of the file it
/// came from when flags changed nothing in it (recorded as written, comments
/// and all).
pub struct Input {
    pub config: Config,
    pub text: Option<String>,
}

pub fn build(args: &SiteArgs) -> Result<Config> {
    Ok(read(args)?.config)
}

pub fn read(args: &SiteArgs) -> Result<Input> {
    let file = match &args.site_file {
        Some(path) => Some(path.clone()),
        None if args.domain.is_none() && Path::new(DEFAULT_SITE_FILE).exists() => {
            Some(PathBuf::from(DEFAULT_SITE_FILE))
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
    let mut config = raw.resolve().map_err(|p| refuse(&p))?;
    let unchanged = config.clone();
    overlay(&mut config, args, raw.is_multi())?;
    let problems = site::validate_config(&config, Some(&raw));
    if !problems.is_empty() {
        return Err(refuse(&problems));
    }
    // Recorded as written only when that is what it means: no flag changed
    // it, and it does not name the former responder default.
    let text = text.filter(|_| config == unchanged && !raw.names_legacy_responder());
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
    std::fs::read_to_string(DEFAULT_SITE_FILE)
        .ok()
        .and_then(|text| Config::from_text(&text))
}

/// `apply --domain D ...` (flags only) must not silently drop the other
/// sites the host serves: refused unless `--replace` says so.
pub fn refuse_silent_removal(args: &SiteArgs, config: &Config, replace: bool) -> Result<()> {
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
        "this host serves {} (recorded in {DEFAULT_SITE_FILE}); applying only --domain {domain} \
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
fn overlay(config: &mut Config, args: &SiteArgs, multi: bool) -> Result<()> {
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
    let hsts = hsts_flag(args)?;
    for site in &mut config.sites {
        overlay_site(site, args, hsts);
    }
    Ok(())
}

/// `--hsts on|off` as a boolean.
pub fn hsts_flag(args: &SiteArgs) -> Result<Option<bool>> {
    match args.hsts.as_deref() {
        None => Ok(None),
        Some("on" | "true" | "yes") => Ok(Some(true)),
        Some("off" | "false" | "no") => Ok(Some(false)),
        Some(other) => Err(exit::invalid(format!(
            "--hsts: \"{other}\" is not on or off; use --hsts on or --hsts off"
        ))),
    }
}

/// Every flag given, written over one site.
pub fn overlay_site(site: &mut Site, args: &SiteArgs, hsts: Option<bool>) {
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
    if let Some(v) = &args.acme_client {
        site.acme.client = v.clone();
    }
    if let Some(v) = &args.firewall {
        site.firewall = v.clone();
    }
    if args.skip_preflight {
        site.acme.preflight = false;
    }
    if hsts.is_some() {
        site.hsts = hsts;
    }
}
