//! Socket sources and the snapshot they produce. `auto` uses netlink and falls back to procfs
//! only when the kernel refuses netlink (a locked-down container), never on a decode error.

#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod procfs;

use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{Socket, SourceKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChoice {
    Auto,
    Netlink,
    Procfs,
}

/// The sockets one read returned, with where and when they came from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub source: SourceKind,
    pub taken_at: SystemTime,
    pub sockets: Vec<Socket>,
}

#[cfg(target_os = "linux")]
pub fn read(choice: SourceChoice, filter: &Filter) -> Result<Snapshot> {
    let taken_at = SystemTime::now();
    let (source, sockets) = match choice {
        SourceChoice::Netlink => (SourceKind::Netlink, netlink::read(filter)?),
        SourceChoice::Procfs => (SourceKind::Procfs, procfs::read(filter)?),
        SourceChoice::Auto => match netlink::read(filter) {
            Ok(sockets) => (SourceKind::Netlink, sockets),
            Err(Error::NetlinkRefused(_)) => (SourceKind::Procfs, procfs::read(filter)?),
            Err(e) => return Err(e),
        },
    };
    Ok(Snapshot { source, taken_at, sockets })
}

#[cfg(not(target_os = "linux"))]
pub fn read(_choice: SourceChoice, _filter: &Filter) -> Result<Snapshot> {
    Err(Error::Unsupported("reading TCP sockets"))
}
