//! Where the host's cgroup hierarchies are: parsed from /proc/self/mountinfo
//! (never guessed from paths), and the runtime's own cgroup in each from
//! /proc/self/cgroup.

use std::path::PathBuf;

use crate::error::{IoContext, Result};

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

/// The hierarchies hull places containers in, and the layout. Read from
/// mountinfo once per process: cgroup hierarchies are mounted at boot, and
/// one `create` would otherwise parse mountinfo for validation, creation
/// and placement separately.
pub fn discover() -> Result<(Layout, Vec<Hierarchy>)> {
    static LAYOUT: std::sync::OnceLock<(Layout, Vec<Hierarchy>)> = std::sync::OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l.clone());
    }
    let text = crate::sys::read_text("/proc/self/mountinfo").at("/proc/self/mountinfo")?;
    Ok(LAYOUT.get_or_init(|| parse_mountinfo(&text)).clone())
}

/// Parse mountinfo text into the layout and the hierarchies to use: on v1
/// the v1 ones; on hybrid hosts the v1 ones plus the cgroup2 one last (runc
/// places containers there too; limits go to v1, only placement and
/// controllers missing from v1, like hugetlb, use it); on v2 the unified one.
pub fn parse_mountinfo(text: &str) -> (Layout, Vec<Hierarchy>) {
    let mut v1 = Vec::new();
    let mut v2: Vec<Hierarchy> = Vec::new();
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
            "cgroup2" if v2.is_empty() => v2.push(Hierarchy {
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
        (false, false) => {
            v1.push(v2.swap_remove(0));
            (Layout::Hybrid, v1)
        }
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
pub fn own_cgroup(proc_self_cgroup: &str, h: &Hierarchy) -> String {
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
