//! `--netns NAME`: enter a named network namespace (as made by `ip netns add`). `main` calls this
//! as its own step before any socket is read. The CLI is single-threaded, so switching the
//! process's only thread is enough; threads started later (the per-family dumps) inherit it, and
//! `/proc/net` (a link to `/proc/self/net`) follows it too.

use std::path::Path;

use crate::error::{Error, Result};
use crate::os;

/// Where `ip netns` keeps its bind mounts.
const NETNS_RUN_DIR: &str = "/run/netns";

pub fn enter(name: &str) -> Result<()> {
    let path = Path::new(NETNS_RUN_DIR).join(name);
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
    os::enter_netns(&file).map_err(|source| Error::NetnsEnter { name: name.to_owned(), source })
}
