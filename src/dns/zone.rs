//! Which zone holds a record, which servers are authoritative for it, and
//! what each of them answers. The discovery server is only asked where the
//! zone and its servers are; whether a record is visible is asked of every
//! authoritative server directly (RD=0), never of a resolver's cache.

use super::wire;
use anyhow::{Result, bail};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};

/// An authoritative server of a zone: its NS name and the addresses it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub ns: String,
    pub addrs: Vec<SocketAddr>,
}

/// A zone and its authoritative servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub servers: Vec<Authority>,
}

/// The rcode as the RFCs and `dig` spell it (NOERROR, NXDOMAIN, NOTAUTH, ...).
pub fn rcode_word(rcode: ResponseCode) -> String {
    match u16::from(rcode) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        16 => "BADSIG".into(),
        17 => "BADKEY".into(),
        18 => "BADTIME".into(),
        other => format!("RCODE{other}"),
    }
}

/// `name` and its parents, nearest first, without the root.
fn ancestors(name: &str) -> Vec<String> {
    let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
    (0..labels.len())
        .filter_map(|i| labels.get(i..).map(|rest| rest.join(".")))
        .collect()
}

/// Whether `name` is `zone` or below it (both lowercase, no trailing dot).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// The zone holding `record`: asks `discovery` for the SOA of the name and
/// of each parent in turn until an answer (or the authority section of a
/// NODATA/NXDOMAIN answer, or a referral) names the zone.
pub fn find(discovery: SocketAddr, record: &str) -> Result<String> {
    let mut outcomes: Vec<String> = Vec::new();
    for candidate in ancestors(record) {
        let question = wire::name(&candidate)?;
        let answer = match wire::ask(discovery, &wire::query(&question, RecordType::SOA, true)) {
            Ok(a) => a,
            Err(e) => bail!(
                "no zone found for {record}: {e:#} (asking {discovery} for the SOA of {candidate})"
            ),
        };
        wire::check_response(discovery, &answer)?;
        match zone_in_answer(&answer, &candidate) {
            Some(zone) => return Ok(zone),
            None => {
                let outcome = rcode_word(answer.metadata.response_code);
                if !outcomes.contains(&outcome) {
                    outcomes.push(outcome);
                }
            }
        }
    }
    bail!(
        "no zone found for {record} (asked {discovery}: {}); check the name, and that {discovery} \
         serves or resolves its zone",
        if outcomes.is_empty() {
            "no answer named a zone".to_string()
        } else {
            outcomes.join(", ")
        }
    )
}

/// The zone an answer to `SOA candidate?` names, if any.
pub(super) fn zone_in_answer(answer: &Message, candidate: &str) -> Option<String> {
    if !matches!(
        answer.metadata.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) {
        return None;
    }
    let soa_owner = |records: &[hickory_proto::rr::Record]| {
        records
            .iter()
            .filter(|r| matches!(r.data, RData::SOA(_)))
            .map(|r| wire::text(&r.name))
            .find(|owner| !owner.is_empty() && in_zone(candidate, owner))
    };
    if let Some(owner) = answer
        .answers
        .iter()
        .filter(|r| matches!(r.data, RData::SOA(_)))
        .map(|r| wire::text(&r.name))
        .find(|owner| owner == candidate)
    {
        return Some(owner);
    }
    if let Some(owner) = soa_owner(&answer.authorities) {
        return Some(owner);
    }
    // A referral from a server above the zone: the cut is where the NS are.
    answer
        .authorities
        .iter()
        .filter(|r| matches!(r.data, RData::NS(_)))
        .map(|r| wire::text(&r.name))
        .find(|owner| !owner.is_empty() && in_zone(candidate, owner))
}

/// The authoritative servers of `zone`: its NS names from `discovery`, each
/// with the addresses `discovery` gives (glue or A/AAAA), else the system
/// resolver's (an NS name outside every zone `discovery` knows). They are
/// asked on `discovery`'s port (53 in production).
pub fn authorities(discovery: SocketAddr, zone: &str) -> Result<Vec<Authority>> {
    let zone_name = wire::name(zone)?;
    let answer = wire::ask(discovery, &wire::query(&zone_name, RecordType::NS, true))
        .map_err(|e| anyhow::anyhow!("asking {discovery} for the NS of {zone}: {e:#}"))?;
    wire::check_response(discovery, &answer)?;
    if answer.metadata.response_code != ResponseCode::NoError {
        bail!(
            "{discovery} answered {} for the NS records of {zone}",
            rcode_word(answer.metadata.response_code)
        );
    }
    let ns_names: BTreeSet<String> = answer
        .answers
        .iter()
        .chain(answer.authorities.iter())
        .filter(|r| wire::text(&r.name) == zone)
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(wire::text(&ns.0)),
            _ => None,
        })
        .filter(|ns| !ns.is_empty())
        .collect();
    if ns_names.is_empty() {
        bail!("{discovery} gave no NS records for {zone}");
    }
    let port = discovery.port();
    let mut servers = Vec::new();
    for ns in ns_names {
        let mut addrs = glue(&answer, &ns, port);
        if addrs.is_empty() {
            addrs = lookup(discovery, &ns, port);
        }
        if addrs.is_empty() {
            // Outside every zone the discovery server knows: the system resolver.
            addrs = (ns.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect())
                .unwrap_or_default();
        }
        if addrs.is_empty() {
            bail!(
                "the name server {ns} of {zone} has no address (asked {discovery} and the system resolver)"
            );
        }
        // IPv4 first: hosts without IPv6 still reach a dual-stack server.
        addrs.sort_by_key(|a| a.is_ipv6());
        servers.push(Authority { ns, addrs });
    }
    Ok(servers)
}

fn glue(answer: &Message, ns: &str, port: u16) -> Vec<SocketAddr> {
    answer
        .additionals
        .iter()
        .filter(|r| wire::text(&r.name) == ns)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(SocketAddr::new(a.0.into(), port)),
            RData::AAAA(a) => Some(SocketAddr::new(a.0.into(), port)),
            _ => None,
        })
        .collect()
}

fn lookup(discovery: SocketAddr, ns: &str, port: u16) -> Vec<SocketAddr> {
    let Ok(name) = wire::name(ns) else {
        return Vec::new();
    };
    let mut addrs = Vec::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        let Ok(answer) = wire::ask(discovery, &wire::query(&name, rtype, true)) else {
            continue;
        };
        addrs.extend(answer.answers.iter().filter_map(|r| match &r.data {
            RData::A(a) => Some(SocketAddr::new(a.0.into(), port)),
            RData::AAAA(a) => Some(SocketAddr::new(a.0.into(), port)),
            _ => None,
        }));
    }
    addrs
}

/// What one authoritative server says about the TXT records at `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Its answer: the TXT values there (each record's strings joined).
    Values(BTreeSet<String>),
    /// No usable answer, and why (timeout, REFUSED, not authoritative, ...).
    Failed(String),
}

/// Asks `server` (each of its addresses in turn until one answers) for the
/// TXT records at `name`, without recursion.
pub fn txt_at(server: &Authority, name: &str) -> (SocketAddr, Seen) {
    let Ok(question) = wire::name(name) else {
        return (
            server
                .addrs
                .first()
                .copied()
                .unwrap_or(([0, 0, 0, 0], 0).into()),
            Seen::Failed(format!("{name:?} is not a DNS name")),
        );
    };
    let mut last = None;
    for addr in &server.addrs {
        let seen = match wire::ask(*addr, &wire::query(&question, RecordType::TXT, false)) {
            Err(e) => Seen::Failed(format!("{e:#}")),
            Ok(answer) => read_txt(&answer, name),
        };
        if matches!(seen, Seen::Values(_)) {
            return (*addr, seen);
        }
        last = Some((*addr, seen));
    }
    last.unwrap_or_else(|| {
        (
            ([0, 0, 0, 0], 0).into(),
            Seen::Failed("no address".to_string()),
        )
    })
}

pub(super) fn read_txt(answer: &Message, name: &str) -> Seen {
    let rcode = answer.metadata.response_code;
    if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Seen::Failed(format!("answered {}", rcode_word(rcode)));
    }
    if !answer.metadata.authoritative {
        return Seen::Failed("answered without authority (not a server of this zone?)".to_string());
    }
    Seen::Values(
        answer
            .answers
            .iter()
            .filter(|r| wire::text(&r.name) == name)
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_stop_before_the_root() {
        assert_eq!(
            ancestors("_acme-challenge.a.example.test"),
            [
                "_acme-challenge.a.example.test",
                "a.example.test",
                "example.test",
                "test"
            ]
        );
        assert!(ancestors("").is_empty());
    }

    #[test]
    fn in_zone_is_by_label() {
        assert!(in_zone("a.example.test", "example.test"));
        assert!(in_zone("example.test", "example.test"));
        assert!(!in_zone("badexample.test", "example.test"));
    }

    #[test]
    fn rcode_words_are_dig_s() {
        assert_eq!(rcode_word(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_word(ResponseCode::NotAuth), "NOTAUTH");
        assert_eq!(rcode_word(ResponseCode::NotZone), "NOTZONE");
        assert_eq!(rcode_word(ResponseCode::Unknown(3841)), "RCODE3841");
    }
}
