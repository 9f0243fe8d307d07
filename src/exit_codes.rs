//! The exit codes scripts rely on, as `grep` and `diff` use them.

use std::process::ExitCode;

/// Healthy, or the listing succeeded.
pub const OK: u8 = 0;
/// A gate was breached or a verification failed.
pub const BREACHED: u8 = 1;
/// A usage or operational error (bad flag, unreadable source, missing namespace).
pub const ERROR: u8 = 2;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}
