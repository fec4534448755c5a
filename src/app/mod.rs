//! The CLI adapter: each subcommand reads its flags and files, calls the
//! library (`crate::run` for plan/apply/renew), and gives the exit code.

pub mod converge;
pub mod detect;
pub mod fleet;
pub mod init;
pub mod renew;
pub mod site;
pub mod site_edit;
pub mod site_input;
pub mod status;
pub mod summary;
pub mod uninstall;

use crate::assets::Assets;
use crate::cli::{Cli, Command};
use crate::host::Host;
use anyhow::Result;

pub fn run(cli: Cli) -> Result<i32> {
    let host = Host::real();
    let assets = Assets::new(cli.data_dir.clone());
    let out = cli.output();
    match &cli.command {
        Command::Detect => detect::run(&host, &assets, cli.json),
        Command::Plan(args) => converge::plan(&host, &assets, args, &out),
        Command::Apply(args) => converge::apply(&host, &assets, args, &out),
        Command::Renew(args) => renew::run(&host, &assets, args, &out),
        Command::Fleet(args) => fleet::run(args, cli.json, cli.verbose),
        Command::Init(args) => init::run(&host, &assets, args, &out),
        Command::Status(args) => status::run(&host, &assets, args, &out),
        Command::Site(crate::cli::SiteCommand::Add(args)) => site::add(&host, &assets, args, &out),
        Command::Site(crate::cli::SiteCommand::Remove(args)) => {
            site::remove(&host, &assets, args, &out)
        }
        Command::Site(crate::cli::SiteCommand::List) => site::list(&out),
        Command::Uninstall(args) => uninstall::run(&host, &assets, args, &out),
        Command::Completions(args) => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&crate::cli::completions(args.shell))
                .map_err(|e| anyhow::anyhow!("writing the completion script: {e}"))?;
            Ok(crate::exit::OK)
        }
        Command::Man(args) => {
            let written = crate::cli::write_man(args.dir.as_deref(), &mut std::io::stdout())
                .map_err(|e| anyhow::anyhow!("writing the man page: {e}"))?;
            for path in written {
                crate::outln!("{}", path.display());
            }
            Ok(crate::exit::OK)
        }
    }
}
