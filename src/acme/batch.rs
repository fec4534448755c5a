//! Several certificates from the builtin client at once (a run of
//! certificate steps; engine/batch.rs). One responder serves every pending
//! HTTP-01 token; a dns-01 job writes TXT records through its provider. First the preflights run together; then the account is ensured
//! once per CA, and only for a CA some site's preflight passed for (nothing
//! reaches a CA before that); then the orders of the sites that got this
//! far run together. At most `MAX_IN_FLIGHT` preflights, then orders, at a
//! time. Each job's result is its own: a failed preflight or order fails
//! that job alone.

use super::bounded;
use super::builtin::{self, Answer, Issued};
use super::responder::Responder;
use super::{CaSettings, account, preflight};
use crate::dns::Dns01;
use crate::host::Host;
use anyhow::{Error, anyhow};
use instant_acme::{Account, AccountCredentials};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Orders (and preflights) in flight at once. Enough to hide the CA's round
/// trips (an order is a dozen requests, mostly waiting: 50 orders go in
/// about seven waves, under a second against Pebble), small enough that one
/// run never holds more than a handful of pending orders at a CA nor sends
/// it dozens of requests in the same moment (CAs limit requests per account
/// and per endpoint), and that the validations of 8 orders fit the
/// responder's connection bound (responder.rs).
pub const MAX_IN_FLIGHT: usize = 8;

/// One certificate to obtain.
pub struct Job<'a> {
    pub ca: &'a CaSettings,
    /// Every name on the certificate, the primary first.
    pub domains: &'a [String],
    /// The responder's loopback address (HAProxy's acme backend).
    pub responder: SocketAddr,
    /// Where the CA connects for HTTP-01 (the preflight goes there too).
    pub validation_port: u16,
    pub preflight: bool,
    /// certbot's directory (`account::ensure` looks there for certbot accounts).
    pub certbot_dir: &'a str,
    /// From `builtin::new_key`: an RSA key, or None for a fresh P-256 key.
    pub key_pem: Option<String>,
    /// dns-01 through this provider; None: HTTP-01 on the responder.
    pub dns: Option<Arc<Dns01>>,
}

/// Why a job got no certificate.
#[derive(Debug)]
pub enum Failure {
    /// Before any order: the responder, the preflight, the account. The
    /// message is shown as it is.
    Before(Error),
    /// The CA's order (rate limits are recognised from its message).
    Order(Error),
}

/// A job's result and the time spent on it (its preflight and its order;
/// jobs overlap, so these add up to more than the batch took).
pub struct Outcome {
    pub result: Result<Issued, Failure>,
    pub took: Duration,
}

/// Obtains every job's certificate: one outcome per job, in the jobs' order.
/// Jobs naming different responders (there is one per host) are run one
/// group after the other.
pub fn issue_all(host: &Host, jobs: &[Job]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = jobs.iter().map(|_| None).collect();
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for job in jobs {
        if !addresses.contains(&job.responder) {
            addresses.push(job.responder);
        }
    }
    for address in addresses {
        let (places, group): (Vec<usize>, Vec<&Job>) = jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| job.responder == address)
            .unzip();
        for (place, outcome) in places.into_iter().zip(issue_group(host, address, &group)) {
            if let Some(slot) = outcomes.get_mut(place) {
                *slot = Some(outcome);
            }
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| Outcome {
                result: Err(Failure::Before(anyhow!("no result for this certificate"))),
                took: Duration::ZERO,
            })
        })
        .collect()
}

/// A failure every job of one CA shares (its account), made into each
/// job's own.
#[derive(Clone)]
struct Shared {
    /// Met while contacting the CA for the orders (not while registering).
    order: bool,
    message: String,
}

impl Shared {
    fn failure(&self) -> Failure {
        let error = anyhow!("{}", self.message);
        if self.order {
            Failure::Order(error)
        } else {
            Failure::Before(error)
        }
    }
}

fn issue_group(host: &Host, address: SocketAddr, jobs: &[&Job]) -> Vec<Outcome> {
    let every = |shared: Shared| -> Vec<Outcome> {
        jobs.iter()
            .map(|_| Outcome {
                result: Err(shared.failure()),
                took: Duration::ZERO,
            })
            .collect()
    };
    let responder = match Responder::start(address) {
        Ok(responder) => responder,
        Err(e) => {
            return every(Shared {
                order: false,
                message: format!("{e:#}; the CA was not contacted"),
            });
        }
    };
    // 1. Preflights, together (blocking connects and reads: threads).
    let preflights: Vec<(Result<(), Error>, Duration)> =
        bounded::on_threads(jobs, MAX_IN_FLIGHT, |job| {
            let started = Instant::now();
            let passed = match (job.preflight, job.domains.first(), &job.dns) {
                (false, _, _) => Ok(()),
                (true, Some(_), Some(dns)) => dns_preflight(dns, job.domains),
                (true, Some(domain), None) => {
                    preflight::run(domain, job.validation_port, &responder)
                }
                (true, None, _) => Err(anyhow!("a certificate needs at least one name")),
            };
            (passed, started.elapsed())
        });
    // 2. The account, once per CA that a site whose preflight passed needs:
    // the first request to that CA.
    let mut registered: Vec<(&CaSettings, Result<AccountCredentials, Shared>)> = Vec::new();
    for (job, (passed, _)) in jobs.iter().zip(&preflights) {
        if passed.is_ok() && !registered.iter().any(|(ca, _)| *ca == job.ca) {
            let credentials = ensure_account(host, job).map_err(|e| Shared {
                order: false,
                message: format!("{e:#}"),
            });
            registered.push((job.ca, credentials));
        }
    }
    // 3. Orders, together (one task; at most MAX_IN_FLIGHT futures at once).
    let ordered = super::block_on(async {
        let mut accounts: Vec<(&CaSettings, Result<Account, Shared>)> = Vec::new();
        for (ca, credentials) in registered {
            let account = match credentials {
                Ok(credentials) => builtin::account(ca, credentials).await.map_err(|e| Shared {
                    order: true,
                    message: format!("{e:#}"),
                }),
                Err(shared) => Err(shared),
            };
            accounts.push((ca, account));
        }
        let orders: Vec<_> = jobs
            .iter()
            .zip(preflights)
            .map(|(job, (passed, preflight_took))| {
                let account = accounts
                    .iter()
                    .find(|(ca, _)| *ca == job.ca)
                    .map(|(_, a)| a);
                let responder = &responder;
                async move {
                    let started = Instant::now();
                    let result = match (passed, account) {
                        (Err(e), _) => Err(Failure::Before(e)),
                        (Ok(()), None) => Err(Failure::Before(anyhow!("no account for this CA"))),
                        (Ok(()), Some(Err(shared))) => Err(shared.failure()),
                        (Ok(()), Some(Ok(account))) => {
                            let answer = match &job.dns {
                                Some(dns) => Answer::Dns(Arc::clone(dns)),
                                None => Answer::Http(responder),
                            };
                            builtin::order(account, answer, job.domains, job.key_pem.clone())
                                .await
                                .map_err(Failure::Order)
                        }
                    };
                    Outcome {
                        result,
                        took: preflight_took + started.elapsed(),
                    }
                }
            })
            .collect();
        bounded::in_order(MAX_IN_FLIGHT, orders).await
    });
    ordered.unwrap_or_else(|e| {
        every(Shared {
            order: false,
            message: format!("{e:#}"),
        })
    })
}

/// The dns-01 preflight of one certificate: a test record at each of its
/// TXT names (a name and its wildcard share one), written, seen at every
/// authoritative server and removed, with the provider's credentials.
fn dns_preflight(dns: &Dns01, domains: &[String]) -> anyhow::Result<()> {
    let mut done: Vec<String> = Vec::new();
    for domain in domains {
        let name = Dns01::record_name(domain);
        if done.contains(&name) {
            continue;
        }
        // Its error says which name and hop failed, and that the CA was not contacted.
        dns.preflight(domain)?;
        done.push(name);
    }
    Ok(())
}

/// Registers the account unless there is one, then reads its credentials.
fn ensure_account(host: &Host, job: &Job) -> anyhow::Result<AccountCredentials> {
    account::ensure(host, job.ca, job.certbot_dir)?;
    account::load(host, job.ca)?.ok_or_else(|| {
        anyhow!(
            "no ACME account for {} after registering it",
            job.ca.directory
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn host() -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        (
            dir,
            Host::new(root.clone(), Box::new(ScriptedRunner::new(root))),
        )
    }

    /// A loopback port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// Stands in for a CA: counts the connections it gets and closes them
    /// unanswered, so every request to it fails.
    struct Ca {
        port: u16,
        connections: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Ca {
        fn start() -> Ca {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind the CA");
            listener.set_nonblocking(true).expect("nonblocking");
            let port = listener.local_addr().expect("address").port();
            let connections = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (connections, stop) = (Arc::clone(&connections), Arc::clone(&stop));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                connections.fetch_add(1, Ordering::SeqCst);
                                drop(stream);
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                })
            };
            Ca {
                port,
                connections,
                stop,
                thread: Some(thread),
            }
        }

        fn settings(&self) -> CaSettings {
            CaSettings {
                client: crate::site::AcmeClient::Builtin,
                directory: format!("https://127.0.0.1:{}/dir", self.port),
                ca_bundle: None,
                email: Some("ops@example.org".into()),
                eab_kid: None,
                eab_hmac_key: None,
            }
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    impl Drop for Ca {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// A job whose name is 127.0.0.1 (the preflight resolves nothing) and
    /// whose validation port is `port`: the responder's own port passes the
    /// preflight (it answers its token), a closed one fails it.
    fn job<'a>(
        ca: &'a CaSettings,
        names: &'a [String],
        responder: SocketAddr,
        port: u16,
    ) -> Job<'a> {
        Job {
            ca,
            domains: names,
            responder,
            validation_port: port,
            preflight: true,
            certbot_dir: "/etc/letsencrypt",
            key_pem: None,
            dns: None,
        }
    }

    fn message(outcome: &Outcome) -> String {
        match &outcome.result {
            Ok(_) => "issued".into(),
            Err(Failure::Before(e)) => format!("before: {e:#}"),
            Err(Failure::Order(e)) => format!("order: {e:#}"),
        }
    }

    #[test]
    fn a_failed_preflight_fails_its_job_alone_and_the_account_is_asked_for_once() {
        let (_dir, host) = host();
        let ca = Ca::start();
        let settings = ca.settings();
        let responder_port = closed_port();
        let responder = SocketAddr::from(([127, 0, 0, 1], responder_port));
        let closed = closed_port();
        let names = ["127.0.0.1".to_string()];
        let jobs = [
            job(&settings, &names, responder, responder_port),
            job(&settings, &names, responder, closed),
            job(&settings, &names, responder, responder_port),
        ];
        let outcomes = issue_all(&host, &jobs);
        let said: Vec<String> = outcomes.iter().map(message).collect();
        assert_eq!(said.len(), 3);
        assert!(
            said[1].starts_with("before: preflight for 127.0.0.1 failed; the CA was not contacted")
                && said[1].contains(&format!("port {closed}")),
            "{said:?}"
        );
        // The two whose preflight passed share one registration attempt:
        // the CA's (failed) answer is theirs, not the third's.
        for i in [0, 2] {
            assert!(
                said[i].starts_with(&format!("before: registering with {}", settings.directory)),
                "{said:?}"
            );
        }
        assert_eq!(ca.connections(), 1, "one registration for the batch");
    }

    #[test]
    fn when_every_preflight_fails_nothing_reaches_the_ca() {
        let (_dir, host) = host();
        let ca = Ca::start();
        let settings = ca.settings();
        let responder = SocketAddr::from(([127, 0, 0, 1], closed_port()));
        let names = ["127.0.0.1".to_string()];
        let jobs: Vec<Job> = (0..3)
            .map(|_| job(&settings, &names, responder, closed_port()))
            .collect();
        for outcome in issue_all(&host, &jobs) {
            assert!(
                message(&outcome).contains("the CA was not contacted"),
                "{}",
                message(&outcome)
            );
        }
        assert_eq!(ca.connections(), 0, "the CA heard nothing");
        assert!(
            !host.path(crate::paths::ACCOUNTS_DIR).exists(),
            "no account stored"
        );
    }

    #[test]
    fn a_responder_that_cannot_listen_fails_every_job_before_the_ca() {
        let (_dir, host) = host();
        let ca = Ca::start();
        let settings = ca.settings();
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let responder = taken.local_addr().expect("address");
        let names = ["127.0.0.1".to_string()];
        let jobs = [job(&settings, &names, responder, 80)];
        let said = message(&issue_all(&host, &jobs)[0]);
        assert!(
            said.starts_with("before: cannot listen on")
                && said.ends_with("the CA was not contacted"),
            "{said}"
        );
        assert_eq!(ca.connections(), 0);
    }
}
