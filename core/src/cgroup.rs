//! Cgroup v2 paths for the ids sock_diag reports (`INET_DIAG_CGROUP_ID`), found the way
//! `ss --cgroup` finds them: a cgroup's id is the inode number of its directory under the cgroup2
//! mount, so one walk of that tree names every id. Paths are relative to the mount (`/`,
//! `/system.slice/nginx.service`), as `ss` prints them. The cgroup2 mount is found in
//! `/proc/mounts`; on a hybrid host it is not `/sys/fs/cgroup` but e.g. `/sys/fs/cgroup/unified`.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::{ProcPaths, Socket, Workload};

/// Deepest directory level walked: real hierarchies are a handful of levels deep, and a bound
/// keeps a hostile or looping tree from costing more than a bounded walk.
const MAX_DEPTH: usize = 32;

/// The cgroup2 mount point named in `ROOT/mounts`, if there is one.
pub fn mount_point(paths: &ProcPaths) -> Option<PathBuf> {
    let mounts = fs::read_to_string(paths.root.join("mounts")).ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (_dev, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        // /proc/mounts escapes blanks in paths as \040.
        (fstype == "cgroup2").then(|| PathBuf::from(dir.replace("\\040", " ")))
    })
}

/// Every cgroup under `mount`, by id.
pub fn names(mount: &Path) -> HashMap<u64, Arc<str>> {
    let mut out = HashMap::new();
    if let Ok(meta) = fs::metadata(mount) {
        out.insert(meta.ino(), Arc::from("/"));
        walk(mount, "", 0, &mut out);
    }
    out
}

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut HashMap<u64, Arc<str>>) {
    if depth >= MAX_DEPTH {
        return;
    }
    // A cgroup removed during the walk is simply not named.
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let child = format!("{rel}/{}", name.to_string_lossy());
        walk(&entry.path(), &child, depth + 1, out);
        out.insert(entry.ino(), Arc::from(child));
    }
}

/// Sets each socket's `cgroup` from its id; ids of cgroups removed since stay unnamed.
pub fn resolve(sockets: &mut [Socket], names: &HashMap<u64, Arc<str>>) {
    for s in sockets.iter_mut() {
        name(s, names);
    }
}

/// Sets one socket's `cgroup` (and workload) from its id, where it has one.
pub fn name(s: &mut Socket, names: &HashMap<u64, Arc<str>>) {
    if s.details.cgroup_id != 0 {
        s.details.cgroup = names.get(&s.details.cgroup_id).cloned();
        s.details.workload = s.details.cgroup.as_deref().and_then(workload).map(Arc::new);
    }
}

fn hex_id(s: &str) -> Option<&str> {
    (s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// A container id in a path component: `docker-<id>.scope`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`, `libpod-<id>.scope` (systemd driver) or a bare id (cgroupfs driver).
fn container_id(part: &str) -> Option<&str> {
    let inner = part.strip_suffix(".scope").unwrap_or(part);
    let inner = ["docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"]
        .iter()
        .find_map(|p| inner.strip_prefix(p))
        .unwrap_or(inner);
    hex_id(inner)
}

/// A pod uid in a path component: `kubepods-burstable-pod<uid with _>.slice` (systemd driver)
/// or `pod<uid>` (cgroupfs driver).
fn pod_uid(part: &str) -> Option<String> {
    let inner = part.strip_suffix(".slice").unwrap_or(part);
    let uid = inner.rsplit_once("-pod").map(|(_, u)| u).or_else(|| inner.strip_prefix("pod"))?;
    let uid = uid.replace('_', "-");
    (uid.len() >= 32 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
}

/// The workload a cgroup path belongs to, from the path alone: a pod (with its container), a
/// container, or a systemd unit (`*.service`, `*.scope`); `None` for the root and plain slices.
pub fn workload(path: &str) -> Option<Workload> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let in_kube = parts.iter().any(|p| p.starts_with("kubepods"));
    if in_kube && let Some(uid) = parts.iter().rev().find_map(|p| pod_uid(p)) {
        let id = parts.last().and_then(|p| container_id(p)).map(str::to_owned);
        return Some(Workload { kind: "pod", name: format!("pod {uid}"), id });
    }
    if let Some(id) = parts.iter().rev().find_map(|p| container_id(p)) {
        return Some(Workload { kind: "container", name: id[..12].to_owned(), id: Some(id.to_owned()) });
    }
    let unit = parts.iter().rev().find(|p| p.ends_with(".service") || p.ends_with(".scope"))?;
    Some(Workload { kind: "unit", name: (*unit).to_owned(), id: None })
}

/// The cgroup (relative to `mount`) of the systemd unit `unit` (`nginx.service`, or `nginx`), or
/// of the container whose id starts with `container`: the first found walking the tree.
pub fn find(mount: &Path, unit: Option<&str>, container: Option<&str>) -> Option<String> {
    let unit = unit.map(|u| if u.contains('.') { u.to_owned() } else { format!("{u}.service") });
    let mut stack = vec![(mount.to_owned(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = format!("{rel}/{name}");
            let hit = unit.as_deref() == Some(name.as_str())
                || container.is_some_and(|c| c.len() >= 4 && container_id(&name).is_some_and(|id| id.starts_with(c)));
            if hit {
                return Some(child);
            }
            if depth + 1 < MAX_DEPTH {
                stack.push((e.path(), child, depth + 1));
            }
        }
    }
    None
}

/// `--cgroup PATH` in the form paths are shown: a leading `/`, no trailing one.
pub fn normalize(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

/// Whether `path` is `wanted` or below it (by whole components: `/a` does not hold `/ab`).
pub fn is_within(path: &str, wanted: &str) -> bool {
    wanted == "/" || path == wanted || path.strip_prefix(wanted).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_from_real_looking_paths() {
        let id = "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f";
        let w = |p: &str| workload(p).map(|w| (w.kind, w.name, w.id));
        assert_eq!(w("/system.slice/nginx.service"), Some(("unit", "nginx.service".into(), None)));
        assert_eq!(w("/user.slice/user-1000.slice/session-3.scope"), Some(("unit", "session-3.scope".into(), None)));
        assert_eq!(
            w(&format!("/system.slice/docker-{id}.scope")),
            Some(("container", id[..12].to_owned(), Some(id.to_owned())))
        );
        assert_eq!(w(&format!("/docker/{id}")), Some(("container", id[..12].to_owned(), Some(id.to_owned()))));
        assert_eq!(
            w(&format!("/system.slice/containerd.service/cri-containerd-{id}.scope")).map(|w| w.0),
            Some("container")
        );
        let uid = "1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b";
        let systemd_pod = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
            uid.replace('-', "_")
        );
        assert_eq!(w(&systemd_pod), Some(("pod", format!("pod {uid}"), Some(id.to_owned()))));
        assert_eq!(
            w(&format!("/kubepods/besteffort/pod{uid}/{id}")),
            Some(("pod", format!("pod {uid}"), Some(id.to_owned())))
        );
        assert_eq!(w("/"), None);
        assert_eq!(w("/system.slice"), None);
        assert_eq!(w("/wd-test-1"), None);
    }

    #[test]
    fn within_means_the_same_cgroup_or_below() {
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(is_within("/anything", "/"));
        assert!(!is_within("/ab", "/a"));
        assert!(!is_within("/", "/a"));
        assert_eq!(normalize("system.slice/"), "/system.slice");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn names_a_tree_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/cgroup.procs"), "").unwrap();
        let names = names(dir.path());
        let ino = |p: &str| fs::metadata(dir.path().join(p)).unwrap().ino();
        assert_eq!(names.get(&ino("a/b")).map(|s| &**s), Some("/a/b"));
        assert_eq!(names.get(&ino("a")).map(|s| &**s), Some("/a"));
        assert_eq!(names.get(&fs::metadata(dir.path()).unwrap().ino()).map(|s| &**s), Some("/"));
        assert_eq!(names.len(), 3, "files are not cgroups");
    }

    #[test]
    fn finds_the_cgroup2_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("mounts"),
            "cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n",
        )
        .unwrap();
        let paths = ProcPaths::under(dir.path().to_owned());
        assert_eq!(mount_point(&paths), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        fs::write(dir.path().join("mounts"), "proc /proc proc rw 0 0\n").unwrap();
        assert_eq!(mount_point(&paths), None);
    }
}
