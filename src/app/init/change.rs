//! The answers as a change of the site file, decided before anything is
//! written: a new one-site file; or, in a file that has sites, one site
//! added, edited or removed. Only the one-site form is rewritten whole (with
//! a comment per key, as `init` always wrote it); a `sites:` file and a
//! one-site file that gains a site are edited in place, so the user's
//! comments and the other sites stay as they were.

use super::ask::Ask;
use super::file;
use super::menu::{self, Choice};
use super::questions::{Hints, Reach, Scope, blank_site, interview, interview_in};
use crate::app::site_edit::{self, Change, Record};
use crate::app::site_input;
use crate::exit;
use crate::site::{self, Config, RawSite};
use anyhow::Result;
use std::path::Path;

/// What to do with the file.
pub enum Decision {
    /// Write `text` (0600): the file describing `config`.
    Write { config: Config, text: String },
    /// The file already says this: left as it is.
    Same { config: Config },
    /// The removal was not confirmed: nothing to write or plan.
    Declined,
}

/// Asks what to do and the questions that follow (`path` only names the
/// file in notes).
pub fn decide(
    ask: &mut dyn Ask,
    existing: Option<&Record>,
    hints: &Hints,
    reach: Reach,
    path: &Path,
) -> Result<Decision> {
    let Some(record) = existing else {
        let site = interview(ask, blank_site(), hints, reach)?;
        return one_site(site, None);
    };
    match menu::choose(ask, &record.domains())? {
        Choice::Add => {
            let scope = Scope {
                others: &record.sites,
                entry: true,
            };
            let site = interview_in(ask, record.new_site(), hints, reach, scope)?;
            checked(ask, record.add(&site)?, path)
        }
        Choice::Edit(domain) => edit(ask, record, &domain, hints, reach, path),
        Choice::Remove(domain) => {
            site_edit::check_removable(&record.sites, &domain)?;
            if !ask.confirm(&site_edit::remove_question(&domain), false)? {
                return Ok(Decision::Declined);
            }
            checked(ask, record.remove(&domain)?, path)
        }
    }
}

fn edit(
    ask: &mut dyn Ask,
    record: &Record,
    domain: &str,
    hints: &Hints,
    reach: Reach,
    path: &Path,
) -> Result<Decision> {
    let Some(old) = record.site(domain) else {
        return Err(exit::invalid(format!(
            "{domain} is not a site in {}; nothing was written",
            path.display()
        )));
    };
    if !record.file.is_multi() {
        // The one-site form: every question (the firewall too), as always.
        let site = interview(ask, old.clone(), hints, reach)?;
        return one_site(site, Some(old));
    }
    let others: Vec<RawSite> = (record.sites.iter())
        .filter(|s| s.domain != domain)
        .cloned()
        .collect();
    let scope = Scope {
        others: &others,
        entry: true,
    };
    let site = interview_in(ask, old.clone(), hints, reach, scope)?;
    if site == *old {
        return Ok(Decision::Same {
            config: record.config()?,
        });
    }
    checked(ask, record.replace(domain, &site)?, path)
}

/// The one-site file for `site`, unless `old` already is that site.
fn one_site(site: RawSite, old: Option<&RawSite>) -> Result<Decision> {
    let config = site::validate_config(std::slice::from_ref(&site), None)
        .map_err(|problems| site_input::refuse(&problems))?;
    if old == Some(&site) {
        return Ok(Decision::Same { config });
    }
    let text = file::rendered(&site)?;
    Ok(Decision::Write { config, text })
}

/// The change, once the whole configuration is valid (the other sites and
/// the shared keys included: the interview judged one site only).
fn checked(ask: &mut dyn Ask, change: Change, path: &Path) -> Result<Decision> {
    let written = Record::parse(change.text.clone(), path)?;
    let config = site::validate_config(&change.sites, Some(&written.file))
        .map_err(|problems| site_input::refuse(&problems))?;
    if change.rewritten {
        ask.warn(&site_edit::rewrite_note(path));
    }
    Ok(Decision::Write {
        config,
        text: change.text,
    })
}
