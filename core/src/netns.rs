//! `--netns NAME`: enter a named network namespace (as made by `ip netns add`). `main` calls this
//! as its own step, before any socket is read and before any other thread starts, so switching
//! the process's one thread then is enough: threads started later (the per-family dumps, the
//! fd-table readers) inherit it, and `/proc/net` (a link to `/proc/self/net`) follows it too.
//! `--all-netns` instead enters each namespace on a thread of its own (see `query`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::os;

/// Where `ip netns` keeps its bind mounts.
const NETNS_RUN_DIR: &str = "/run/netns";

/// Enters the network namespace `ip netns` calls `name` (`/run/netns/NAME`).
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

/// `--netns-pid PID`: enter the network namespace process PID lives in (a container's), through
/// `ROOT/PID/ns/net`.
pub fn enter_pid(root: &Path, pid: u32) -> Result<()> {
    let name = format!("pid:{pid}");
    let path = root.join(pid.to_string()).join("ns/net");
    let file = std::fs::File::open(&path).map_err(|source| Error::NetnsMissing { name: name.clone(), path, source })?;
    os::enter_netns(&file).map_err(|source| Error::NetnsEnter { name, source })
}

/// Whether process `pid` lives in this process's network namespace (true where either cannot be
/// read: the caller then reads its own, as before).
pub fn shares_ours(root: &Path, pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (
        id(&root.join("thread-self/ns/net")).or(id(&root.join("self/ns/net"))),
        id(&root.join(pid.to_string()).join("ns/net")),
    ) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => true,
    }
}

/// One network namespace found by [`all`]: its label and an open handle to enter it with.
#[derive(Debug)]
pub struct Namespace {
    /// `host` for the initial namespace, `NAME` for one `ip netns` named, else `pid:PID` of the
    /// lowest pid living in it.
    pub label: std::sync::Arc<str>,
    /// An open handle to it.
    pub file: std::fs::File,
}

/// `--all-netns`: every distinct network namespace on the host, each once (by the nsfs inode
/// behind it): the named ones in `/run/netns` first, then those of running processes, lowest pid
/// first (so the host's own is usually `pid:1`). Processes that exit while being looked at, or
/// whose namespace may not be opened, are skipped.
pub fn all(root: &Path) -> Vec<Namespace> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut add = |label: String, path: &Path| {
        let Ok(file) = std::fs::File::open(path) else { return };
        let Ok(meta) = file.metadata() else { return };
        if seen.insert((meta.dev(), meta.ino())) {
            out.push(Namespace { label: label.into(), file });
        }
    };
    // The initial namespace (pid 1's) is the host's, first and by that name.
    add("host".to_owned(), &root.join("1/ns/net"));
    let mut names: Vec<String> = std::fs::read_dir(NETNS_RUN_DIR)
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        add(name.clone(), &Path::new(NETNS_RUN_DIR).join(&name));
    }
    let mut pids: Vec<u32> = std::fs::read_dir(root)
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        add(format!("pid:{pid}"), &root.join(pid.to_string()).join("ns/net"));
    }
    out
}
