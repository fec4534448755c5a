//! RFC 2136 dynamic updates signed with TSIG (RFC 8945): add one TXT RR,
//! delete exactly one TXT RR. The answer's rcode is put in words; a
//! success counts only when the answer's own TSIG verifies.

use super::tsig_key::{Algorithm, TsigKey};
use super::{wire, zone};
use anyhow::{Result, anyhow, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType, TSigVerifier, TSigner};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The TTL of a challenge record: short, it lives for minutes.
pub const TTL: u32 = 60;
/// Allowed clock difference with the server (RFC 8945's recommendation).
const FUDGE: u16 = 300;

/// An update client: one server, one key.
pub struct Updater {
    pub server: SocketAddr,
    key: TsigKey,
    /// Where the key came from, for messages.
    pub key_file: String,
    signer: TSigner,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("server", &self.server)
            .field("key", &self.key)
            .field("key_file", &self.key_file)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Delete,
}

/// How an update ended when it did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an error: nothing was changed.
    Refused(anyhow::Error),
    /// No (trustworthy) answer: the change may or may not have happened.
    Unknown(anyhow::Error),
}

impl Failure {
    pub fn into_error(self) -> anyhow::Error {
        match self {
            Failure::Refused(e) | Failure::Unknown(e) => e,
        }
    }
}

impl Updater {
    pub fn new(server: SocketAddr, key: TsigKey, key_file: &str) -> Result<Updater> {
        let algorithm = match key.algorithm {
            Algorithm::HmacSha256 => TsigAlgorithm::HmacSha256,
            Algorithm::HmacSha384 => TsigAlgorithm::HmacSha384,
            Algorithm::HmacSha512 => TsigAlgorithm::HmacSha512,
        };
        let name = wire::name(&key.name)
            .map_err(|_| anyhow!("{key_file}: the key's name is not a valid DNS name"))?;
        // hickory's error would not hold the key, but say it ourselves.
        let signer = TSigner::new(key.secret().to_vec(), algorithm, name, FUDGE).map_err(|_| {
            anyhow!(
                "{key_file}: the key cannot sign with {}",
                key.algorithm.name()
            )
        })?;
        Ok(Updater {
            server,
            key,
            key_file: key_file.to_string(),
            signer,
        })
    }

    #[cfg(test)]
    pub(super) fn signer(&self) -> &TSigner {
        &self.signer
    }

    /// Adds (or deletes) the TXT RR `name` `value` in `zone`.
    pub fn update(
        &self,
        zone_name: &str,
        change: Change,
        name: &str,
        value: &str,
    ) -> std::result::Result<(), Failure> {
        let message = self
            .message(zone_name, change, name, value)
            .map_err(Failure::Refused)?;
        self.send(message, zone_name, name)
    }

    fn message(&self, zone_name: &str, change: Change, name: &str, value: &str) -> Result<Message> {
        if !zone::in_zone(name, zone_name) {
            bail!("{name} is not in the zone {zone_name}");
        }
        if value.len() > 255 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("a challenge value must be at most 255 printable ASCII characters");
        }
        let mut message = Message::query();
        message.metadata.op_code = OpCode::Update;
        message.metadata.message_type = MessageType::Query;
        message.metadata.recursion_desired = false;
        let mut zone_query = Query::query(wire::name(zone_name)?, RecordType::SOA);
        zone_query.set_query_class(DNSClass::IN);
        message.add_zone(zone_query);
        let mut record = Record::from_rdata(
            wire::name(name)?,
            TTL,
            RData::TXT(TXT::new(vec![value.to_string()])),
        );
        match change {
            Change::Add => record.dns_class = DNSClass::IN,
            // RFC 2136 2.5.4: class NONE, TTL 0 deletes exactly this RR.
            Change::Delete => {
                record.dns_class = DNSClass::NONE;
                record.ttl = 0;
            }
        }
        message.add_update(record);
        Ok(message)
    }

    fn send(
        &self,
        mut message: Message,
        zone_name: &str,
        name: &str,
    ) -> std::result::Result<(), Failure> {
        let server = self.server;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let verifier = message
            .finalize(&self.signer, now)
            .map_err(|e| Failure::Refused(anyhow!("signing the update: {e}")))?;
        let bytes = message
            .to_vec()
            .map_err(|e| Failure::Refused(anyhow!("encoding the update: {e}")))?;
        // A send error or no answer: the server may have applied it.
        let raw = wire::exchange(server, message.metadata.id, &bytes)
            .map_err(|e| Failure::Unknown(anyhow!("update of {name} sent to {server}: {e:#}")))?;
        self.judge(&raw, verifier, zone_name, name)
    }

    /// What the server's answer `raw` to a signed update means.
    pub(super) fn judge(
        &self,
        raw: &[u8],
        verifier: Option<TSigVerifier>,
        zone_name: &str,
        name: &str,
    ) -> std::result::Result<(), Failure> {
        let server = self.server;
        let answer = Message::from_vec(raw).map_err(|e| {
            Failure::Unknown(anyhow!(
                "{server} answered the update with a malformed message: {e}"
            ))
        })?;
        let rcode = answer.metadata.response_code;
        let tsig_error = answer.signature.as_ref().and_then(|s| s.data.error);
        if rcode != ResponseCode::NoError || tsig_error.is_some() {
            // An error answer is taken as it is (BIND cannot sign its BADSIG
            // answer); a forged one can only make edgeup stop.
            return Err(Failure::Refused(anyhow!(
                "{}",
                refusal(
                    server,
                    rcode,
                    tsig_error,
                    &self.key_file,
                    &self.key.name,
                    zone_name,
                    name
                )
            )));
        }
        let Some(signature) = answer.signature.as_ref() else {
            return Err(Failure::Unknown(anyhow!(
                "{server} accepted the update but its answer is not signed with the key in {}; \
                 is something between edgeup and the server answering for it?",
                self.key_file
            )));
        };
        // hickory computes time - fudge; a server's time below its fudge
        // would underflow there, so such an answer is refused here first.
        // (Its other arithmetic is on the record counts, which a message
        // that decoded above keeps far below u16::MAX.)
        if signature.data.time < u64::from(signature.data.fudge) {
            return Err(Failure::Unknown(anyhow!(
                "{server} answered the update with a TSIG signature with an impossible time"
            )));
        }
        let Some(mut verifier) = verifier else {
            return Err(Failure::Unknown(anyhow!("the update was not signed")));
        };
        verifier.verify(raw).map_err(|e| {
            Failure::Unknown(anyhow!(
                "{server} accepted the update but the TSIG signature of its answer does not verify \
                 ({e}); check that the clocks agree and that the key in {} is the server's",
                self.key_file
            ))
        })?;
        Ok(())
    }
}

/// An update's error answer in words: the server, the rcode (and TSIG
/// error) as `dig` shows them, and what to change.
pub fn refusal(
    server: SocketAddr,
    rcode: ResponseCode,
    tsig_error: Option<TsigError>,
    key_file: &str,
    key_name: &str,
    zone_name: &str,
    name: &str,
) -> String {
    let tsig = tsig_error.map(|e| match e {
        TsigError::BadSig => "BADSIG".to_string(),
        TsigError::BadKey => "BADKEY".to_string(),
        TsigError::BadTime => "BADTIME".to_string(),
        TsigError::BadTrunc => "BADTRUNC".to_string(),
        TsigError::Unknown(code) => format!("TSIG error {code}"),
    });
    let code = match &tsig {
        Some(t) => format!("{} ({t})", zone::rcode_word(rcode)),
        None => zone::rcode_word(rcode),
    };
    let key_wrong = format!(
        "the TSIG key in {key_file} is wrong or not allowed to update this zone (the server must \
         know the key \"{key_name}\" with the same secret and algorithm)"
    );
    let why = match (tsig_error, rcode) {
        (Some(TsigError::BadTime), _) | (None, ResponseCode::BADTIME) => {
            "this host's clock and the server's differ by more than 5 minutes; check that both keep time (NTP)"
                .to_string()
        }
        (Some(TsigError::BadSig | TsigError::BadKey), _)
        | (None, ResponseCode::BADSIG | ResponseCode::BADKEY) => key_wrong,
        (Some(_), _) => key_wrong,
        (None, ResponseCode::NotAuth) => format!(
            "the server is not authoritative for {zone_name}, or {key_wrong}; send updates to the zone's primary"
        ),
        (None, ResponseCode::Refused) => format!(
            "the key \"{key_name}\" is not allowed to change TXT records at {name} (the server's \
             update-policy or allow-update for {zone_name} must grant it, e.g. \
             `update-policy {{ grant {key_name} zonesub TXT; }};`)"
        ),
        (None, ResponseCode::NotZone) => format!(
            "{name} is not in the zone {zone_name} as the server sees it (a delegated subzone?)"
        ),
        (None, ResponseCode::NotImp) => {
            "the server does not accept dynamic updates".to_string()
        }
        (None, ResponseCode::ServFail) => {
            "the server failed to apply it (see the server's log)".to_string()
        }
        (None, ResponseCode::FormErr) => "the server could not parse the update".to_string(),
        (None, ResponseCode::YXDomain | ResponseCode::YXRRSet | ResponseCode::NXRRSet) => {
            "a prerequisite of the update did not hold".to_string()
        }
        (None, _) => "the server refused it".to_string(),
    };
    format!("update refused by {server}: {code}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(rcode: ResponseCode, tsig: Option<TsigError>) -> String {
        refusal(
            "127.0.0.1:5353"
                .parse()
                .unwrap_or(([127, 0, 0, 1], 53).into()),
            rcode,
            tsig,
            "/etc/edgeup/tsig.key",
            "edgeup",
            "example.test",
            "_acme-challenge.example.test",
        )
    }

    #[test]
    fn rcodes_in_words() {
        let badsig = words(ResponseCode::NotAuth, Some(TsigError::BadSig));
        assert!(
            badsig.starts_with(
                "update refused by 127.0.0.1:5353: NOTAUTH (BADSIG): the TSIG key in \
                 /etc/edgeup/tsig.key is wrong or not allowed to update this zone"
            ),
            "{badsig}"
        );
        let badkey = words(ResponseCode::NotAuth, Some(TsigError::BadKey));
        assert!(
            badkey.contains("NOTAUTH (BADKEY)") && badkey.contains("is wrong"),
            "{badkey}"
        );
        let badtime = words(ResponseCode::NotAuth, Some(TsigError::BadTime));
        assert!(
            badtime.contains("BADTIME") && badtime.contains("clock"),
            "{badtime}"
        );
        let refused = words(ResponseCode::Refused, None);
        assert!(
            refused.contains("REFUSED") && refused.contains("update-policy"),
            "{refused}"
        );
        let notzone = words(ResponseCode::NotZone, None);
        assert!(notzone.contains("NOTZONE") && notzone.contains("not in the zone example.test"));
        let notauth = words(ResponseCode::NotAuth, None);
        assert!(
            notauth.contains("not authoritative for example.test"),
            "{notauth}"
        );
        assert!(words(ResponseCode::ServFail, None).contains("SERVFAIL"));
        assert!(words(ResponseCode::NotImp, None).contains("does not accept dynamic updates"));
    }

    #[test]
    fn updates_outside_the_zone_or_with_odd_values_are_not_built() -> Result<()> {
        let key = super::super::tsig_key::parse(
            "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };",
            "k",
        )?;
        let updater = Updater::new(([127, 0, 0, 1], 53).into(), key, "k")?;
        assert!(
            updater
                .message("example.test", Change::Add, "a.other.test", "v")
                .is_err()
        );
        assert!(
            updater
                .message("example.test", Change::Add, "a.example.test", "a b")
                .is_err()
        );
        assert!(
            updater
                .message(
                    "example.test",
                    Change::Add,
                    "a.example.test",
                    &"v".repeat(256)
                )
                .is_err()
        );
        let mut m = updater.message("example.test", Change::Delete, "a.example.test", "v")?;
        assert_eq!(m.metadata.op_code, OpCode::Update);
        // Answers that must not count as success: unsigned, forged MAC,
        // impossible time, garbage (none may panic).
        let verifier = m.finalize(&updater.signer, 1_800_000_000)?;
        let mut unsigned = Message::response(m.metadata.id, OpCode::Update);
        unsigned.metadata.response_code = ResponseCode::NoError;
        let judged = updater.judge(
            &unsigned.to_vec()?,
            verifier,
            "example.test",
            "a.example.test",
        );
        assert!(
            matches!(&judged, Err(Failure::Unknown(e)) if e.to_string().contains("not signed")),
            "{judged:?}"
        );
        let mut forged = unsigned.clone();
        let mut tsig = m.signature.clone().ok_or_else(|| anyhow!("signed"))?;
        forged.set_signature(tsig.clone());
        let verifier = m.finalize(&updater.signer, 1_800_000_000)?;
        let judged = updater.judge(
            &forged.to_vec()?,
            verifier,
            "example.test",
            "a.example.test",
        );
        assert!(
            matches!(&judged, Err(Failure::Unknown(e)) if e.to_string().contains("does not verify")),
            "{judged:?}"
        );
        tsig.data.time = 10;
        forged.set_signature(tsig);
        let verifier = m.finalize(&updater.signer, 1_800_000_000)?;
        let judged = updater.judge(
            &forged.to_vec()?,
            verifier,
            "example.test",
            "a.example.test",
        );
        assert!(matches!(&judged, Err(Failure::Unknown(_))), "{judged:?}");
        for garbage in [&b""[..], &[0u8; 12], &[0xff; 40]] {
            let verifier = m.finalize(&updater.signer, 1_800_000_000)?;
            assert!(
                updater
                    .judge(garbage, verifier, "example.test", "a.example.test")
                    .is_err()
            );
        }
        let debug = format!("{updater:?}");
        assert!(
            !debug.contains("c2VjcmV0") && !debug.contains("115, 101, 99"),
            "{debug}"
        );
        Ok(())
    }
}
