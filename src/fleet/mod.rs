//! `edgeup fleet apply|plan`: the same site (with per-host overrides) on many
//! hosts over OpenSSH, in parallel, with one recap. No agent: each host gets
//! the edgeup binary (copied only when its checksum differs) and runs it.

pub mod host;
pub mod inventory;
pub mod progress;
pub mod report;
pub mod ssh;

use anyhow::{Context, Result, bail};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

/// A local edgeup build for one architecture.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    pub sha256: String,
}

/// Local builds by `uname -m` architecture: this binary for its own
/// architecture, plus `edgeup-<arch>` files from `--binary-dir`.
#[derive(Debug, Default)]
pub struct Binaries {
    by_arch: Vec<(String, Binary)>,
}

impl Binaries {
    pub fn discover(dir: Option<&std::path::Path>) -> Result<Binaries> {
        let mut by_arch = Vec::new();
        if let Some(dir) = dir {
            for entry in
                std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?
            {
                let path = entry?.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                if let Some(arch) = name.as_deref().and_then(|n| n.strip_prefix("edgeup-")) {
                    by_arch.push((arch.to_string(), binary(path.clone())?));
                }
            }
        }
        let own = std::env::current_exe().context("locating this edgeup binary")?;
        if !by_arch.iter().any(|(a, _)| a == std::env::consts::ARCH) {
            by_arch.push((std::env::consts::ARCH.to_string(), binary(own)?));
        }
        Ok(Binaries { by_arch })
    }

    /// (architecture, build) pairs, in discovery order.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Binary)> {
        self.by_arch.iter().map(|(a, b)| (a.as_str(), b))
    }

    pub fn for_arch(&self, arch: &str) -> Result<Binary> {
        match self.by_arch.iter().find(|(a, _)| a == arch) {
            Some((_, b)) => Ok(b.clone()),
            None => bail!(
                "no edgeup binary for {arch}: build one (README: \"Static build\") and pass \
                 --binary-dir DIR containing edgeup-{arch}"
            ),
        }
    }
}

fn binary(path: PathBuf) -> Result<Binary> {
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Binary {
        sha256: sha256_hex(&bytes),
        path,
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `job` for every target with at most `forks` at once; one host
/// failing never stops the others.
pub fn run_all<T: Sync, R: Send>(
    targets: &[T],
    forks: usize,
    job: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..targets.len()).collect());
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..forks.clamp(1, targets.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(i) = next else { break };
                    let r = job(&targets[i]);
                    if let Ok(mut out) = results.lock() {
                        out.push((i, r));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// `text` safe for the operator's terminal: control characters (escape
/// sequences, carriage returns, bells) from a remote host are shown as
/// `\u{..}`, never interpreted; newlines stay.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_target_runs_once_in_order_of_results() {
        let targets: Vec<u32> = (0..10).collect();
        let out = super::run_all(&targets, 3, |t| t * 2);
        assert_eq!(out, (0..10).map(|t| t * 2).collect::<Vec<_>>());
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
