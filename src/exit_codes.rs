//! The exit codes scripts rely on, as `grep` and `diff` use them.

/// What a run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Healthy, or the listing succeeded.
    Ok = 0,
    /// A gate was breached or a verification failed.
    Breached = 1,
    /// A usage or operational error (bad flag, unreadable source, missing namespace).
    Error = 2,
    /// Ended by SIGINT or SIGTERM (a drill, `fix --follow`) after cleaning up: 128 + SIGINT, as
    /// shells and other tools report an interrupted command.
    Interrupted = 130,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(code as u8)
    }
}
