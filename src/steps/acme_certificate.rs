//! The CA-issued certificate in HAProxy's crt directory. Converged when the
//! PEM holds a CA-issued certificate (not the placeholder) from the
//! configured directory, covering every name, whose key matches, outside the
//! renewal window, 0600 root. Otherwise: preflight, issue (builtin or
//! certbot), check the result, swap it in atomically. On any failure the
//! current PEM (placeholder or previous certificate) stays in place.
//!
//! With the builtin client, `apply` is split in two so the engine can apply
//! a run of these steps together (engine/batch.rs): `obtain_together` (the
//! slow part, for many entries at once: preflights and orders overlap) and
//! `finish` (one entry's checks and swap, in playbook order). `apply` is
//! the same two calls for one entry. certbot goes one at a time.

use super::pem_file::PemDrift;
use super::{Ctx, Describe, Diff, State, Step, pem_file};
use crate::acme::batch::{self, Failure};
use crate::acme::builtin::Issued;
use crate::acme::responder;
use crate::acme::{CaSettings, account, ari, builtin, certbot, policy, preflight};
use crate::dns::Dns01;
use crate::notify;
use crate::pki;
use crate::site::RawDns;
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
    /// `ecdsa-p256` or `rsa-2048`.
    pub key_type: String,
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

    /// Why the certificate must be (re)issued, or None.
    fn content_problem(&self, ctx: &Ctx) -> Result<Option<String>> {
        if ctx.force {
            return Ok(Some("renewal forced".into()));
        }
        let Some(pem) = ctx.host.read_no_follow(&self.path)? else {
            return Ok(Some("no certificate yet".into()));
        };
        let bundle = match pki::parse_bundle(&pem) {
            Ok(b) => b,
            Err(e) => return Ok(Some(format!("the current PEM is unreadable ({e:#})"))),
        };
        let Some(leaf) = bundle.leaf() else {
            return Ok(Some("no certificate in the PEM".into()));
        };
        let now = pki::now();
        let verdict = pki::judge_leaf(leaf, bundle.key_matches(), &self.domains, now);
        if verdict.placeholder {
            return Ok(Some("replace the self-signed placeholder".into()));
        }
        if !verdict.key_matches {
            return Ok(Some("the key does not match the certificate".into()));
        }
        if let Some(missing) = verdict.uncovered {
            return Ok(Some(format!("the certificate does not cover {missing}")));
        }
        let issued_by = ctx
            .host
            .read_string(&issuer_record(ctx.state_dir, self.primary()?))?
            .map(|s| s.trim().to_string());
        if issued_by.as_deref() != Some(self.ca.directory.as_str()) {
            return Ok(Some(format!(
                "the certificate was not issued by {} (issued by {})",
                self.ca.directory,
                issued_by.unwrap_or_else(|| "an unknown CA".into())
            )));
        }
        if let Some(why) = verdict.renewal_due {
            return Ok(Some(why));
        }
        if self.ari && self.ca.client == "builtin" {
            // A CA without ARI, or one that cannot be reached right now, leaves
            // the lifetime rule in charge: never a reason to fail a renew run.
            if let Ok(Some(window)) = ari::window(ctx.host, &self.ca, &pem)
                && ari::due(window, now, &leaf.public_key)
            {
                return Ok(Some(
                    "the CA's suggested renewal window (ARI) is open".into(),
                ));
            }
        }
        Ok(None)
    }

    /// Whether the engine may apply this entry together with its neighbours
    /// (engine/batch.rs): the builtin client. certbot stays one certificate
    /// at a time: it holds its own lock, and its standalone server needs
    /// the responder's port.
    pub fn batchable(&self) -> bool {
        self.ca.client != "certbot"
    }

    /// What must hold before this entry may ask the CA for anything: no
    /// recorded rate limit in force, and a responder port only root can bind.
    fn may_order(&self, ctx: &Ctx) -> Result<()> {
        let domain = self.primary()?;
        let now = pki::now();
        if let Some(until) = policy::retry_after(ctx.host, ctx.state_dir, domain)?
            && until > now
            && !ctx.force
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
            let before_ca = if drift.pem.content.is_some() {
                cert.may_order(ctx).and_then(|()| {
                    Ok((
                        builtin::new_key(ctx.host, &cert.key_type)?,
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

    /// certbot's way, one entry: the checks, the preflight on a responder of
    /// its own (gone before certbot binds the port), the account, certbot.
    fn obtain_alone(&self, ctx: &Ctx, drift: &CertDrift) -> Obtained {
        let started = Instant::now();
        let result = if drift.pem.content.is_some() {
            self.certbot_issue(ctx).map(Some)
        } else {
            Ok(None)
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
        let name = self.primary()?;
        let live = certbot::live_dir(&self.certbot_dir, name);
        let read =
            |f: &str| -> Result<Option<String>> { ctx.host.read_string(&format!("{live}/{f}")) };
        // A valid, current lineage (e.g. the PEM was deleted): reuse it.
        let reusable = match (read("fullchain.pem")?, read("privkey.pem")?) {
            (Some(chain), Some(key)) if lineage_current(&chain, &key, &self.domains) => {
                Some(Issued {
                    chain_pem: chain,
                    key_pem: key,
                })
            }
            _ => None,
        };
        if let Some(issued) = reusable.filter(|_| !ctx.force) {
            return Ok(issued);
        }
        let lineage_exists = read("fullchain.pem")?.is_some();
        certbot::certonly(
            ctx.host,
            &self.ca,
            &self.certbot_dir,
            &self.domains,
            &self.key_type,
            self.responder,
            ctx.force || lineage_exists,
        )?;
        match (read("fullchain.pem")?, read("privkey.pem")?) {
            (Some(chain_pem), Some(key_pem)) => Ok(Issued { chain_pem, key_pem }),
            _ => bail!("certbot reported success but {live} has no fullchain.pem/privkey.pem"),
        }
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

fn lineage_current(chain: &str, key: &str, domains: &[String]) -> bool {
    let Ok(bundle) = pki::parse_bundle(format!("{chain}{key}").as_bytes()) else {
        return false;
    };
    pki::judge(&bundle, domains, pki::now())
        .is_some_and(|v| v.key_matches && v.uncovered.is_none() && v.renewal_due.is_none())
}

/// What differs about a CA-issued certificate: the PEM (a new
/// certificate is needed, or only its mode/owner), and the account that
/// must be registered first.
#[derive(Debug, Clone, PartialEq)]
pub struct CertDrift {
    pub pem: PemDrift,
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
        let problem = self
            .content_problem(ctx)?
            .map(|p| format!("obtain a certificate{how}: {p}"));
        let content = problem.is_some();
        let pem = pem_file::drift(ctx, &self.path, &self.owner, &self.group, problem)?;
        let register = (content && !account::registered(ctx.host, &self.ca, &self.certbot_dir)?)
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
        Ok(State::Drift(CertDrift { pem, register }))
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
