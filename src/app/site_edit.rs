//! A site file changed one site at a time, for `edgeup site add|remove` and
//! `edgeup init`: the file as read, what a new site inherits, the `sites:`
//! entry written for a site, and the edited text. The text is edited in
//! place (comments and order kept) and checked to describe exactly the
//! intended sites; when it cannot be, the whole configuration is written
//! out instead and the change says so.

use super::site_input;
use crate::exit;
use crate::site::config::{self, AcmeKeys, SiteEntry};
use crate::site::{self as sites, Config, RawSite, SiteFile, edit};
use anyhow::Result;
use std::path::Path;

/// A site file as read: its text, the raw file and its sites as written
/// (resolved, not judged: `init` may be fixing them).
pub struct Record {
    pub text: String,
    pub file: SiteFile,
    pub sites: Vec<RawSite>,
}

/// The sites after a change (as written), and the file's new text.
pub struct Change {
    pub sites: Vec<RawSite>,
    pub text: String,
    /// The text is the configuration written out whole (the file could not
    /// be edited in place; its comments are gone).
    pub rewritten: bool,
}

impl Record {
    /// `text`, read from `path`: its shape, then its sites (values are not judged).
    pub fn parse(text: String, path: &Path) -> Result<Record> {
        let file = site_input::parse(&text, path)?;
        let sites = file.resolve().map_err(|p| site_input::refuse(&p))?;
        Ok(Record { text, file, sites })
    }

    /// The sites, validated (exit 2 naming every problem otherwise).
    pub fn config(&self) -> Result<Config> {
        sites::validate_config(&self.sites, Some(&self.file)).map_err(|p| site_input::refuse(&p))
    }

    pub fn site(&self, domain: &str) -> Option<&RawSite> {
        self.sites.iter().find(|s| s.domain == domain)
    }

    pub fn domains(&self) -> Vec<&str> {
        self.sites.iter().map(|s| s.domain.as_str()).collect()
    }

    /// What a new site inherits: the shared settings of a `sites:` file, or
    /// the one site's settings of a one-site file.
    pub fn shared_defaults(&self) -> RawSite {
        if self.file.is_multi() {
            let probe = SiteFile {
                sites: Some(vec![SiteEntry::default()]),
                ..self.file.clone()
            };
            if let Ok(sites) = probe.resolve()
                && let Some(site) = sites.into_iter().next()
            {
                return site;
            }
        }
        self.sites.first().cloned().unwrap_or_default()
    }

    /// A new site before its own keys are set: the shared settings only.
    pub fn new_site(&self) -> RawSite {
        RawSite {
            domain: String::new(),
            aliases: Vec::new(),
            backends: Vec::new(),
            routing: RawSite::default().routing,
            health: None,
            ..self.shared_defaults()
        }
    }

    /// `new` after the other sites (a one-site file becomes the `sites:`
    /// form: its site's keys move into the first entry).
    pub fn add(&self, new: &RawSite) -> Result<Change> {
        let shared = self.shared_defaults();
        let new = inheriting(new, &shared);
        let entry = entry_yaml(&new, &shared)?;
        let mut sites = self.sites.clone();
        sites.push(new);
        change(sites, edit::add_site(&self.text, &entry))
    }

    /// Site `domain` as `new`, in its place (the others untouched).
    pub fn replace(&self, domain: &str, new: &RawSite) -> Result<Change> {
        let shared = self.shared_defaults();
        let new = inheriting(new, &shared);
        let entry = entry_yaml(&new, &shared)?;
        let mut sites = self.sites.clone();
        for site in &mut sites {
            if site.domain == domain {
                *site = new.clone();
            }
        }
        change(sites, edit::replace_site(&self.text, domain, &entry))
    }

    /// Site `domain` gone; refused for the last one.
    pub fn remove(&self, domain: &str) -> Result<Change> {
        check_removable(&self.sites, domain)?;
        let mut sites = self.sites.clone();
        sites.retain(|s| s.domain != domain);
        change(sites, edit::remove_site(&self.text, domain))
    }
}

/// A site file needs a site: the last one cannot be removed.
pub fn check_removable(sites: &[RawSite], domain: &str) -> Result<()> {
    if sites.len() > 1 {
        return Ok(());
    }
    Err(exit::invalid(format!(
        "{domain} is the only site; edgeup needs at least one (nothing was changed). Add the \
         next one first (`edgeup site add`, or \"Add a site\" in `edgeup init`), change this one \
         (\"Edit {domain}\" in `edgeup init`), or replace it with \
         `edgeup apply --domain NEW ... --replace`"
    )))
}

/// The question before a site is removed (the answer's default is no).
pub fn remove_question(domain: &str) -> String {
    format!(
        "Remove {domain}? Its route leaves HAProxy and its certificate is archived under \
         /var/lib/edgeup/archive"
    )
}

/// What to tell the user when `path` was rewritten whole.
pub fn rewrite_note(path: &Path) -> String {
    format!(
        "{} could not be edited in place (its layout is not the block style edgeup \
         edits); it is rewritten whole, without its comments",
        path.display()
    )
}

/// `site` as its entry will read back: an entry cannot unset a shared
/// email or hsts, so where the site leaves one unset it takes the value
/// that means the same (the shared email, unused without ACME or refused
/// by validation with it; hsts as it would be rendered).
fn inheriting(site: &RawSite, shared: &RawSite) -> RawSite {
    let mut site = site.clone();
    if site.email.is_none() {
        site.email = shared.email.clone();
    }
    if site.hsts.is_none() && shared.hsts.is_some() {
        site.hsts = Some(site.hsts_enabled());
    }
    site
}

fn entry_yaml(site: &RawSite, shared: &RawSite) -> Result<String> {
    serde_saphyr::to_string(&entry_of(site, shared))
        .map_err(|e| anyhow::anyhow!("encoding the site {} as YAML: {e}", site.domain))
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
        challenge: differ(a.challenge != b.challenge).map(|()| a.challenge.clone()),
        dns: differ(a.dns != b.dns).and(a.dns.clone()),
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

/// The change: the textual edit when it describes exactly `sites`, else
/// the sites written out whole.
fn change(sites: Vec<RawSite>, edit: Result<String>) -> Result<Change> {
    if let Ok(text) = edit
        && config::raw_sites(&text).as_ref() == Some(&sites)
    {
        return Ok(Change {
            sites,
            text,
            rewritten: false,
        });
    }
    let text = format!(
        "# The sites edgeup serves (rewritten whole by edgeup: the previous file could not be \
         edited in place). Edit it and run `edgeup apply`.\n{}",
        config::yaml_of(&sites)?
    );
    Ok(Change {
        sites,
        text,
        rewritten: true,
    })
}

impl Change {
    /// The changed sites, validated as the file `text` (problems name its keys).
    pub fn config(&self) -> Result<Config> {
        let file = site_input::parse(&self.text, Path::new(crate::paths::SITE_FILE))?;
        sites::validate_config(&self.sites, Some(&file)).map_err(|p| site_input::refuse(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Record {
        Record::parse(text.to_string(), Path::new("site.yaml")).expect("a valid record")
    }

    const ONE: &str = "# mine\ndomain: a.example.com\nemail: ops@example.com\nbackends: [127.0.0.1:3000]\nhsts: false\n";

    #[test]
    fn a_new_site_inherits_the_shared_keys_and_its_entry_only_what_differs() {
        let record = record(ONE);
        let mut new = record.new_site();
        assert_eq!(
            (new.email.as_deref(), new.hsts, new.backends.len()),
            (Some("ops@example.com"), Some(false), 0)
        );
        new.domain = "b.example.com".into();
        new.backends = vec!["127.0.0.1:3001".into()];
        new.acme.key_type = "rsa-2048".into();
        let change = record.add(&new).expect("added");
        assert!(!change.rewritten, "{}", change.text);
        assert_eq!(
            change
                .sites
                .iter()
                .map(|s| s.domain.as_str())
                .collect::<Vec<_>>(),
            ["a.example.com", "b.example.com"]
        );
        assert_eq!(
            change.text,
            "email: ops@example.com\nhsts: false\nsites:\n  # mine\n  - domain: a.example.com\n    \
             backends: [127.0.0.1:3000]\n  - domain: b.example.com\n    backends:\n    - \
             127.0.0.1:3001\n    acme:\n      key_type: rsa-2048\n"
        );
    }

    #[test]
    fn an_unset_email_or_hsts_takes_the_shared_meaning_and_keeps_the_edit_in_place() {
        let record = record(ONE);
        let mut new = record.new_site();
        new.domain = "b.example.com".into();
        new.backends = vec!["127.0.0.1:3001".into()];
        new.email = None;
        new.hsts = None;
        let change = record.add(&new).expect("added");
        assert!(!change.rewritten, "{}", change.text);
        let added = &change.sites[1];
        assert_eq!(
            (added.email.as_deref(), added.hsts),
            (Some("ops@example.com"), Some(true))
        );
    }

    #[test]
    fn a_layout_edit_rejects_is_rewritten_whole_and_said_so() {
        let text = "sites: [{domain: a.example.com, backends: [127.0.0.1:3000]}, {domain: b.example.com, backends: [127.0.0.1:3001]}]\n";
        let change = record(text).remove("a.example.com").expect("removed");
        assert!(change.rewritten);
        assert_eq!(change.sites.len(), 1);
        assert_eq!(change.sites[0].domain, "b.example.com");
        assert_eq!(
            config::raw_sites(&change.text).expect("reads back"),
            change.sites
        );
    }

    #[test]
    fn the_last_site_is_not_removed() {
        let Err(err) = record(ONE).remove("a.example.com") else {
            panic!("the last site removed");
        };
        assert_eq!(exit::code_of(&err), exit::INVALID_INPUT);
        let message = err.to_string();
        assert!(
            message.contains("a.example.com is the only site"),
            "{message}"
        );
        assert!(message.contains("Add a site"), "{message}");
    }
}
