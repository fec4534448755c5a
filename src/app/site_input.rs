//! Builds the `Site` from a YAML file and/or flags, and validates it whole.
//! Every error here exits with INVALID_INPUT before the host is touched.

use crate::cli::SiteArgs;
use crate::exit;
use crate::site::{self, Site};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Where `edgeup init` writes the site, and where plan/apply look by default.
pub const DEFAULT_SITE_FILE: &str = "/etc/edgeup/site.yaml";

pub fn build(args: &SiteArgs) -> Result<Site> {
    let file = match &args.site_file {
        Some(path) => Some(path.clone()),
        None if args.domain.is_none() && Path::new(DEFAULT_SITE_FILE).exists() => {
            Some(PathBuf::from(DEFAULT_SITE_FILE))
        }
        None => None,
    };
    let mut site = match &file {
        Some(path) => load_file(path)?,
        None => {
            let Some(domain) = &args.domain else {
                return Err(exit::invalid(
                    "no site given: pass --domain D --email E --backend HOST:PORT, \
                     or -f site.yaml (or run `edgeup init`)",
                ));
            };
            Site {
                domain: domain.clone(),
                ..Site::default()
            }
        }
    };
    overlay(&mut site, args)?;
    let problems = site::validate(&site);
    if !problems.is_empty() {
        let mut message = format!(
            "the site configuration has {} problem{} (nothing was changed):",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for p in &problems {
            message.push_str(&format!("\n  - {p}"));
        }
        return Err(exit::invalid(message));
    }
    Ok(site)
}

fn load_file(path: &Path) -> Result<Site> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| exit::invalid(format!("cannot read site file {}: {e}", path.display())))?;
    serde_saphyr::from_str::<Site>(&text).map_err(|e| {
        exit::invalid(format!(
            "site file {} is not valid: {e}\n(see README: \"Site file\" for every key)",
            path.display()
        ))
    })
}

/// Flags override what the file says.
fn overlay(site: &mut Site, args: &SiteArgs) -> Result<()> {
    if let Some(v) = &args.domain {
        site.domain = v.clone();
    }
    if let Some(v) = &args.email {
        site.email = Some(v.clone());
    }
    if !args.backends.is_empty() {
        site.backends = args.backends.clone();
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
    if let Some(v) = &args.routing {
        site.routing = v.clone();
    }
    if let Some(v) = &args.firewall {
        site.firewall = v.clone();
    }
    if args.skip_preflight {
        site.acme.preflight = false;
    }
    if let Some(v) = &args.hsts {
        site.hsts = Some(match v.as_str() {
            "on" | "true" | "yes" => true,
            "off" | "false" | "no" => false,
            other => {
                return Err(exit::invalid(format!(
                    "--hsts: \"{other}\" is not on or off; use --hsts on or --hsts off"
                )));
            }
        });
    }
    Ok(())
}
