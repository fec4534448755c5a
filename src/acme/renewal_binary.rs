//! Which edgeup the renewal unit runs: the one place that decides. The
//! package's `/usr/bin/edgeup` when this run is that very file and it is the
//! package manager's (a regular file, not a link, root's, writable by root
//! only): edgeup then copies itself nowhere and never writes or chmods it.
//! Otherwise `/usr/local/bin/edgeup`, where `steps::install_self` puts this
//! binary. Fleet uses the same two paths on its hosts (`fleet::host`).

use crate::host::Host;
use std::os::unix::fs::MetadataExt;

use crate::paths::{INSTALL_PATH, PACKAGED_PATH};

/// The path edgeup-renew.service runs.
pub fn renewal_binary(host: &Host) -> &'static str {
    if runs_packaged(host) {
        PACKAGED_PATH
    } else {
        INSTALL_PATH
    }
}

/// This run is the packaged `/usr/bin/edgeup`, and that file is one only
/// root can change.
pub fn runs_packaged(host: &Host) -> bool {
    let Some(exe) = host.running_binary() else {
        return false;
    };
    let packaged = host.path(PACKAGED_PATH);
    let Ok(meta) = std::fs::symlink_metadata(&packaged) else {
        return false;
    };
    if !meta.file_type().is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return false;
    }
    match (exe.canonicalize(), packaged.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::scripted::ScriptedRunner;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// A root with /usr/bin/edgeup (0755, owned by `uid`) and /opt/edgeup.
    fn root(uid: u32, mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for rel in ["usr/bin/edgeup", "opt/edgeup"] {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, b"edgeup").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        std::os::unix::fs::chown(dir.path().join("usr/bin/edgeup"), Some(uid), Some(0))
            .expect("chown (the tests run as root)");
        dir
    }

    fn host(root: &Path, exe: &str) -> Host {
        let runner = ScriptedRunner::new(root.to_path_buf());
        Host::new(root.to_path_buf(), Box::new(runner))
            .with_running_binary(root.join(exe.trim_start_matches('/')))
    }

    #[test]
    fn the_packaged_binary_runs_itself() {
        let dir = root(0, 0o755);
        assert_eq!(
            renewal_binary(&host(dir.path(), PACKAGED_PATH)),
            PACKAGED_PATH
        );
        let readonly = root(0, 0o555);
        assert_eq!(
            renewal_binary(&host(readonly.path(), PACKAGED_PATH)),
            PACKAGED_PATH
        );
    }

    #[test]
    fn any_other_binary_is_installed_at_usr_local_bin() {
        let dir = root(0, 0o755);
        assert_eq!(
            renewal_binary(&host(dir.path(), "/opt/edgeup")),
            INSTALL_PATH
        );
    }

    #[test]
    fn a_packaged_path_others_can_change_is_not_trusted() {
        for (uid, mode) in [(0, 0o775), (0, 0o757), (65534, 0o755)] {
            let dir = root(uid, mode);
            assert_eq!(
                renewal_binary(&host(dir.path(), PACKAGED_PATH)),
                INSTALL_PATH,
                "uid {uid} mode {mode:o}"
            );
        }
    }

    #[test]
    fn a_link_at_the_packaged_path_is_not_the_package() {
        let dir = root(0, 0o755);
        let link = dir.path().join("usr/bin/edgeup");
        std::fs::remove_file(&link).expect("rm");
        std::os::unix::fs::symlink(dir.path().join("opt/edgeup"), &link).expect("ln");
        // Run through the link: the kernel names the target, which is not /usr/bin/edgeup.
        assert_eq!(
            renewal_binary(&host(dir.path(), "/opt/edgeup")),
            INSTALL_PATH
        );
        assert_eq!(
            renewal_binary(&host(dir.path(), PACKAGED_PATH)),
            INSTALL_PATH
        );
    }

    #[test]
    fn no_running_binary_means_no_package() {
        let dir = root(0, 0o755);
        let runner = ScriptedRunner::new(dir.path().to_path_buf());
        let mut h = Host::new(dir.path().to_path_buf(), Box::new(runner));
        h = h.with_running_binary(PathBuf::from("/nonexistent/edgeup"));
        assert_eq!(renewal_binary(&h), INSTALL_PATH);
    }
}
