//! `edgeup renew`: only the certificate steps (account, certificate) and the
//! handlers they notify, for the site last applied (/etc/edgeup/site.yaml).

use crate::assets::Assets;
use crate::cli::{Output, RenewArgs};
use crate::exit;
use crate::host::Host;
use crate::run::{self, Desired, Run};
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
        Run::renew(args.force, args.only.as_deref()),
        reporter.as_mut(),
    )?;
    Ok(if recap.failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}
