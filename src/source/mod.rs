//! Socket sources. `auto` uses netlink and falls back to procfs only when the kernel refuses
//! netlink (a locked-down container), never on a decode error.

#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod procfs;

use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{ProcPaths, Snapshot, Source};

#[cfg(target_os = "linux")]
pub fn read(choice: Source, filter: &Filter, paths: &ProcPaths) -> Result<Snapshot> {
    let taken_at = SystemTime::now();
    let (source, sockets) = match choice {
        Source::Netlink => (Source::Netlink, netlink::read(filter)?),
        Source::Procfs => (Source::Procfs, procfs::read(filter, paths)?),
        Source::Auto => match netlink::read(filter) {
            Ok(sockets) => (Source::Netlink, sockets),
            Err(Error::NetlinkRefused(_)) => (Source::Procfs, procfs::read(filter, paths)?),
            Err(e) => return Err(e),
        },
    };
    Ok(Snapshot { source, taken_at, sockets })
}

#[cfg(not(target_os = "linux"))]
pub fn read(_choice: Source, _filter: &Filter, _paths: &ProcPaths) -> Result<Snapshot> {
    let _ = SystemTime::now();
    Err(Error::Unsupported("reading TCP sockets"))
}
