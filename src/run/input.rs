//! A run's input: what to converge the host to, and how to walk the playbook.

use crate::engine::Mode;
use crate::site::Config;
use crate::steps::Renewal;

/// What to converge the host to: the configuration, and the text to record
/// for it (a user's file or an edited record, comments and all; None: edgeup
/// writes the configuration out itself).
pub struct Desired {
    pub config: Config,
    pub record_text: Option<String>,
}

/// How to walk the playbook.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub mode: Mode,
    /// Only steps with this tag (`certificate` for `edgeup renew`).
    pub only_tag: Option<&'static str>,
    /// Only this site's steps (`edgeup renew DOMAIN`).
    pub only_site: Option<&'a str>,
    /// What certificate steps may do (`--force`, `--from-certbot`).
    pub renewal: Renewal,
}

impl<'a> Run<'a> {
    pub fn plan() -> Run<'a> {
        Run {
            mode: Mode::Plan,
            only_tag: None,
            only_site: None,
            renewal: Renewal::WhenDue,
        }
    }

    pub fn apply() -> Run<'a> {
        Run {
            mode: Mode::Apply,
            ..Run::plan()
        }
    }

    pub fn renew(renewal: Renewal, only_site: Option<&'a str>) -> Run<'a> {
        Run {
            mode: Mode::Apply,
            only_tag: Some("certificate"),
            only_site,
            renewal,
        }
    }
}
