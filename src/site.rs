//! The user's sites: what to serve, where, and how to get certificates.
//! Read from YAML and/or command-line flags as strings (`raw`), resolved
//! into one `RawSite` per site (`config`), then validated as a whole into
//! the typed `Config` of typed `Site`s (`validate`, `model`) before
//! anything touches the host.

pub mod addr;
pub mod config;
pub mod edit;
mod model;
pub mod raw;
mod validate;

pub use config::{Config, SiteFile};
pub use model::{
    Acme, AcmeClient, Challenge, Directory, FirewallBackend, KeyType, Listen, Routing, Site,
    from_name, names,
};
pub use raw::{Eab, RawAcme, RawDns, RawListen, RawNotify, RawSite};
pub use validate::{
    Problem, config_warnings, name_collisions, parse_dns, parse_notify, parse_site, validate,
    validate_config,
};

/// Where the HTTP-01 responder (builtin client or certbot standalone) listens
/// by default: a loopback port below 1024, which only root can bind, so no
/// local user can answer (or block) the CA's challenges for the sites.
pub const DEFAULT_ACME_RESPONDER: &str = "127.0.0.1:888";

/// The default of earlier releases, which wrote it into every site record:
/// read as the current default (an unprivileged port any local user could
/// bind; see `RawListen::migrate`).
pub const LEGACY_ACME_RESPONDER: &str = "127.0.0.1:8688";
