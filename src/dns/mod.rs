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
