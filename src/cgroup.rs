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

use crate::model::{ProcPaths, Socket};

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
    for s in sockets.iter_mut().filter(|s| s.details.cgroup_id != 0) {
        s.details.cgroup = names.get(&s.details.cgroup_id).cloned();
    }
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
