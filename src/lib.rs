//! edgeup: converge a host to "HAProxy in front of a web app, with HTTPS".

pub mod acme;
pub mod app;
pub mod assets;
pub mod cli;
pub mod distro;
pub mod engine;
pub mod exit;
pub mod facts;
pub mod fleet;
pub mod host;
pub mod pki;
pub mod playbook;
pub mod render;
pub mod report;
pub mod site;
pub mod steps;
