//! `edgeup fleet apply|plan`: wiring the CLI to `crate::fleet`.

use crate::cli::FleetArgs;
use crate::exit;
use crate::fleet::host::{HostOutcome, HostRun};
use crate::fleet::inventory::{self, Inventory};
use crate::fleet::progress::Progress;
use crate::fleet::ssh::Ssh;
use crate::fleet::{Binaries, report, run_all};
use crate::report::{Event, Line, Status};
use anyhow::Result;
use std::io::IsTerminal;
use std::sync::Mutex;

pub fn run(args: &FleetArgs, json: bool, verbose: bool) -> Result<i32> {
    let command = if args.plan { "plan" } else { "apply" };
    let mut inv = match &args.inventory {
        Some(path) => inventory::load(path).map_err(|e| exit::invalid(format!("{e:#}")))?,
        None => Inventory::default(),
    };
    for spec in &args.hosts {
        let (name, settings) =
            inventory::parse_host_flag(spec).map_err(|e| exit::invalid(format!("{e:#}")))?;
        inv.hosts.insert(name, settings);
    }
    let base_site = if args.site.site_file.is_some() || args.site.domain.is_some() {
        Some(super::site_input::build(&args.site.flags())?)
    } else {
        None
    };
    let limit: Vec<String> = args
        .limit
        .iter()
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let targets = inventory::targets(&inv, base_site.as_ref(), &limit)
        .map_err(|e| exit::invalid(format!("{e:#}")))?;
    let binaries = Binaries::discover(args.binary_dir.as_deref())?;
    let print = Mutex::new(());
    // A person at a terminal gets the live summary, not every host's steps.
    let progress = (!json && !verbose && std::io::stdout().is_terminal()).then(|| {
        let width = targets.iter().map(|t| t.name.len()).max().unwrap_or(0);
        Progress::new(targets.len(), width)
    });
    let outcomes: Vec<HostOutcome> = run_all(&targets, args.forks, |target| {
        let started = std::time::Instant::now();
        if let Some(p) = &progress {
            p.started();
        }
        let mut failures = Vec::new();
        let job = HostRun {
            ssh: Ssh {
                target,
                accept_new_host_keys: args.accept_new_host_keys,
                timeout: std::time::Duration::from_secs(args.timeout),
            },
            command,
            binaries: &binaries,
        };
        let mut on_event = |event: &Event| {
            let _guard = print.lock();
            if json {
                crate::report::json::write(&Line {
                    host: Some(target.name.clone()),
                    ..Line::new(event)
                });
            } else if progress.is_some() {
                let worth = matches!(
                    event,
                    Event::Step {
                        status: Status::Failed,
                        ..
                    } | Event::Error { .. }
                        | Event::Warning { .. }
                );
                if worth && let Some(line) = report::line_for(&target.name, event) {
                    failures.push(line);
                }
            } else if let Some(line) = report::line_for(&target.name, event) {
                crate::outln!("{line}");
            }
        };
        let result = job.run(&mut on_event).map_err(|e| format!("{e:#}"));
        let outcome = HostOutcome {
            name: target.name.clone(),
            result,
        };
        if let Some(p) = &progress {
            let _guard = print.lock();
            p.finished(&outcome, &failures, started.elapsed());
        }
        outcome
    });
    if let Some(p) = &progress {
        p.close();
    }
    let totals = report::totals(&outcomes);
    if json {
        for o in &outcomes {
            crate::report::json::write(&Line {
                host: Some(o.name.clone()),
                ..Line::new(Event::HostRecap(report::host_recap(o)))
            });
        }
        crate::report::json::write(&Line::new(Event::FleetRecap(totals.clone())));
    } else if progress.is_some() {
        // Each host's line is already up there, as it finished.
        crate::outln!("{}", report::total_line(&outcomes));
    } else {
        crate::outln!();
        for line in report::recap_lines(&outcomes) {
            crate::outln!("{line}");
        }
    }
    Ok(if totals.unreachable > 0 || totals.hosts_failed > 0 {
        exit::FAILED
    } else if command == "plan" && totals.changed > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}
