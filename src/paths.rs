//! edgeup's well-known paths and unit names, each defined once. Modules
//! and the playbook (through `render::Vars::paths`) use these.

use serde::Serialize;

// The two roots, as literals `concat!` can build on.
macro_rules! config_dir {
    () => {
        "/etc/edgeup"
    };
}
macro_rules! state_dir {
    () => {
        "/var/lib/edgeup"
    };
}

/// The config directory edgeup owns whole (the site record, ACME accounts).
pub const CONFIG_DIR: &str = config_dir!();

/// Where `edgeup init` and `edgeup site` write the sites, where `apply`
/// records them, and where plan/apply look by default.
pub const SITE_FILE: &str = concat!(config_dir!(), "/site.yaml");

/// The builtin client's accounts, one directory per ACME directory.
pub const ACCOUNTS_DIR: &str = concat!(config_dir!(), "/acme");

/// edgeup's own state: backups, pending handlers, ACME records, the run lock.
pub const STATE_DIR: &str = state_dir!();

/// Where a retired site's certificate is archived (not deleted).
pub const ARCHIVE_DIR: &str = concat!(state_dir!(), "/archive");

/// The fixed, root-owned path of the edgeup that timers run when it does not
/// come from a package (fleet installs it there too). No space or `%`:
/// systemd takes it as written.
pub const INSTALL_PATH: &str = "/usr/local/bin/edgeup";

/// Where the .deb and .rpm install edgeup (owned by the package manager).
pub const PACKAGED_PATH: &str = "/usr/bin/edgeup";

/// Where edgeup writes systemd units.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The builtin client's renewal: the service runs `edgeup renew`, the timer starts it.
pub const RENEW_SERVICE: &str = "edgeup-renew.service";
pub const RENEW_TIMER: &str = "edgeup-renew.timer";

/// The paths as the playbook sees them (`paths.site_file`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct PathVars {
    pub site_file: &'static str,
    pub state_dir: &'static str,
    pub archive_dir: &'static str,
    pub unit_dir: &'static str,
    pub renew_service: &'static str,
    pub renew_timer: &'static str,
}

/// Every path the playbook names, as `render::Vars::paths`.
pub const PATH_VARS: PathVars = PathVars {
    site_file: SITE_FILE,
    state_dir: STATE_DIR,
    archive_dir: ARCHIVE_DIR,
    unit_dir: UNIT_DIR,
    renew_service: RENEW_SERVICE,
    renew_timer: RENEW_TIMER,
};
