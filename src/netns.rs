//! `--netns NAME`: enter a named network namespace (as made by `ip netns add`) before any socket
//! is read. The CLI is single-threaded, so switching the process's only thread is enough and
//! `/proc/net` (a link to `/proc/self/net`) follows it too.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where `ip netns` keeps its bind mounts.
const NETNS_RUN_DIR: &str = "/run/netns";

#[cfg(target_os = "linux")]
pub fn enter(name: &str) -> Result<()> {
    use std::os::fd::AsRawFd;

    let path = PathBuf::from(NETNS_RUN_DIR).join(name);
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::NetnsMissing {
            name: name.to_owned(),
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a namespace name"),
        });
    }
    let file = std::fs::File::open(&path).map_err(|source| Error::NetnsMissing {
        name: name.to_owned(),
        path: path.clone(),
        source,
    })?;
    // SAFETY: setns takes a valid open descriptor, which `file` keeps alive for the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(Error::NetnsEnter { name: name.to_owned(), source: std::io::Error::last_os_error() });
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn enter(_name: &str) -> Result<()> {
    let _ = (NETNS_RUN_DIR, PathBuf::new());
    Err(Error::Unsupported("--netns"))
}
