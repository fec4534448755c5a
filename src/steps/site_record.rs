//! The sites as last applied, kept at /etc/edgeup/site.yaml (0600: it may
//! hold an EAB key) so `edgeup renew`, `edgeup site` and the renewal timer
//! work without flags. A file that already describes the same sites
//! (comments and all, in either file form) is left alone.

use super::directory::{AttrChange, attr_changes, attr_lines};
use super::{Ctx, Describe, State, Step};
use crate::host::FileAttrs;
use crate::site::config::from_secret_yaml;
use crate::site::{Config, SiteFile};
use anyhow::Result;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteRecord {
    pub path: String,
}

const ATTRS: FileAttrs = FileAttrs {
    mode: 0o600,
    uid: 0,
    gid: 0,
};

/// What differs about the record: the sites it describes (it is written
/// anew), and its mode/owner.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDrift {
    path: String,
    rewrite: bool,
    attrs: Vec<AttrChange>,
}

impl Describe for RecordDrift {
    fn lines(&self) -> Vec<String> {
        let record = self
            .rewrite
            .then(|| format!("record the sites in {}", self.path));
        record.into_iter().chain(attr_lines(&self.attrs)).collect()
    }
}

impl Step for SiteRecord {
    type Drift = RecordDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<RecordDrift>> {
        let current = ctx.host.read_string(&self.path)?;
        // Parsed once; a record naming the former responder default is
        // rewritten without it.
        let file = current
            .as_deref()
            .and_then(|text| from_secret_yaml::<SiteFile>(text).ok());
        let legacy = file.as_ref().is_some_and(SiteFile::names_legacy_responder);
        // Compared typed: spellings that mean the same site are the same.
        let same = !legacy
            && file
                .as_ref()
                .and_then(Config::from_file)
                .is_some_and(|recorded| recorded == ctx.vars.config);
        let attrs = match ctx.host.stat(&self.path)? {
            Some(stat) => attr_changes(ctx.host, &stat, &ATTRS, &self.path),
            None => Vec::new(),
        };
        if same && attrs.is_empty() {
            return Ok(State::Converged(format!(
                "{} describes these sites",
                self.path
            )));
        }
        Ok(State::Drift(RecordDrift {
            path: self.path.clone(),
            rewrite: !same,
            attrs,
        }))
    }

    fn apply(&self, ctx: &Ctx, drift: &RecordDrift) -> Result<()> {
        if !drift.rewrite {
            return ctx.host.set_attrs(&self.path, &ATTRS);
        }
        let text = match &ctx.vars.record_text {
            Some(text) => text.clone(),
            None => format!(
                "# The sites edgeup last applied (written by `edgeup apply`; `edgeup renew`,\n# `edgeup site` and the renewal timer read it). Edit it and run `edgeup apply` again.\n{}",
                ctx.vars.config.to_yaml()?
            ),
        };
        if let Some(dir) = std::path::Path::new(&self.path).parent() {
            ctx.host.ensure_dir(
                &dir.to_string_lossy(),
                &FileAttrs {
                    mode: 0o755,
                    ..ATTRS
                },
            )?;
        }
        // A reload that fails afterwards puts the previous record back with
        // the configuration: the record says what HAProxy serves.
        ctx.replace(ctx.host.stage(&self.path, text.as_bytes(), &ATTRS, None)?)
    }
}
