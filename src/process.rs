//! Socket ownership, as `ss -p` finds it: every `/proc/PID/fd/N` link of the form `socket:[INODE]`
//! maps that inode to the process. Opt-in (`-p`) because it reads one link per open file on the
//! host. Processes we may not inspect are counted, so unattributed sockets are explained.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::{Process, Socket};

/// The procfs root, honouring `PROC_ROOT` as `ss` does so tests can point it at fixtures.
pub fn proc_root() -> PathBuf {
    std::env::var_os("PROC_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/proc"))
}

/// One process holding a socket, and the descriptor it holds it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub process: Process,
    pub fd: i32,
}

#[derive(Debug, Default)]
pub struct ProcessMap {
    owners: HashMap<u64, Vec<Owner>>,
    /// Processes whose fd table we were not allowed to read.
    pub denied: usize,
}

impl ProcessMap {
    /// Scans `root` (normally `/proc`, or `PROC_ROOT`). Processes that exit during the scan are
    /// skipped silently; a permission error is counted, not fatal.
    pub fn scan(root: &Path) -> io::Result<ProcessMap> {
        let mut map = ProcessMap::default();
        for entry in fs::read_dir(root)? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let dir = entry.path();
            let fds = match fs::read_dir(dir.join("fd")) {
                Ok(fds) => fds,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    map.denied += 1;
                    continue;
                }
                Err(_) => continue, // exited, or a kernel thread without an fd table
            };
            let mut comm: Option<String> = None;
            for entry in fds.flatten() {
                let Ok(target) = fs::read_link(entry.path()) else { continue };
                let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) else { continue };
                let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else { continue };
                let comm = comm.get_or_insert_with(|| read_comm(&dir)).clone();
                let owners = map.owners.entry(inode).or_default();
                if !owners.iter().any(|o| o.process.pid == pid) {
                    owners.push(Owner { process: Process { pid, comm }, fd });
                }
            }
        }
        // Lowest pid first: the parent of a forked server usually holds the listening socket.
        for owners in map.owners.values_mut() {
            owners.sort_by_key(|o| o.process.pid);
        }
        Ok(map)
    }

    pub fn owners(&self, inode: u64) -> &[Owner] {
        self.owners.get(&inode).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The descriptor under which `pid` holds the socket `inode`.
    pub fn fd(&self, inode: u64, pid: u32) -> Option<i32> {
        self.owners(inode).iter().find(|o| o.process.pid == pid).map(|o| o.fd)
    }

    /// Sets `process` on each socket: the owner that matches `want` (a `--pid`/`--process` filter),
    /// or the first owner. Returns how many sockets with an inode stayed without an owner.
    pub fn attribute(&self, sockets: &mut [Socket], want: impl Fn(&Process) -> bool) -> usize {
        let mut unattributed = 0;
        for s in sockets.iter_mut() {
            let owners = self.owners(s.inode);
            s.process = owners.iter().find(|o| want(&o.process)).or(owners.first()).map(|o| o.process.clone());
            // TIME-WAIT and orphaned sockets have inode 0: nobody owns them, nothing is missing.
            if s.process.is_none() && s.inode != 0 {
                unattributed += 1;
            }
        }
        unattributed
    }
}

fn read_comm(dir: &Path) -> String {
    fs::read_to_string(dir.join("comm")).map(|c| c.trim_end().to_owned()).unwrap_or_default()
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode(b"socket:[4242]"), Some(4242));
        assert_eq!(socket_inode(b"pipe:[4242]"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn scans_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        for (pid, comm, links) in
            [(10, "server", vec!["socket:[7]", "/dev/null"]), (11, "worker", vec!["socket:[7]", "socket:[8]"])]
        {
            let p = dir.path().join(pid.to_string());
            fs::create_dir_all(p.join("fd")).unwrap();
            fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
            for (i, l) in links.iter().enumerate() {
                std::os::unix::fs::symlink(l, p.join("fd").join(i.to_string())).unwrap();
            }
        }
        fs::create_dir_all(dir.path().join("self")).unwrap();
        let map = ProcessMap::scan(dir.path()).unwrap();
        assert_eq!(map.owners(7).iter().map(|o| o.process.pid).collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(map.owners(8)[0].process.comm, "worker");
        assert_eq!(map.fd(8, 11), Some(1));
        assert!(map.owners(9).is_empty());
    }
}
