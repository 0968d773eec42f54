//! Cgroups, placement only: find the hierarchies from /proc/self/mountinfo
//! (v1, v2 or hybrid), create the container's cgroup in each, put the
//! container's first process into it before it can exec anything, list and
//! signal its processes, and remove it. Resource limits come later.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount: PathBuf,
    /// The cgroup (inside the hierarchy) that the mount's root shows.
    pub mount_root: String,
    /// v1 controllers (e.g. ["cpu", "cpuacct"] or ["name=systemd"]); empty for v2.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// How the host's cgroups are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    V1,
    V2,
    /// v1 controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
}

/// The hierarchies hull places containers in, and the layout.
pub fn discover() -> Result<(Layout, Vec<Hierarchy>)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").at("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

/// Parse mountinfo text into the layout and the hierarchies to use: on v1
/// and hybrid hosts the v1 ones (like runc), on v2 the unified one.
pub fn parse_mountinfo(text: &str) -> (Layout, Vec<Hierarchy>) {
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let (root, mount) = (pre[3], unescape(pre[4]));
        match post[0] {
            "cgroup2" => v2.push(Hierarchy {
                mount: PathBuf::from(mount),
                mount_root: root.to_string(),
                controllers: Vec::new(),
                v2: true,
            }),
            "cgroup" => {
                let controllers: Vec<String> = post[2]
                    .split(',')
                    .filter(|o| !is_mount_option(o))
                    .map(str::to_string)
                    .collect();
                if controllers.is_empty()
                    || v1.iter().any(|h: &Hierarchy| h.controllers == controllers)
                {
                    continue;
                }
                v1.push(Hierarchy {
                    mount: PathBuf::from(mount),
                    mount_root: root.to_string(),
                    controllers,
                    v2: false,
                })
            }
            _ => {}
        }
    }
    match (v1.is_empty(), v2.is_empty()) {
        (true, _) => {
            v2.truncate(1);
            (Layout::V2, v2)
        }
        (false, true) => (Layout::V1, v1),
        (false, false) => (Layout::Hybrid, v1),
    }
}

fn is_mount_option(o: &str) -> bool {
    matches!(
        o,
        "rw" | "ro"
            | "nosuid"
            | "nodev"
            | "noexec"
            | "relatime"
            | "noatime"
            | "xattr"
            | "clone_children"
            | "noprefix"
            | "nsdelegate"
            | "memory_recursiveprot"
            | "favordynmods"
    ) || o.starts_with("release_agent=")
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The runtime's own cgroup in each hierarchy, from /proc/self/cgroup text.
fn own_cgroup(proc_self_cgroup: &str, h: &Hierarchy) -> String {
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if h.v2 && ctrls.is_empty() {
            return path.to_string();
        }
        if !h.v2 {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            if a == b {
                return path.to_string();
            }
        }
    }
    "/".to_string()
}

/// The cgroup (path inside every hierarchy) for linux.cgroupsPath: absolute
/// paths as given, relative ones under the runtime's own cgroup, and
/// `/<id>` when empty (runc's cgroupfs behaviour).
pub fn resolve_path(cgroups_path: Option<&Path>, id: &str) -> Result<String> {
    let p = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => format!("/{id}"),
    };
    if p.split('/').any(|c| c == "..") {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!("{p:?} must not contain \"..\""),
        ));
    }
    Ok(p)
}

/// A new v1 cpuset cgroup starts with empty cpus/mems, and no process may
/// join it until they are set: copy them down from the parent at each level.
fn init_cpuset(mount: &Path, leaf: &Path) {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return;
    };
    let mut dir = mount.to_path_buf();
    for comp in rel.components() {
        let parent = dir.clone();
        dir.push(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let cur = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            if cur.trim().is_empty() {
                if let Ok(v) = std::fs::read_to_string(parent.join(file)) {
                    let _ = std::fs::write(dir.join(file), v.trim());
                }
            }
        }
    }
}

/// Whether the cgroup is frozen (v1 freezer.state, v2 cgroup.freeze).
pub fn is_frozen(cg: &Cgroup) -> bool {
    cg.paths.iter().any(|p| {
        let v1 = std::fs::read_to_string(p.join("freezer.state"));
        if let Ok(s) = v1 {
            return s.trim() == "FROZEN";
        }
        std::fs::read_to_string(p.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    })
}

/// Whether `dir` is on a cgroup2 filesystem.
pub fn is_v2_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    std::ffi::CString::new(dir.as_os_str().as_bytes())
        .ok()
        .and_then(|c| crate::sys::fs_magic(&c).ok())
        == Some(CGROUP2_SUPER_MAGIC)
}

/// The directories making up one container's cgroup (one per hierarchy).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    pub paths: Vec<PathBuf>,
}

impl Cgroup {
    /// Create the container's cgroup directories. If anything fails, what
    /// was created is removed again.
    pub fn create(cgroup: &str) -> Result<Cgroup> {
        let (_, hier) = discover()?;
        let own = std::fs::read_to_string("/proc/self/cgroup").at("/proc/self/cgroup")?;
        let mut cg = Cgroup::default();
        for h in &hier {
            let inner = if cgroup.starts_with('/') {
                cgroup.to_string()
            } else {
                format!("{}/{}", own_cgroup(&own, h).trim_end_matches('/'), cgroup)
            };
            // The mount may show only a subtree (e.g. inside a cgroup namespace).
            let rel = inner
                .strip_prefix(h.mount_root.trim_end_matches('/'))
                .unwrap_or(&inner)
                .trim_start_matches('/');
            let dir = h.mount.join(rel);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                let _ = cg.remove();
                return Err(Error::Sys {
                    what: format!("creating cgroup {}", dir.display()),
                    source: e,
                });
            }
            if h.controllers.iter().any(|c| c == "cpuset") {
                init_cpuset(&h.mount, &dir);
            }
            cg.paths.push(dir);
        }
        Ok(cg)
    }

    /// Move `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: libc::pid_t) -> Result<()> {
        for dir in &self.paths {
            let f = dir.join("cgroup.procs");
            std::fs::write(&f, pid.to_string()).map_err(|e| Error::Sys {
                what: format!("adding pid {pid} to {}", f.display()),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Pids in the container's cgroup (from the first hierarchy).
    pub fn procs(&self) -> Vec<libc::pid_t> {
        let Some(dir) = self.paths.first() else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Send `sig` to every process in the cgroup.
    pub fn signal_all(&self, sig: libc::c_int) {
        for pid in self.procs() {
            let _ = crate::sys::kill(pid, sig);
        }
    }

    /// Remove the cgroup directories, waiting briefly for exiting processes.
    pub fn remove(&self) -> Result<()> {
        let mut last = None;
        for dir in &self.paths {
            for attempt in 0..50 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if attempt < 49 && e.raw_os_error() == Some(libc::EBUSY) => {
                        crate::sys::nanosleep_ms(10)
                    }
                    Err(e) => {
                        last = Some(Error::Sys {
                            what: format!("removing cgroup {}", dir.display()),
                            source: e,
                        });
                        break;
                    }
                }
            }
        }
        last.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn detects_hybrid_and_uses_v1_hierarchies() {
        let (layout, h) = parse_mountinfo(HYBRID);
        assert_eq!(layout, Layout::Hybrid);
        let names: Vec<_> = h.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "memory", "name=systemd"]);
    }

    #[test]
    fn detects_pure_v2() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let (layout, h) = parse_mountinfo(text);
        assert_eq!(layout, Layout::V2);
        assert_eq!(h.len(), 1);
        assert!(h[0].v2);
        assert_eq!(h[0].mount, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn detects_comounted_v1() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let (layout, h) = parse_mountinfo(text);
        assert_eq!(layout, Layout::V1);
        assert_eq!(h[0].controllers, ["cpu", "cpuacct"]);
    }

    #[test]
    fn relative_paths_go_under_own_cgroup() {
        let h = Hierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            mount_root: "/".into(),
            controllers: vec!["memory".into()],
            v2: false,
        };
        let own = "5:memory:/user.slice\n0::/x\n";
        assert_eq!(own_cgroup(own, &h), "/user.slice");
        assert_eq!(resolve_path(None, "abc").unwrap(), "/abc");
        assert!(resolve_path(Some(Path::new("/a/../b")), "x").is_err());
    }
}
