//! DNS-01: putting the challenge's TXT records in the zone (RFC 2136
//! dynamic updates signed with TSIG, or an exec hook with lego's contract),
//! waiting until every authoritative server of the zone answers them, and
//! taking them away again (also the ones a killed run left).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A site's dns-01 settings, typed (`site::validate` parses `acme.dns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub provider: Provider,
    /// How long to wait for every authoritative server to answer the records.
    pub propagation_timeout: Duration,
    /// The server asked for the zone's SOA and NS; None: the rfc2136 server,
    /// or for exec the first nameserver of /etc/resolv.conf.
    pub resolver: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Dynamic updates (RFC 2136) to the zone's primary, signed with the
    /// TSIG key in a BIND key file (0600).
    Rfc2136 {
        server: SocketAddr,
        tsig_key_file: PathBuf,
    },
    /// `COMMAND present|cleanup FQDN VALUE` (lego's exec contract), with the
    /// variables of `env_file` (0600) in its environment.
    Exec {
        command: PathBuf,
        env_file: Option<PathBuf>,
    },
}

mod exec;
mod journal;
mod rfc2136;
pub mod tsig_key;
mod wire;
pub mod zone;

use crate::host::Host;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Mutex;
use std::time::Instant;

/// Knobs that are not settings: defaults for production, shorter in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long an exec hook may run before its process group is killed.
    pub hook_timeout: Duration,
    /// The pause between two rounds of visibility queries.
    pub poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            hook_timeout: exec::DEFAULT_TIMEOUT,
            poll_interval: Duration::from_secs(2),
        }
    }
}

enum Backend {
    Rfc2136(rfc2136::Updater),
    Exec(exec::Hook),
}

/// DNS-01 for one site's settings: put TXT records in the zone, wait until
/// every authoritative server answers them, take them out again.
pub struct Dns01 {
    backend: Backend,
    /// Asked for SOA and NS (never for whether a record is visible).
    discovery: SocketAddr,
    propagation_timeout: Duration,
    poll_interval: Duration,
    journal: journal::Journal,
    /// Which provider and credentials wrote a journal entry.
    provider_key: String,
    /// Record name -> its zone, found once per Dns01.
    zones: Mutex<HashMap<String, String>>,
    /// Zone -> its authoritative servers.
    servers: Mutex<HashMap<String, Vec<zone::Authority>>>,
}

impl std::fmt::Debug for Dns01 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend: &dyn std::fmt::Debug = match &self.backend {
            Backend::Rfc2136(u) => u,
            Backend::Exec(h) => h,
        };
        f.debug_struct("Dns01")
            .field("backend", backend)
            .field("discovery", &self.discovery)
            .field("propagation_timeout", &self.propagation_timeout)
            .field("journal", &self.journal.path())
            .finish()
    }
}

impl Dns01 {
    /// Loads the TSIG key file / env file (refused unless a regular file,
    /// not a symlink, without group/other permission bits; errors name the
    /// path and the fix, never the secret). `state_dir` holds the journal
    /// of records written (`STATE_DIR/dns/pending.json`).
    pub fn new(host: &Host, settings: &Settings, state_dir: &str) -> Result<Dns01> {
        Dns01::with_options(host, settings, state_dir, Options::default())
    }

    /// `new` with other time bounds (tests: a hook that hangs).
    pub fn with_options(
        host: &Host,
        settings: &Settings,
        state_dir: &str,
        options: Options,
    ) -> Result<Dns01> {
        let (backend, provider_key, default_discovery) = match &settings.provider {
            Provider::Rfc2136 {
                server,
                tsig_key_file,
            } => {
                let path = host_path(tsig_key_file)?;
                let text = read_secret_file(host, &path, "the TSIG key file")?;
                let key = tsig_key::parse(&text, &path)?;
                let key_name = key.name.clone();
                let updater = rfc2136::Updater::new(*server, key, &path)?;
                (
                    Backend::Rfc2136(updater),
                    format!("rfc2136 {server} {key_name}"),
                    Some(*server),
                )
            }
            Provider::Exec { command, env_file } => {
                let display = host_path(command)?;
                let env = match env_file {
                    Some(file) => {
                        let path = host_path(file)?;
                        let text = read_secret_file(host, &path, "the DNS hook's env file")?;
                        exec::parse_env(&text, &path)?
                    }
                    None => Vec::new(),
                };
                let hook =
                    exec::Hook::new(host.path(&display), &display, env, options.hook_timeout);
                (Backend::Exec(hook), format!("exec {display}"), None)
            }
        };
        let discovery = match settings.resolver.or(default_discovery) {
            Some(addr) => addr,
            None => system_resolver(host)?,
        };
        Ok(Dns01 {
            backend,
            discovery,
            propagation_timeout: settings.propagation_timeout,
            poll_interval: options.poll_interval,
            journal: journal::Journal::new(host, state_dir),
            provider_key,
            zones: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// The TXT name for a certificate identifier: `_acme-challenge.example.test`
    /// for both `example.test` and `*.example.test` (lowercase, no trailing dot).
    pub fn record_name(identifier: &str) -> String {
        let base = identifier.trim().trim_end_matches('.');
        let base = base.strip_prefix("*.").unwrap_or(base);
        format!("_acme-challenge.{}", base.to_ascii_lowercase())
    }

    /// Adds one TXT record (an ADD, never a replace: example.test and
    /// *.example.test put two values on one name). Journaled first.
    pub fn present(&self, name: &str, value: &str) -> Result<()> {
        let entry = self.entry(name, value);
        self.journal.add(&entry)?;
        match &self.backend {
            Backend::Rfc2136(updater) => {
                let zone = self.zone_of(&entry.name)?;
                match updater.update(&zone, rfc2136::Change::Add, &entry.name, value) {
                    Ok(()) => Ok(()),
                    Err(rfc2136::Failure::Refused(e)) => {
                        // The server said no: nothing was written.
                        self.journal.remove(&entry)?;
                        Err(e)
                    }
                    Err(rfc2136::Failure::Unknown(e)) => Err(e),
                }
            }
            // A hook that failed may have written the record: it stays
            // journaled, and cleanup_leftovers asks the hook to remove it.
            Backend::Exec(hook) => hook.run("present", &entry.name, value),
        }
        .with_context(|| format!("adding TXT {} failed", entry.name))
    }

    /// Removes exactly that TXT RR and its journal entry; an absent record
    /// is success.
    pub fn cleanup(&self, name: &str, value: &str) -> Result<()> {
        let entry = self.entry(name, value);
        match &self.backend {
            Backend::Rfc2136(updater) => {
                let zone = self.zone_of(&entry.name)?;
                updater
                    .update(&zone, rfc2136::Change::Delete, &entry.name, value)
                    .map_err(rfc2136::Failure::into_error)
            }
            Backend::Exec(hook) => hook.run("cleanup", &entry.name, value),
        }
        .with_context(|| format!("removing TXT {} failed", entry.name))?;
        self.journal.remove(&entry)
    }

    /// Waits until every authoritative server of each record's zone answers
    /// every (name, value), polling, bounded by the propagation timeout.
    /// The error names each server that did not show which record.
    pub fn wait_visible(&self, records: &[(String, String)]) -> Result<()> {
        let deadline = Instant::now() + self.propagation_timeout;
        let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, value) in records {
            wanted
                .entry(normalize(name))
                .or_default()
                .insert(value.clone());
        }
        let mut pending: Vec<(String, zone::Authority)> = Vec::new();
        for name in wanted.keys() {
            let zone = self.zone_of(name)?;
            for server in self.servers_of(&zone)? {
                pending.push((name.clone(), server));
            }
        }
        loop {
            let rounds: Vec<Option<String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = pending
                    .iter()
                    .map(|(name, server)| {
                        let values = wanted.get(name);
                        scope.spawn(move || shortfall(server, name, values))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Some("the check panicked".into()))
                    })
                    .collect()
            });
            let mut still = Vec::new();
            let mut reasons = Vec::new();
            for (target, reason) in pending.into_iter().zip(rounds) {
                if let Some(reason) = reason {
                    reasons.push(reason);
                    still.push(target);
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let within = seconds(self.propagation_timeout);
                let lines: Vec<String> = reasons
                    .iter()
                    .map(|r| r.replace("{within}", &within))
                    .collect();
                bail!("{}", lines.join("; "));
            }
            std::thread::sleep(left.min(self.poll_interval));
        }
    }

    /// Removes the records a killed earlier run left (from the journal, the
    /// ones this provider wrote); those that fail stay journaled. Returns how
    /// many were removed.
    pub fn cleanup_leftovers(&self) -> Result<usize> {
        let mut removed = 0;
        for entry in self.journal.entries()? {
            if entry.provider == self.provider_key
                && self.cleanup(&entry.name, &entry.value).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Preflight for one identifier: a random test TXT at its record name,
    /// with these credentials, read back from every authoritative server,
    /// then deleted. The error names the hop that failed.
    pub fn preflight(&self, identifier: &str) -> Result<()> {
        let name = Dns01::record_name(identifier);
        let value = format!(
            "edgeup-preflight-{}",
            crate::random::hex(16, "the preflight's record")?
        );
        let context = || format!("DNS preflight for {identifier} failed; the CA was not contacted");
        if let Err(e) = self.present(&name, &value) {
            // Written after all (no answer, a hook that failed half-way)?
            // Then it is journaled: try to take it out, keep the first error.
            if self
                .journal
                .entries()
                .is_ok_and(|all| all.contains(&self.entry(&name, &value)))
            {
                let _ = self.cleanup(&name, &value);
            }
            return Err(e).with_context(context);
        }
        let visible = self.wait_visible(&[(name.clone(), value.clone())]);
        let cleaned = self.cleanup(&name, &value);
        visible.and(cleaned).with_context(context)
    }

    fn entry(&self, name: &str, value: &str) -> journal::Entry {
        journal::Entry {
            provider: self.provider_key.clone(),
            name: normalize(name),
            value: value.to_string(),
        }
    }

    fn zone_of(&self, name: &str) -> Result<String> {
        if let Some(zone) = lock(&self.zones).get(name) {
            return Ok(zone.clone());
        }
        let zone = zone::find(self.discovery, name)?;
        lock(&self.zones).insert(name.to_string(), zone.clone());
        Ok(zone)
    }

    fn servers_of(&self, zone: &str) -> Result<Vec<zone::Authority>> {
        if let Some(servers) = lock(&self.servers).get(zone) {
            return Ok(servers.clone());
        }
        let servers = zone::authorities(self.discovery, zone)?;
        lock(&self.servers).insert(zone.to_string(), servers.clone());
        Ok(servers)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// None when `server` answers every wanted value at `name`, else why not
/// (with `{within}` where the timeout goes).
fn shortfall(
    server: &zone::Authority,
    name: &str,
    wanted: Option<&BTreeSet<String>>,
) -> Option<String> {
    let wanted = wanted?;
    let (addr, seen) = zone::txt_at(server, name);
    let at = format!(
        "TXT {name} not visible at {addr} ({}) within {{within}}",
        server.ns
    );
    match seen {
        zone::Seen::Values(values) => {
            let missing = wanted.iter().filter(|v| !values.contains(*v)).count();
            match missing {
                0 => None,
                n if n == wanted.len() => Some(at),
                n => Some(format!("{at} ({n} of its {} values missing)", wanted.len())),
            }
        }
        zone::Seen::Failed(why) => Some(format!("{at}: {why}")),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f32())
    }
}

fn host_path(path: &std::path::Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{} is not a UTF-8 path", path.display()))
}

/// The content of a file holding a secret, if it is safe to trust (see
/// `check_secret_file`).
fn read_secret_file(host: &Host, path: &str, what: &str) -> Result<String> {
    check_secret_file(host, path, what)?;
    let Some(bytes) = host.read_no_follow(path)? else {
        bail!("{what} {path} changed while being read (is something replacing it?)");
    };
    String::from_utf8(bytes).map_err(|_| anyhow!("{what} {path} is not text (UTF-8)"))
}

/// Whether a file holding a secret (a TSIG key, a hook's tokens) may be
/// trusted: a regular file (not a link), root's or this user's, no
/// permission for group or others. `what` names it in the error (a site
/// file key, or a description). An I/O error other than a missing file is
/// returned as such (`plan` without root cannot look, and says nothing).
pub fn check_secret_file(host: &Host, path: &str, what: &str) -> Result<()> {
    let meta = match std::fs::symlink_metadata(host.path(path)) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{what} {path} does not exist; create it (mode 0600) or fix the path in the site file"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("inspecting {what} {path}")),
    };
    if meta.file_type().is_symlink() {
        bail!(
            "{what} {path} is a symbolic link; edgeup reads secrets only from a regular file (replace the link with the file itself, mode 0600)"
        );
    }
    if !meta.is_file() {
        bail!("{what} {path} is not a regular file");
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "{what} {path} has mode {mode:04o}: group or others may read or change it; run `chmod 600 {path}` \
             (and give the secret a new value if others could read it)"
        );
    }
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid && meta.uid() != 0 {
        bail!(
            "{what} {path} belongs to uid {}; it must be root's (run `chown root: {path}`)",
            meta.uid()
        );
    }
    Ok(())
}

/// The first `nameserver` of /etc/resolv.conf, port 53.
fn system_resolver(host: &Host) -> Result<SocketAddr> {
    let text = host.read_string("/etc/resolv.conf")?.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| {
            anyhow!(
                "no name server to find zones with: /etc/resolv.conf names none; set acme.dns.resolver"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names() {
        assert_eq!(
            Dns01::record_name("Example.test"),
            "_acme-challenge.example.test"
        );
        assert_eq!(
            Dns01::record_name("*.example.test"),
            "_acme-challenge.example.test"
        );
        assert_eq!(
            Dns01::record_name("a.example.test."),
            "_acme-challenge.a.example.test"
        );
    }

    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::{NS, SOA, TXT};
    use hickory_proto::rr::{RData, Record};
    use proptest::prelude::*;

    /// Text rich in what the key and env files care about.
    fn awkward() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("key \"k\" {".to_string()),
            Just(" algorithm hmac-sha256;".to_string()),
            Just(" secret \"c2VjcmV0\";".to_string()),
            Just("};".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("#".to_string()),
            Just("export A='x'\n".to_string()),
            Just("B=\"".to_string()),
            Just("İ€😀\u{0}\u{1b}[2J\t\r\n".to_string()),
            "\\PC{0,12}",
            "[ -~]{0,12}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|parts| parts.concat())
    }

    /// A real answer (SOA, NS with glue, TXT), encoded.
    fn answer() -> Vec<u8> {
        let n = |s: &str| wire::name(s).unwrap_or_default();
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        m.add_query(hickory_proto::op::Query::query(
            n("_acme-challenge.example.test"),
            hickory_proto::rr::RecordType::TXT,
        ));
        m.add_answer(Record::from_rdata(
            n("_acme-challenge.example.test"),
            60,
            RData::TXT(TXT::new(vec!["v1".into(), "v2".into()])),
        ));
        m.add_authority(Record::from_rdata(
            n("example.test"),
            60,
            RData::SOA(SOA::new(
                n("ns1.example.test"),
                n("h.example.test"),
                1,
                1,
                1,
                1,
                1,
            )),
        ));
        m.add_authority(Record::from_rdata(
            n("example.test"),
            60,
            RData::NS(NS(n("ns1.example.test"))),
        ));
        m.to_vec().unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn key_and_env_files_never_panic(text in awkward()) {
            let _ = tsig_key::parse(&text, "k");
            let _ = exec::parse_env(&text, "e");
        }

        #[test]
        fn damaged_answers_never_panic(
            flips in prop::collection::vec((any::<u16>(), any::<u8>()), 0..8),
            cut in any::<u16>(),
        ) {
            let mut bytes = answer();
            for (at, value) in flips {
                let len = bytes.len().max(1);
                if let Some(b) = bytes.get_mut(usize::from(at) % len) {
                    *b = value;
                }
            }
            bytes.truncate(usize::from(cut) % (bytes.len() + 8));
            if let Ok(m) = Message::from_vec(&bytes) {
                let _ = zone::zone_in_answer(&m, "_acme-challenge.example.test");
                let _ = zone::read_txt(&m, "_acme-challenge.example.test");
            }
            let key = tsig_key::parse("key k { algorithm hmac-sha256; secret \"c2VjcmV0\"; };", "k")
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let updater = rfc2136::Updater::new(([127, 0, 0, 1], 53).into(), key, "k")
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            // With a verifier of a signed request, and its TSIG record on
            // the answer before the damage: hickory's verification runs too.
            let mut request = Message::new(7, MessageType::Query, OpCode::Update);
            let verifier = request
                .finalize(updater.signer(), 1_800_000_000)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let _ = updater.judge(&bytes, verifier, "example.test", "_acme-challenge.example.test");
            let mut signed = Message::from_vec(&answer()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Some(sig) = request.signature.clone() {
                signed.set_signature(sig);
            }
            let mut bytes = signed.to_vec().unwrap_or_default();
            let len = bytes.len().max(1);
            if let Some(b) = bytes.get_mut(usize::from(cut) % len) {
                *b = b.wrapping_add(1);
            }
            let verifier = request
                .finalize(updater.signer(), 1_800_000_000)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(updater.judge(&bytes, verifier, "example.test", "_acme-challenge.example.test").is_err());
        }
    }

    /// A host rooted in a temp dir with an exec hook at /hook that fails
    /// on cleanup, an env file at /etc/edgeup/dns.env and resolv.conf.
    fn exec_host(env_mode: u32, resolv: &str) -> Result<(tempfile::TempDir, Host, Settings)> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/edgeup"))?;
        std::fs::write(root.join("etc/resolv.conf"), resolv)?;
        let env = root.join("etc/edgeup/dns.env");
        std::fs::write(&env, "TOKEN=tok-123\n")?;
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(env_mode))?;
        let hook = root.join("hook");
        std::fs::write(
            &hook,
            "#!/bin/sh\n[ \"$1\" = present ] || { echo \"api down\" >&2; exit 1; }\n",
        )?;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
        let host = Host::new(
            root.to_path_buf(),
            Box::new(crate::host::scripted::ScriptedRunner::new(
                root.to_path_buf(),
            )),
        );
        let settings = Settings {
            provider: Provider::Exec {
                command: "/hook".into(),
                env_file: Some("/etc/edgeup/dns.env".into()),
            },
            propagation_timeout: Duration::from_secs(1),
            resolver: None,
        };
        Ok((dir, host, settings))
    }

    #[test]
    fn exec_finds_zones_through_resolv_conf_and_checks_the_env_file() -> Result<()> {
        let (_dir, host, settings) = exec_host(
            0o600,
            "# generated\nsearch example.test\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n",
        )?;
        let dns = Dns01::new(&host, &settings, "/var/lib/edgeup")?;
        assert_eq!(dns.discovery, SocketAddr::from(([192, 0, 2, 53], 53)));
        assert!(!format!("{dns:?}").contains("tok-123"));

        let (_dir, host, settings) = exec_host(0o640, "nameserver 192.0.2.53\n")?;
        let err = format!(
            "{:#}",
            Dns01::new(&host, &settings, "/var/lib/edgeup").expect_err("0640")
        );
        assert!(
            err.contains("/etc/edgeup/dns.env has mode 0640")
                && err.contains("chmod 600 /etc/edgeup/dns.env"),
            "{err}"
        );
        assert!(!err.contains("tok-123"), "{err}");

        let (_dir, host, settings) = exec_host(0o600, "search example.test\n")?;
        let err = format!(
            "{:#}",
            Dns01::new(&host, &settings, "/var/lib/edgeup").expect_err("none")
        );
        assert!(err.contains("set acme.dns.resolver"), "{err}");
        Ok(())
    }

    #[test]
    fn leftovers_that_fail_to_go_stay_journaled() -> Result<()> {
        let (dir, host, settings) = exec_host(0o600, "nameserver 192.0.2.53\n")?;
        let dns = Dns01::new(&host, &settings, "/var/lib/edgeup")?;
        dns.present("_acme-challenge.example.test", "v1")?;
        // Another provider's entry is left alone.
        journal::Journal::new(&host, "/var/lib/edgeup").add(&journal::Entry {
            provider: "rfc2136 192.0.2.1:53 other".into(),
            name: "_acme-challenge.example.test".into(),
            value: "v2".into(),
        })?;
        let err = format!(
            "{:#}",
            dns.cleanup("_acme-challenge.example.test", "v1")
                .expect_err("fails")
        );
        assert!(err.contains("exited with status 1: api down"), "{err}");
        assert_eq!(dns.cleanup_leftovers()?, 0);
        let path = dir.path().join("var/lib/edgeup/dns/pending.json");
        let text = std::fs::read_to_string(&path)?;
        assert!(text.contains("\"v1\"") && text.contains("\"v2\""), "{text}");
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        Ok(())
    }

    #[test]
    fn dns01_is_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<Dns01>();
    }
}
