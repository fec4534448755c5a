//! Exit codes (documented in the README) and the error that carries one.

pub const OK: i32 = 0;
/// A step or handler failed (the host may be partly converged; rerun after fixing).
pub const FAILED: i32 = 1;
/// Invalid input or usage: nothing was changed. (clap uses 2 for usage errors too.)
pub const INVALID_INPUT: i32 = 2;
/// `plan` found changes to make.
pub const CHANGES_PENDING: i32 = 3;
/// Another edgeup run holds the lock: nothing was changed.
pub const LOCKED: i32 = 4;
/// This host cannot be converged as it is (not root, no systemd, unsupported distro).
pub const HOST_UNSUITABLE: i32 = 5;
/// `status`: the site is not healthy (a check failed; see its message).
pub const UNHEALTHY: i32 = 6;

/// An error that decides the process exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub fn invalid(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: INVALID_INPUT,
        message: message.into(),
    }
    .into()
}

pub fn unsuitable(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: HOST_UNSUITABLE,
        message: message.into(),
    }
    .into()
}

/// The exit code for an error: its own if it carries one, else FAILED.
pub fn code_of(error: &anyhow::Error) -> i32 {
    if let Some(exit) = error.downcast_ref::<Exit>() {
        return exit.code;
    }
    if error
        .downcast_ref::<crate::host::lock::LockHeld>()
        .is_some()
    {
        return LOCKED;
    }
    FAILED
}
