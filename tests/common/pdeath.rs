//! Children that die with the test thread that started them
//! (`PR_SET_PDEATHSIG`): a test binary killed before its guards run leaves
//! no server or container behind. Linux ties the signal to the *thread*
//! that forked, so keep the handle in the test (thread) that spawned it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// `signal` reaches the child when the spawning thread ends.
pub fn die_with_parent(cmd: &mut Command, signal: i32) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and calls only
    // prctl(2) and getppid(2), both async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before prctl: the signal would never come.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("parent already gone"));
            }
            Ok(())
        });
    }
}
