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

// STUB until the provider lands (replaced on merge).
pub struct Dns01;
impl Dns01 {
    pub fn new(
        _host: &crate::host::Host,
        _settings: &Settings,
        _state_dir: &str,
    ) -> anyhow::Result<Dns01> {
        anyhow::bail!("dns-01 is not built yet")
    }
    pub fn record_name(identifier: &str) -> String {
        format!("_acme-challenge.{}", identifier.trim_start_matches("*."))
    }
    pub fn present(&self, _name: &str, _value: &str) -> anyhow::Result<()> {
        anyhow::bail!("stub")
    }
    pub fn cleanup(&self, _name: &str, _value: &str) -> anyhow::Result<()> {
        anyhow::bail!("stub")
    }
    pub fn wait_visible(&self, _records: &[(String, String)]) -> anyhow::Result<()> {
        anyhow::bail!("stub")
    }
    pub fn cleanup_leftovers(&self) -> anyhow::Result<usize> {
        anyhow::bail!("stub")
    }
    pub fn preflight(&self, _identifier: &str) -> anyhow::Result<()> {
        anyhow::bail!("stub")
    }
}
