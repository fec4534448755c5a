//! The CA-issued certificate in HAProxy's crt directory. Converged when the
//! PEM holds a CA-issued certificate (not the placeholder) from the
//! configured directory, covering every name, whose key matches, outside the
//! renewal window, 0600 root, and (certbot) no newer current lineage.
//! Otherwise: with certbot, a current lineage from this CA is installed as
//! it is; else preflight, issue (builtin or certbot), check the result,
//! swap it in atomically. On any failure the current PEM (placeholder or
//! previous certificate) stays in place.
//!
//! With the builtin client, `apply` is split in two so the engine can apply
//! a run of these steps together (engine/batch.rs): `obtain_together` (the
//! slow part, for many entries at once: preflights and orders overlap) and
//! `finish` (one entry's checks and swap, in playbook order). `apply` is
//! the same two calls for one entry. certbot goes one at a time.

use super::pem_file::PemDrift;
use super::{Ctx, Describe, Diff, Renewal, State, Step, pem_file};
use crate::acme::batch::{self, Failure};
use crate::acme::builtin::Issued;
use crate::acme::responder;
use crate::acme::{CaSettings, account, ari, builtin, certbot, policy, preflight};
use crate::dns::Dns01;
use crate::notify;
use crate::pki;
use crate::site::{AcmeClient, KeyType, RawDns};
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AcmeCertificate {
    pub ca: CaSettings,
    /// First name is the primary (lineage / file name).
    pub domains: Vec<String>,
    /// The combined PEM HAProxy serves.
    pub path: String,
    pub owner: String,
    pub group: String,
    pub key_type: KeyType,
    /// Loopback address of the HTTP-01 responder (HAProxy's acme backend).
    pub responder: std::net::SocketAddr,
    /// Port the CA connects to for HTTP-01 (80 for public CAs).
    pub validation_port: u16,
    pub preflight: bool,
    pub certbot_dir: String,
    /// Ask the CA for its renewal window (ARI; builtin client, `edgeup renew`).
    #[serde(default)]
    pub ari: bool,
    /// dns-01 through this provider (`acme.dns` as the site file spells
    /// it); None: HTTP-01 through the responder.
    #[serde(default)]
    pub dns: Option<RawDns>,
}

/// Which directory issued the current certificate (to notice a switch, e.g.
/// from staging to production).
fn issuer_record(state_dir: &str, domain: &str) -> String {
    format!("{state_dir}/acme/{domain}.directory")
}

impl AcmeCertificate {
    fn primary(&self) -> Result<&str> {
        self.domains
            .first()
            .map(String::as_str)
            .context("acme_certificate needs at least one domain")
    }

    /// What the current PEM's problem is, if any, and its certificate.
    fn pem_state(&self, ctx: &Ctx) -> Result<PemState> {
        let problem = |why: &str| PemState {
            problem: Some(why.to_string()),
            leaf: None,
        };
        let Some(pem) = ctx.host.read_no_follow(&self.path)? else {
            return Ok(problem("no certificate yet"));
        };
        let bundle = match pki::parse_bundle(&pem) {
            Ok(b) => b,
            Err(e) => return Ok(problem(&format!("the current PEM is unreadable ({e:#})"))),
        };
        let Some(leaf) = bundle.leaf() else {
            return Ok(problem("no certificate in the PEM"));
        };
        let now = pki::now();
        let verdict = pki::judge_leaf(leaf, bundle.key_matches(), &self.domains, now);
        let issued_by = ctx
            .host
            .read_string(&issuer_record(ctx.state_dir, self.primary()?))?
            .map(|s| s.trim().to_string());
        let problem = if verdict.placeholder {
            Some("replace the self-signed placeholder".to_string())
        } else if !verdict.key_matches {
            Some("the key does not match the certificate".into())
        } else if let Some(missing) = verdict.uncovered {
            Some(format!("the certificate does not cover {missing}"))
        } else if issued_by.as_deref() != Some(self.ca.directory.as_str()) {
            Some(format!(
                "the certificate was not issued by {} (issued by {})",
                self.ca.directory,
                issued_by.unwrap_or_else(|| "an unknown CA".into())
            ))
        } else if let Some(why) = verdict.renewal_due {
            Some(why)
        } else if self.ari && self.ca.client == AcmeClient::Builtin {
            // A CA without ARI, or one that cannot be reached right now, leaves
            // the lifetime rule in charge: never a reason to fail a renew run.
            match ari::window(ctx.host, &self.ca, &pem) {
                Ok(Some(window)) if ari::due(window, now, &leaf.public_key) => {
                    Some("the CA's suggested renewal window (ARI) is open".into())
                }
                _ => None,
            }
        } else {
            None
        };
        Ok(PemState {
            problem,
            leaf: Some(leaf.clone()),
        })
    }

    /// Why the certificate must change and where the new one comes from;
    /// None: converged. With certbot, a current lineage from this CA is
    /// installed as it is (certbot renewed it, or the PEM was lost): only a
    /// forced renewal, or a lineage that is not current, asks the CA, and
    /// `--from-certbot` never does.
    fn needed(&self, ctx: &Ctx) -> Result<Option<Need>> {
        if ctx.renewal == Renewal::Forced {
            return Ok(Some(Need::ca("renewal forced".into())));
        }
        let lineage = match self.ca.client {
            AcmeClient::Certbot => Some(self.lineage(ctx)?),
            AcmeClient::Builtin => None,
        };
        let pem = self.pem_state(ctx)?;
        if let Some(Lineage::Current { leaf: renewed, .. }) = &lineage {
            let newer = pem
                .leaf
                .as_ref()
                .is_some_and(|leaf| leaf != renewed && renewed.not_before >= leaf.not_before);
            let why = pem
                .problem
                .or_else(|| newer.then(|| "certbot renewed it".to_string()));
            return Ok(why.map(|why| Need {
                why,
                source: Source::Lineage,
            }));
        }
        if ctx.renewal == Renewal::FromCertbot {
            // What would be an order is refused, saying why certbot's
            // certificate cannot be installed.
            let why = match lineage {
                Some(Lineage::Unusable(why)) => Some(why),
                _ => pem
                    .problem
                    .map(|p| format!("{p}, and this site's certificate is not certbot's")),
            };
            return Ok(why.map(|why| Need {
                why: why.clone(),
                source: Source::Nowhere(why),
            }));
        }
        Ok(pem.problem.map(Need::ca))
    }

    /// fullchain.pem and privkey.pem of certbot's lineage, when both are there.
    fn lineage_files(&self, ctx: &Ctx) -> Result<Option<Issued>> {
        let live = certbot::live_dir(&self.certbot_dir, self.primary()?);
        let read =
            |f: &str| -> Result<Option<String>> { ctx.host.read_string(&format!("{live}/{f}")) };
        Ok(match (read("fullchain.pem")?, read("privkey.pem")?) {
            (Some(chain_pem), Some(key_pem)) => Some(Issued { chain_pem, key_pem }),
            _ => None,
        })
    }

    /// certbot's lineage for this certificate: current (from this CA, its
    /// key matching, covering every name, not due) or why not.
    fn lineage(&self, ctx: &Ctx) -> Result<Lineage> {
        let name = self.primary()?;
        let live = certbot::live_dir(&self.certbot_dir, name);
        let Some(issued) = self.lineage_files(ctx)? else {
            return Ok(Lineage::Unusable(format!("{live} holds no certificate")));
        };
        let server = certbot::lineage_server(ctx.host, &self.certbot_dir, name)?;
        if server.as_deref() != Some(self.ca.directory.as_str()) {
            return Ok(Lineage::Unusable(format!(
                "certbot's lineage {name} is from {}, not {}",
                server.unwrap_or_else(|| "an unknown CA".into()),
                self.ca.directory
            )));
        }
        let verdict =
            pki::parse_bundle(format!("{}{}", issued.chain_pem, issued.key_pem).as_bytes())
                .ok()
                .and_then(|bundle| {
                    let verdict = pki::judge(&bundle, &self.domains, pki::now())?;
                    Some((bundle.leaf().cloned()?, verdict))
                });
        let Some((leaf, verdict)) = verdict else {
            return Ok(Lineage::Unusable(format!(
                "{live} holds no readable certificate"
            )));
        };
        Ok(if !verdict.key_matches {
            Lineage::Unusable(format!("the key in {live} does not match its certificate"))
        } else if let Some(missing) = verdict.uncovered {
            Lineage::Unusable(format!(
                "the certificate in {live} does not cover {missing}"
            ))
        } else if let Some(why) = verdict.renewal_due {
            Lineage::Unusable(format!("the certificate in {live} is due ({why})"))
        } else {
            Lineage::Current { leaf, issued }
        })
    }

    /// Whether the engine may apply this entry together with its neighbours
    /// (engine/batch.rs): the builtin client. certbot stays one certificate
    /// at a time: it holds its own lock, and its standalone server needs
    /// the responder's port.
    pub fn batchable(&self) -> bool {
        self.ca.client == AcmeClient::Builtin
    }

    /// What must hold before this entry may ask the CA for anything: no
    /// recorded rate limit in force, and a responder port only root can bind.
    fn may_order(&self, ctx: &Ctx) -> Result<()> {
        let domain = self.primary()?;
        let now = pki::now();
        if let Some(until) = policy::retry_after(ctx.host, ctx.state_dir, domain)?
            && until > now
            && ctx.renewal != Renewal::Forced
        {
            bail!(
                "the CA rate-limited the last order; not retrying for another {} minutes \
                 (the current certificate stays in place; `edgeup renew --force` overrides)",
                (until - now + 59) / 60
            );
        }
        if self.dns.is_some() {
            // dns-01: nothing on this host answers the CA.
            return Ok(());
        }
        responder::require_privileged_port(ctx.host, self.responder)
    }

    /// The dns-01 provider, ready (its key or env file read), with the
    /// records an earlier, killed run left taken away; None for HTTP-01.
    fn dns_provider(&self, ctx: &Ctx) -> Result<Option<Arc<Dns01>>> {
        let Some(raw) = &self.dns else {
            return Ok(None);
        };
        let settings = crate::site::parse_dns(raw).map_err(|p| anyhow!("{p}"))?;
        let dns = Dns01::new(ctx.host, &settings, ctx.state_dir)?;
        // A leftover that cannot be removed now is retried next run; it
        // does not stand in the way of this order.
        let _ = dns.cleanup_leftovers();
        Ok(Some(Arc::new(dns)))
    }

    /// The slow part of `apply` for several entries (builtin client) at
    /// once, each with the drift its check found: each entry's local checks
    /// and key, then every preflight and order together (acme::batch: one
    /// responder, the account ensured once after a preflight passed). One
    /// result per entry, in order; nothing is installed yet (`finish`).
    pub fn obtain_together(ctx: &Ctx, members: &[(&AcmeCertificate, &CertDrift)]) -> Vec<Obtained> {
        let mut obtained: Vec<Option<Obtained>> = members.iter().map(|_| None).collect();
        let mut places = Vec::new();
        let mut jobs = Vec::new();
        for (place, (cert, drift)) in members.iter().enumerate() {
            let started = Instant::now();
            if drift.pem.content.is_some() && drift.source != Source::Ca {
                // Nothing to order (certbot's lineage, or a refusal).
                if let Some(slot) = obtained.get_mut(place) {
                    *slot = Some(cert.obtain_alone(ctx, drift));
                }
                continue;
            }
            let before_ca = if drift.pem.content.is_some() {
                cert.may_order(ctx).and_then(|()| {
                    Ok((
                        builtin::new_key(ctx.host, cert.key_type)?,
                        cert.dns_provider(ctx)?,
                    ))
                })
            } else {
                // Only the owner or mode drifted: nothing to ask the CA.
                if let Some(slot) = obtained.get_mut(place) {
                    *slot = Some(Obtained {
                        result: Ok(None),
                        took: started.elapsed(),
                    });
                }
                continue;
            };
            match before_ca {
                Ok((key_pem, dns)) => {
                    places.push((place, started.elapsed()));
                    jobs.push(batch::Job {
                        ca: &cert.ca,
                        domains: &cert.domains,
                        responder: cert.responder,
                        validation_port: cert.validation_port,
                        preflight: cert.preflight,
                        certbot_dir: &cert.certbot_dir,
                        key_pem,
                        dns,
                    });
                }
                Err(e) => {
                    if let Some(slot) = obtained.get_mut(place) {
                        *slot = Some(Obtained {
                            result: Err(Failure::Before(e)),
                            took: started.elapsed(),
                        });
                    }
                }
            }
        }
        for ((place, before), outcome) in places.into_iter().zip(batch::issue_all(ctx.host, &jobs))
        {
            if let Some(slot) = obtained.get_mut(place) {
                *slot = Some(Obtained {
                    result: outcome.result.map(Some),
                    took: before + outcome.took,
                });
            }
        }
        obtained
            .into_iter()
            .map(|o| o.unwrap_or_else(Obtained::missing))
            .collect()
    }

    /// One entry at a time: certbot's current lineage installed as it is,
    /// `--from-certbot`'s refusal to ask the CA, or certbot's order (the
    /// checks, the preflight on a responder of its own, gone before certbot
    /// binds the port, the account, certbot).
    fn obtain_alone(&self, ctx: &Ctx, drift: &CertDrift) -> Obtained {
        let started = Instant::now();
        let result = match (&drift.pem.content, &drift.source) {
            (None, _) => Ok(None),
            (Some(_), Source::Lineage) => match self.lineage(ctx) {
                Ok(Lineage::Current { issued, .. }) => Ok(Some(issued)),
                Ok(Lineage::Unusable(why)) => Err(Failure::Before(anyhow!(
                    "certbot's certificate cannot be installed: {why}"
                ))),
                Err(e) => Err(Failure::Before(e)),
            },
            (Some(_), Source::Nowhere(why)) => Err(Failure::Before(anyhow!(
                "{why}; the CA was not asked (`edgeup renew {}` orders a new certificate)",
                self.domains.first().map(String::as_str).unwrap_or_default()
            ))),
            (Some(_), Source::Ca) => self.certbot_issue(ctx).map(Some),
        };
        Obtained {
            result,
            took: started.elapsed(),
        }
    }

    fn certbot_issue(&self, ctx: &Ctx) -> Result<Issued, Failure> {
        self.may_order(ctx).map_err(Failure::Before)?;
        if self.preflight {
            let domain = self.primary().map_err(Failure::Before)?;
            preflight::run_alone(domain, self.validation_port, self.responder)
                .map_err(Failure::Before)?;
        }
        // The first request to the CA: only after the preflight passed.
        account::ensure(ctx.host, &self.ca, &self.certbot_dir).map_err(Failure::Before)?;
        self.certbot_obtain(ctx).map_err(Failure::Order)
    }

    fn certbot_obtain(&self, ctx: &Ctx) -> Result<Issued> {
        let live = certbot::live_dir(&self.certbot_dir, self.primary()?);
        // An existing lineage that is not current (check installs a current
        // one as it is): certbot renews it only when told to.
        let lineage_exists = ctx.host.read(&format!("{live}/fullchain.pem"))?.is_some();
        certbot::certonly(
            ctx.host,
            &self.ca,
            &self.certbot_dir,
            &self.domains,
            self.key_type,
            self.responder,
            ctx.renewal == Renewal::Forced || lineage_exists,
        )?;
        self.lineage_files(ctx)?.with_context(|| {
            format!("certbot reported success but {live} has no fullchain.pem/privkey.pem")
        })
    }

    /// The rest of `apply` for one entry, once its certificate is obtained:
    /// the result checked (key, names), swapped in, its issuer recorded.
    /// A failure leaves the current PEM in place; a rate limit is recorded.
    pub fn finish(&self, ctx: &Ctx, obtained: Obtained) -> Result<()> {
        let asked = !matches!(obtained.result, Ok(None));
        let result = self.install(ctx, obtained);
        if asked {
            // What `renew`'s alerts and `status` read. Not being able to
            // note it never changes the certificate's own result.
            let outcome = match &result {
                Ok(()) => notify::Outcome::Renewed,
                Err(e) => notify::Outcome::failed(e),
            };
            let attempt = notify::Attempt::new(pki::now(), outcome).in_run(&ctx.vars.acme.run_id);
            let _ = self
                .primary()
                .and_then(|d| notify::record_attempt(ctx.host, ctx.state_dir, d, &attempt));
        }
        result
    }

    fn install(&self, ctx: &Ctx, obtained: Obtained) -> Result<()> {
        let issued = match obtained.result {
            Ok(Some(issued)) => issued,
            Ok(None) => return pem_file::fix_attrs(ctx, &self.path, &self.owner, &self.group),
            Err(Failure::Before(e)) => return Err(e),
            Err(Failure::Order(e)) => {
                let text = format!("{e:#}");
                if text.contains("rate limited") {
                    let until = policy::retry_time_from_message(&text, pki::now());
                    policy::record_backoff(ctx.host, ctx.state_dir, self.primary()?, until)?;
                }
                return Err(e.context("no new certificate; the current PEM stays in place"));
            }
        };
        let domain = self.primary()?;
        let pem = format!(
            "{}\n{}",
            issued.chain_pem.trim_end(),
            issued.key_pem.trim_start()
        );
        let bundle = pki::parse_bundle(pem.as_bytes()).context("the CA's answer is not a PEM")?;
        let verdict = pki::judge(&bundle, &self.domains, pki::now())
            .context("the CA returned no certificate")?;
        if !verdict.key_matches || verdict.uncovered.is_some() {
            bail!(
                "the issued certificate does not match the key or the names; nothing was changed"
            );
        }
        pem_file::install(ctx, &self.path, &pem, &self.owner, &self.group)?;
        let record_attrs = crate::host::FileAttrs {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        ctx.host.ensure_dir(
            &format!("{}/acme", ctx.state_dir),
            &crate::host::FileAttrs {
                mode: 0o700,
                ..record_attrs
            },
        )?;
        ctx.host.write_atomic(
            &issuer_record(ctx.state_dir, domain),
            self.ca.directory.as_bytes(),
            &record_attrs,
            None,
        )?;
        policy::clear_backoff(ctx.host, ctx.state_dir, domain)
    }
}

/// What the slow part of `apply` brought back for one entry, for `finish`.
pub struct Obtained {
    /// Ok(None): only the PEM's owner or mode drifted (nothing was asked).
    result: Result<Option<Issued>, Failure>,
    /// Time spent on this entry alone (its checks, preflight and order).
    pub took: Duration,
}

impl Obtained {
    /// In place of a result that never came (not expected: every entry
    /// gets one).
    fn missing() -> Obtained {
        Obtained {
            result: Err(Failure::Before(anyhow!("no result for this certificate"))),
            took: Duration::ZERO,
        }
    }
}

/// The current PEM as check judged it.
struct PemState {
    /// Why it must change; None: it is fine.
    problem: Option<String>,
    leaf: Option<pki::CertInfo>,
}

/// certbot's lineage as check judged it.
enum Lineage {
    /// Installable as it is.
    Current { leaf: pki::CertInfo, issued: Issued },
    /// Why not.
    Unusable(String),
}

/// Why the certificate must change, and from where.
struct Need {
    why: String,
    source: Source,
}

impl Need {
    fn ca(why: String) -> Need {
        Need {
            why,
            source: Source::Ca,
        }
    }
}

/// Where a new certificate comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An order (builtin client or certbot).
    Ca,
    /// certbot's current lineage, installed as it is.
    Lineage,
    /// Nowhere: `--from-certbot` never asks the CA, and certbot's
    /// certificate cannot be installed (why).
    Nowhere(String),
}

/// What differs about a CA-issued certificate: the PEM (a new
/// certificate is needed, or only its mode/owner), where a new one comes
/// from, and the account that must be registered first.
#[derive(Debug, Clone, PartialEq)]
pub struct CertDrift {
    pub pem: PemDrift,
    /// Where the new certificate comes from, when one is needed.
    pub source: Source,
    pub register: Option<String>,
}

impl Describe for CertDrift {
    fn lines(&self) -> Vec<String> {
        let mut lines = self.pem.lines();
        lines.extend(self.register.clone());
        lines
    }

    fn diff(&self) -> Option<Diff> {
        self.pem.diff()
    }
}

impl Step for AcmeCertificate {
    type Drift = CertDrift;

    fn check(&self, ctx: &Ctx) -> Result<State<CertDrift>> {
        let how = match &self.dns {
            Some(dns) => format!(
                " (dns-01 through {} {})",
                dns.provider,
                dns.server
                    .clone()
                    .or_else(|| dns.command.as_ref().map(|c| c.display().to_string()))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        let (problem, source) = match self.needed(ctx)? {
            Some(Need { why, source }) => {
                let line = match source {
                    Source::Ca => format!("obtain a certificate{how}: {why}"),
                    Source::Lineage | Source::Nowhere(_) => format!(
                        "install certbot's certificate from {}: {why}",
                        certbot::live_dir(&self.certbot_dir, self.primary()?)
                    ),
                };
                (Some(line), source)
            }
            None => (None, Source::Ca),
        };
        let orders = problem.is_some() && source == Source::Ca;
        let pem = pem_file::drift(ctx, &self.path, &self.owner, &self.group, problem)?;
        let register = (orders && !account::registered(ctx.host, &self.ca, &self.certbot_dir)?)
            .then(|| {
                format!(
                    "register a {} account with {} (once the preflight has passed)",
                    self.ca.client, self.ca.directory
                )
            });
        if pem.is_empty() {
            return Ok(State::Converged(format!(
                "CA-issued certificate for {} in place",
                self.domains.join(", ")
            )));
        }
        Ok(State::Drift(CertDrift {
            pem,
            source,
            register,
        }))
    }

    fn apply(&self, ctx: &Ctx, drift: &CertDrift) -> Result<()> {
        // Decided from check's drift: asking again would repeat the PEM parse
        // and, under `renew`, the CA's renewal-window request.
        let obtained = if self.batchable() {
            Self::obtain_together(ctx, &[(self, drift)])
                .into_iter()
                .next()
                .unwrap_or_else(Obtained::missing)
        } else {
            self.obtain_alone(ctx, drift)
        };
        self.finish(ctx, obtained)
    }
}
