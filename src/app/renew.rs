//! `edgeup renew`: only the certificate steps (account, certificate) and the
//! handlers they notify, for the site last applied (/etc/edgeup/site.yaml).
//! `--from-certbot` is what certbot's deploy hook runs: the same steps, but
//! they install the certificate certbot renewed and never ask the CA.

use crate::assets::Assets;
use crate::cli::{Output, RenewArgs};
use crate::exit;
use crate::host::Host;
use crate::paths::STATE_DIR;
use crate::run::{self, Desired, Run};
use crate::site::AcmeClient;
use crate::steps::Renewal;
use anyhow::Result;

pub fn run(host: &Host, assets: &Assets, args: &RenewArgs, out: &Output) -> Result<i32> {
    run::require_root("renew")?;
    let config = super::site_input::build(&args.converge.site.flags())?;
    if let Some(only) = &args.only
        && config.site(only).is_none()
    {
        return Err(exit::invalid(format!(
            "{only} is not one of the sites ({}); `edgeup site list` shows them",
            config.domains().join(", ")
        )));
    }
    let renewal = match (args.force, args.from_certbot) {
        (true, _) => Renewal::Forced,
        (false, true) => Renewal::FromCertbot,
        (false, false) => Renewal::WhenDue,
    };
    if renewal == Renewal::FromCertbot {
        let site = args.only.as_deref().and_then(|d| config.site(d));
        if let Some(site) =
            site.filter(|s| !s.acme.enabled() || s.acme.client != AcmeClient::Certbot)
        {
            return Err(exit::invalid(format!(
                "--from-certbot: {} does not get its certificate from certbot (acme.client: {}, \
                 acme.directory: {}); run `edgeup renew {}` instead",
                site.domain,
                site.acme.client,
                site.acme.directory.url().unwrap_or("off"),
                site.domain
            )));
        }
        if let Some(pid) = host.lock_held_by_ancestor(STATE_DIR) {
            if !out.json && out.verbosity != crate::report::Verbosity::Quiet {
                crate::outln!(
                    "certbot was started by the edgeup run holding the lock (pid {pid}); \
                     that run installs the certificate"
                );
            }
            return Ok(exit::OK);
        }
    }
    let due: Vec<&str> = config
        .sites
        .iter()
        .filter(|s| s.acme.enabled() && args.only.as_ref().is_none_or(|o| *o == s.domain))
        .map(|s| s.domain.as_str())
        .collect();
    if due.is_empty() {
        if !out.json && out.verbosity != crate::report::Verbosity::Quiet {
            crate::outln!(
                "acme.directory is off for {}: nothing to renew",
                args.only
                    .clone()
                    .unwrap_or_else(|| config.domains().join(", "))
            );
        }
        return Ok(exit::OK);
    }
    let mut reporter = crate::report::for_output(out.json, out.verbosity, false);
    let target = Desired {
        config,
        record_text: None,
    };
    let recap = run::converge(
        host,
        assets,
        &target,
        &args.converge.playbook,
        Run::renew(renewal, args.only.as_deref()),
        reporter.as_mut(),
    )?;
    Ok(if recap.failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}
