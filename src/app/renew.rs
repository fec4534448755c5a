//! `edgeup renew`: only the certificate steps (account, certificate) and the
//! handlers they notify, for the site last applied (/etc/edgeup/site.yaml).

use super::converge::{self, Output, Run};
use crate::assets::Assets;
use crate::cli::RenewArgs;
use crate::exit;
use crate::host::Host;
use anyhow::Result;

pub fn run(host: &Host, assets: &Assets, args: &RenewArgs, out: &Output) -> Result<i32> {
    converge::require_root("renew")?;
    let site = super::site_input::build(&args.converge.site)?;
    if !site.acme.enabled() {
        if !out.json && out.verbosity != crate::report::Verbosity::Quiet {
            crate::outln!(
                "acme.directory is off for {}: nothing to renew",
                site.domain
            );
        }
        return Ok(exit::OK);
    }
    let mut reporter = crate::report::for_output(out.json, out.verbosity, false);
    let recap = converge::converge(
        host,
        assets,
        &site,
        &args.converge.playbook,
        Run::renew(args.force),
        reporter.as_mut(),
    )?;
    Ok(if recap.failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}
