//! Command-line interface (clap). Subcommands map to `app::*`, which reads
//! them; what they carry leaves here as plain data (`Output`, `Flags`).

use crate::report::Verbosity;
use crate::site::{AcmeClient, FirewallBackend};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "edgeup",
    version = env!("EDGEUP_VERSION"),
    about = "Put a web app (e.g. Open WebUI) behind HAProxy with HTTPS, idempotently",
    after_help = "Exit codes: 0 ok, 1 a step failed, 2 invalid input (nothing changed), \
3 plan has changes, 4 another run holds the lock, 5 host unsuitable (not root, no systemd, unsupported distro), \
6 status: not healthy."
)]
pub struct Cli {
    /// Read distros/, playbooks/ and templates/ from this directory first (files
    /// found there override the embedded ones).
    #[arg(long, global = true, env = "EDGEUP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// One JSON object per line; the last line is the recap.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show every step's details and file diffs.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only failures, warnings and the recap.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what this host is: distro, package manager, systemd, firewall, SELinux, tool versions.
    Detect,
    /// Check every step and show what would change (with diffs); changes nothing.
    Plan(ConvergeArgs),
    /// Converge the host: act only where a step's check finds drift.
    Apply(ApplyArgs),
    /// Renew the certificate when due (only the certificate steps; quiet with -q
    /// when there is nothing to do). Run by edgeup-renew.timer.
    Renew(RenewArgs),
    /// Ask a few questions (on a terminal), write the site file, show the plan
    /// and offer to apply it. Re-running edits the existing answers.
    Init(InitArgs),
    /// Is the site healthy? HAProxy, certificate, renewal timer, and HTTPS and
    /// websocket probes through loopback (exit 0 healthy, 6 not).
    Status(StatusArgs),
    /// Print a shell completion script, e.g. `edgeup completions bash > /etc/bash_completion.d/edgeup`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into --dir.
    Man(ManArgs),
    /// Apply (or plan) a site on many hosts over OpenSSH, in parallel, with one recap.
    Fleet(FleetArgs),
    /// Add, remove or list the sites this host serves (edits /etc/edgeup/site.yaml, then converges).
    #[command(subcommand)]
    Site(SiteCommand),
    /// Undo what apply did: the original haproxy.cfg back, edgeup's units, files, firewall
    /// rules and SELinux changes gone; keys and the ACME account archived. Shows the list first.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short, long)]
    pub yes: bool,
    /// Only show what would be undone (exit 3 when there is something).
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Delete certificates, keys, the ACME account and the certbot lineages edgeup
    /// created instead of archiving or keeping them.
    #[arg(long)]
    pub purge: bool,
    /// Also remove the packages edgeup installed (and only those).
    #[arg(long)]
    pub remove_packages: bool,
    /// Restore the original haproxy.cfg even when `haproxy -c` rejects it.
    #[arg(long)]
    pub force: bool,
}

// Parsed once per run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Add a site beside the others, then converge (the other sites are untouched).
    Add(SiteAddArgs),
    /// Remove a site, then converge: its route leaves HAProxy, its certificate is archived.
    Remove(SiteRemoveArgs),
    /// The sites in the record, one per line (or JSON).
    List,
}

#[derive(Debug, Args)]
pub struct SiteAddArgs {
    /// The new site (--domain and --backend at least; other flags default to the shared settings).
    #[command(flatten)]
    pub site: SiteArgs,
    /// Do not ask for confirmation on a terminal.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct SiteRemoveArgs {
    /// The site's domain.
    pub domain: String,
    /// Do not ask for confirmation on a terminal.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Inventory YAML: defaults, groups, hosts (address, user, port, identity, become, site overrides).
    #[arg(short = 'i', long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// A host to add: user@address[:port] (repeatable).
    #[arg(long = "host", value_name = "USER@ADDR[:PORT]")]
    pub hosts: Vec<String>,
    /// Only these hosts or groups (comma-separated, repeatable).
    #[arg(long)]
    pub limit: Vec<String>,
    /// How many hosts at once (each is one ssh process on this machine).
    #[arg(long, default_value_t = 16)]
    pub forks: usize,
    /// Check only (`edgeup plan` on every host); nothing is changed there.
    #[arg(long)]
    pub plan: bool,
    /// Trust a host key seen for the first time (OpenSSH accept-new); known keys are always checked.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Cut off a host whose session has not ended after SECS seconds (that host fails alone).
    #[arg(long, value_name = "SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Directory with edgeup-<arch> builds (e.g. edgeup-aarch64) for other architectures.
    #[arg(long, value_name = "DIR")]
    pub binary_dir: Option<PathBuf>,
    /// The site every host starts from (inventory `defaults.site` and host `site` override it).
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Site file to edit and write (0600).
    #[arg(short = 'f', long = "site", value_name = "FILE", default_value = crate::paths::SITE_FILE)]
    pub site_file: PathBuf,
    /// After writing the site file and showing the plan, apply without asking.
    #[arg(long, visible_alias = "yes", short = 'y')]
    pub apply: bool,
    /// Playbook name under playbooks/.
    #[arg(long, default_value = crate::playbook::DEFAULT_PLAYBOOK)]
    pub playbook: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this site (default: every site).
    #[arg(value_name = "DOMAIN")]
    pub only: Option<String>,
    #[command(flatten)]
    pub site: SiteArgs,
    /// Probe HTTPS at this address instead of the loopback form of listen.https[0]
    /// (SNI and Host are still the domain).
    #[arg(long, value_name = "IP:PORT")]
    pub connect: Option<std::net::SocketAddr>,
    /// Seconds to wait for each probe.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write edgeup.1 and edgeup-COMMAND.1 into this directory instead of
    /// printing edgeup.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// Only this site's certificate (default: every due one).
    #[arg(value_name = "DOMAIN")]
    pub only: Option<String>,
    #[command(flatten)]
    pub converge: ConvergeArgs,
    /// Renew now, even if the certificate is not due (and past a rate-limit back-off).
    #[arg(long)]
    pub force: bool,
    /// Install the certificate certbot holds for DOMAIN into HAProxy, never asking
    /// the CA (what certbot's deploy hook runs); waits for another edgeup run to end.
    #[arg(long, requires = "only", conflicts_with = "force")]
    pub from_certbot: bool,
}

#[derive(Debug, Args)]
pub struct ConvergeArgs {
    #[command(flatten)]
    pub site: SiteArgs,
    /// Playbook name under playbooks/.
    #[arg(long, default_value = crate::playbook::DEFAULT_PLAYBOOK)]
    pub playbook: String,
    /// With --domain and no site file: make it the only site, removing the
    /// others the host serves (without it, that is refused).
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub converge: ConvergeArgs,
    /// Do not ask for confirmation on a terminal.
    #[arg(short, long)]
    pub yes: bool,
    /// Show file diffs while applying.
    #[arg(long)]
    pub diff: bool,
}

/// The site, from a YAML file and/or flags (flags override the file).
#[derive(Debug, Args, Default, Clone)]
pub struct SiteArgs {
    /// Site file (YAML). Default: /etc/edgeup/site.yaml when no --domain is given.
    #[arg(short = 'f', long = "site", value_name = "FILE")]
    pub site_file: Option<PathBuf>,
    /// Public domain name, e.g. chat.example.com.
    #[arg(long)]
    pub domain: Option<String>,
    /// Contact email for the ACME account.
    #[arg(long)]
    pub email: Option<String>,
    /// App address HOST:PORT (repeat for replicas).
    #[arg(long = "backend", value_name = "HOST:PORT")]
    pub backends: Vec<String>,
    /// Another name for the site, on the same certificate (repeatable).
    #[arg(long = "alias", value_name = "NAME")]
    pub aliases: Vec<String>,
    /// HTTP health-check path of the app, e.g. /health.
    #[arg(long, value_name = "PATH")]
    pub health: Option<String>,
    /// letsencrypt | letsencrypt-staging | https://directory-url | off
    #[arg(long, value_name = "DIRECTORY")]
    pub acme_directory: Option<String>,
    /// PEM file of the CA that serves a custom ACME directory.
    #[arg(long, value_name = "PEM")]
    pub acme_ca_bundle: Option<PathBuf>,
    /// The ACME client.
    #[arg(long, value_name = "CLIENT")]
    pub acme_client: Option<AcmeClient>,
    /// subdomain | path:/PREFIX/
    #[arg(long)]
    pub routing: Option<String>,
    /// Which firewall to open ports 80 and 443 in.
    #[arg(long)]
    pub firewall: Option<FirewallBackend>,
    /// Send Strict-Transport-Security (default: on with ACME, off with the placeholder).
    #[arg(long, value_name = "on|off")]
    pub hsts: Option<Switch>,
    /// Do not prove the challenge path before ordering (split-horizon DNS).
    #[arg(long)]
    pub skip_preflight: bool,
}

/// `on` or `off` (also true/false, yes/no).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    #[value(alias = "true", alias = "yes")]
    On,
    #[value(alias = "false", alias = "no")]
    Off,
}

/// The global output flags, for every subcommand.
pub struct Output {
    pub json: bool,
    pub verbosity: Verbosity,
}

impl Cli {
    pub fn output(&self) -> Output {
        Output {
            json: self.json,
            verbosity: if self.quiet {
                Verbosity::Quiet
            } else if self.verbose {
                Verbosity::Verbose
            } else {
                Verbosity::Normal
            },
        }
    }
}

/// The site as given on the command line: each `Some` (or non-empty list)
/// overrides what the file says.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub site_file: Option<PathBuf>,
    pub domain: Option<String>,
    pub email: Option<String>,
    pub backends: Vec<String>,
    pub aliases: Vec<String>,
    pub health: Option<String>,
    pub acme_directory: Option<String>,
    pub acme_ca_bundle: Option<PathBuf>,
    pub acme_client: Option<AcmeClient>,
    pub routing: Option<String>,
    pub firewall: Option<FirewallBackend>,
    pub hsts: Option<bool>,
    pub skip_preflight: bool,
}

impl SiteArgs {
    /// The flags as plain data, for `site_input` (which knows no clap).
    pub fn flags(&self) -> Flags {
        Flags {
            site_file: self.site_file.clone(),
            domain: self.domain.clone(),
            email: self.email.clone(),
            backends: self.backends.clone(),
            aliases: self.aliases.clone(),
            health: self.health.clone(),
            acme_directory: self.acme_directory.clone(),
            acme_ca_bundle: self.acme_ca_bundle.clone(),
            acme_client: self.acme_client,
            routing: self.routing.clone(),
            firewall: self.firewall,
            hsts: self.hsts.map(|s| s == Switch::On),
            skip_preflight: self.skip_preflight,
        }
    }
}

/// `edgeup completions SHELL`: the completion script, generated from these definitions.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "edgeup", &mut script);
    script
}

/// `edgeup man`: edgeup.1 to `out`, or with `dir` one page per command
/// (edgeup.1, edgeup-apply.1, ...) written there; returns the files written.
pub fn write_man(
    dir: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<Vec<PathBuf>> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(command).render(out)?;
        return Ok(Vec::new());
    };
    // Built, so subcommands carry the global flags and their full bin names.
    command.build();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut page = |file: String, cmd: clap::Command| -> std::io::Result<()> {
        let path = dir.join(format!("{file}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.display_name(file))
            .source(format!("edgeup {}", env!("CARGO_PKG_VERSION")))
            .render(&mut buf)?;
        std::fs::write(&path, buf)?;
        written.push(path);
        Ok(())
    };
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        page(format!("edgeup-{}", sub.get_name()), sub.clone())?;
    }
    page("edgeup".into(), command)?;
    Ok(written)
}
