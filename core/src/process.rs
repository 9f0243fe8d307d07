//! Socket ownership, as `ss -p` finds it: every `/proc/PID/fd/N` link of the form `socket:[INODE]`
//! maps that inode to the process. Opt-in (`-p`) because it reads one link per open file on the
//! host. Processes we may not inspect are counted, so unattributed sockets are explained.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::{Process, ProcessStats, Socket};
use crate::os;

/// One process holding a socket, and the descriptor it holds it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The process.
    pub process: Process,
    /// Its descriptor for the socket.
    pub fd: i32,
}

/// Socket inode -> the processes holding it, from `/proc/*/fd`.
#[derive(Debug, Default)]
pub struct ProcessMap {
    owners: HashMap<u64, Vec<Owner>>,
    /// Per process: descriptors open, and how many of them are sockets.
    files: HashMap<u32, (usize, usize)>,
    /// Processes whose fd table we were not allowed to read.
    pub denied: usize,
}

impl ProcessMap {
    /// Scans `root` (normally `/proc`; a fixture tree in tests). Processes that exit during the scan are
    /// skipped silently; a permission error is counted, not fatal.
    ///
    /// Cost is one `readlink` per open file on the host, which is what `ss -p` pays too. Two
    /// things make ours cheaper: each link is read relative to its open `fd` directory
    /// (`readlinkat`, no path walk from `/`), and the links are read on every core at once.
    pub fn scan(root: &Path) -> io::Result<ProcessMap> {
        let pids = fs::read_dir(root)?.flatten().filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        });
        Ok(ProcessMap::scan_pids(pids))
    }

    /// The same for one process only (`fix --follow --pid`: its listeners, each period).
    pub fn scan_one(root: &Path, pid: u32) -> ProcessMap {
        ProcessMap::scan_pids(std::iter::once((pid, root.join(pid.to_string()))))
    }

    /// The same for these processes only (`fix --follow` curing a server's new connections).
    pub fn scan_some(root: &Path, pids: impl IntoIterator<Item = u32>) -> ProcessMap {
        ProcessMap::scan_pids(pids.into_iter().map(|pid| (pid, root.join(pid.to_string()))))
    }

    fn scan_pids(pids: impl Iterator<Item = (u32, PathBuf)>) -> ProcessMap {
        let mut map = ProcessMap::default();
        // Pass 1 (one thread): each process's fd directory and descriptor numbers.
        let mut tables: Vec<FdTable> = Vec::new();
        for (pid, dir) in pids {
            let fd_dir = dir.join("fd");
            let fds = match fs::read_dir(&fd_dir) {
                Ok(fds) => fds,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    map.denied += 1;
                    continue;
                }
                Err(_) => continue, // exited, or a kernel thread without an fd table
            };
            let fds: Vec<i32> = fds.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
            let Ok(handle) = fs::File::open(&fd_dir) else { continue };
            if !fds.is_empty() {
                tables.push(FdTable { pid, dir, handle, fds });
            }
        }
        // Pass 2 (every core): readlinkat on each descriptor, in chunks of work.
        let work: Vec<(usize, i32)> =
            tables.iter().enumerate().flat_map(|(t, table)| table.fds.iter().map(move |&fd| (t, fd))).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let chunk = work.len().div_ceil(threads).max(1);
        let found: Vec<(usize, i32, u64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = work
                .chunks(chunk)
                .map(|part| {
                    let tables = &tables;
                    scope.spawn(move || {
                        part.iter()
                            .filter_map(|&(t, fd)| {
                                os::socket_inode_at(&tables[t].handle, fd).map(|inode| (t, fd, inode))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // A worker that panicked is re-raised like any other panic: its owners are never
            // silently missing from the map.
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        for table in &tables {
            map.files.insert(table.pid, (table.fds.len(), 0));
        }
        let mut comms: HashMap<usize, String> = HashMap::new();
        for (t, fd, inode) in found {
            let table = &tables[t];
            if let Some(files) = map.files.get_mut(&table.pid) {
                files.1 += 1;
            }
            let comm = comms.entry(t).or_insert_with(|| read_comm(&table.dir)).clone();
            let owners = map.owners.entry(inode).or_default();
            if !owners.iter().any(|o| o.process.pid == table.pid) {
                owners.push(Owner { process: Process { pid: table.pid, comm }, fd });
            }
        }
        // Lowest pid first: the parent of a forked server usually holds the listening socket.
        for owners in map.owners.values_mut() {
            owners.sort_by_key(|o| o.process.pid);
        }
        map
    }

    /// What `pid` holds and may hold: the descriptor counts from the scan, the soft
    /// `RLIMIT_NOFILE` and thread count read now (through the procfs crate: two small files per
    /// owning process, off the per-socket path). `None` for a process the scan did not see.
    pub fn stats(&self, root: &Path, process: &Process) -> Option<ProcessStats> {
        let &(open_files, socket_files) = self.files.get(&process.pid)?;
        let (file_limit, threads) = limits_and_threads(root, process.pid);
        Some(ProcessStats {
            pid: process.pid,
            comm: process.comm.clone(),
            open_files,
            socket_files,
            file_limit,
            threads,
        })
    }

    /// The processes holding socket `inode` (none for one nobody holds).
    pub fn owners(&self, inode: u64) -> &[Owner] {
        self.owners.get(&inode).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The descriptor under which `pid` holds the socket `inode`.
    pub fn fd(&self, inode: u64, pid: u32) -> Option<i32> {
        self.owners(inode).iter().find(|o| o.process.pid == pid).map(|o| o.fd)
    }

    /// The owner of the socket `inode`: the first holder `want` accepts, else the first holder.
    pub fn owner(&self, inode: u64, want: impl Fn(&Process) -> bool) -> Option<Process> {
        let owners = self.owners(inode);
        owners.iter().find(|o| want(&o.process)).or(owners.first()).map(|o| o.process.clone())
    }

    /// Sets `process` on each socket: the owner that matches `want` (a `--pid`/`--process` filter),
    /// or the first owner. Returns how many sockets with an inode stayed without an owner.
    pub fn attribute(&self, sockets: &mut [Socket], want: impl Fn(&Process) -> bool) -> usize {
        let mut unattributed = 0;
        for s in sockets.iter_mut() {
            s.process = self.owner(s.inode, &want);
            // TIME-WAIT and orphaned sockets have inode 0: nobody owns them, nothing is missing.
            if s.process.is_none() && s.inode != 0 {
                unattributed += 1;
            }
        }
        unattributed
    }
}

#[cfg(target_os = "linux")]
fn limits_and_threads(root: &Path, pid: u32) -> (Option<u64>, Option<u64>) {
    let Ok(p) = procfs::process::Process::new_with_root(root.join(pid.to_string())) else { return (None, None) };
    let limit = p.limits().ok().and_then(|l| match l.max_open_files.soft_limit {
        procfs::process::LimitValue::Value(v) => Some(v),
        procfs::process::LimitValue::Unlimited => None,
    });
    (limit, p.status().ok().map(|s| s.threads))
}

#[cfg(not(target_os = "linux"))]
fn limits_and_threads(_: &Path, _: u32) -> (Option<u64>, Option<u64>) {
    (None, None)
}

/// The socket inodes behind a few processes' descriptors, kept from one look to the next
/// (`fix --follow` curing a busy server's new connections each period). A look lists each fd
/// directory and reads the link of a descriptor only when its number is new, or when the
/// socket it named has ended since (its number may have been reused); so a server with 10,000
/// connections and a few new ones costs a directory listing and a few `readlinkat`s, not 10,000.
/// A wanted inode still not found (a number reused from a file) makes that look read every link.
#[derive(Debug, Default)]
pub struct FdCache {
    /// Per pid: its name, and each descriptor's socket inode (0: not a socket).
    tables: HashMap<u32, (String, HashMap<i32, u64>)>,
}

impl FdCache {
    /// The owner among `pids` of each of `wanted` found; `ended` names sockets that have gone
    /// since the last look.
    pub fn owners(
        &mut self,
        root: &Path,
        pids: &std::collections::BTreeSet<u32>,
        wanted: &[u64],
        ended: &std::collections::HashSet<u64>,
    ) -> HashMap<u64, Owner> {
        self.tables.retain(|pid, _| pids.contains(pid));
        let mut found = HashMap::new();
        // Cheapest first, without listing the directory: a new descriptor takes the lowest free
        // number, so it is one a socket that ended had, or one just above the highest known.
        for &pid in pids {
            let Some((comm, links)) = self.tables.get_mut(&pid) else { continue };
            let Ok(handle) = fs::File::open(root.join(pid.to_string()).join("fd")) else { continue };
            let reused: Vec<i32> = links.iter().filter(|(_, i)| ended.contains(i)).map(|(&fd, _)| fd).collect();
            let mut probe = |fd: i32, links: &mut HashMap<i32, u64>| -> bool {
                match os::descriptor_at(&handle, fd) {
                    None => {
                        links.remove(&fd);
                        false
                    }
                    Some(inode) => {
                        let inode = inode.unwrap_or(0);
                        links.insert(fd, inode);
                        if wanted.contains(&inode) {
                            found.entry(inode).or_insert(Owner { process: Process { pid, comm: comm.clone() }, fd });
                        }
                        true
                    }
                }
            };
            for fd in reused {
                probe(fd, links);
            }
            let mut fd = links.keys().max().map_or(0, |m| m + 1);
            let mut missing = 0;
            while missing < TOP_GAP {
                missing = if probe(fd, links) { 0 } else { missing + 1 };
                fd += 1;
            }
        }
        if wanted.iter().all(|w| found.contains_key(w)) {
            return found;
        }
        // Then only what may have changed; then, if a wanted socket is still missing, every link.
        for all in [false, true] {
            for &pid in pids {
                let dir = root.join(pid.to_string());
                let fd_dir = dir.join("fd");
                let (Ok(listing), Ok(handle)) = (fs::read_dir(&fd_dir), fs::File::open(&fd_dir)) else {
                    self.tables.remove(&pid);
                    continue;
                };
                let listed: Vec<i32> = listing.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
                let (comm, links) = self.tables.entry(pid).or_insert_with(|| (read_comm(&dir), HashMap::new()));
                let now: std::collections::HashSet<i32> = listed.iter().copied().collect();
                links.retain(|fd, _| now.contains(fd));
                for &fd in &listed {
                    if all || links.get(&fd).is_none_or(|inode| ended.contains(inode)) {
                        links.insert(fd, os::socket_inode_at(&handle, fd).unwrap_or(0));
                    }
                }
                for (&fd, inode) in links.iter().filter(|(_, inode)| wanted.contains(inode)) {
                    found.entry(*inode).or_insert(Owner { process: Process { pid, comm: comm.clone() }, fd });
                }
            }
            if wanted.iter().all(|w| found.contains_key(w)) {
                break;
            }
        }
        found
    }
}

/// Descriptor numbers in a row found unused above the highest known, after which [`FdCache`]
/// stops looking upward.
const TOP_GAP: usize = 8;

/// One process's open `fd` directory and the descriptor numbers listed in it.
struct FdTable {
    pid: u32,
    dir: PathBuf,
    handle: fs::File,
    fds: Vec<i32>,
}

/// The process's command name; `comm` is opened without following a symlink.
fn read_comm(dir: &Path) -> String {
    os::read_nofollow(&dir.join("comm")).map(|c| c.trim_end().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_parse() {
        assert_eq!(os::socket_inode(b"socket:[4242]"), Some(4242));
        assert_eq!(os::socket_inode(b"pipe:[4242]"), None);
        assert_eq!(os::socket_inode(b"socket:[]"), None);
        assert_eq!(os::socket_inode(b"/dev/null"), None);
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
        // A `comm` that is a symlink is not followed: its process shows no name.
        let p = dir.path().join("12");
        fs::create_dir_all(p.join("fd")).unwrap();
        fs::write(dir.path().join("secret"), "root-only\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), p.join("comm")).unwrap();
        std::os::unix::fs::symlink("socket:[9]", p.join("fd/0")).unwrap();
        let map = ProcessMap::scan(dir.path()).unwrap();
        assert_eq!(map.owners(7).iter().map(|o| o.process.pid).collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(map.owners(8)[0].process.comm, "worker");
        assert_eq!(map.fd(8, 11), Some(1));
        assert_eq!(map.owners(9)[0].process.comm, "");
    }
}
