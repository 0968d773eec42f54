//! The host side: temp dirs, commands, and what a pod may leave behind
//! (processes, mounts, cgroups, links, files).

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number unique within this process.
pub fn next_n() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// Why these tests cannot run here, if they cannot (never a host feature
/// the tests are about: those are asserted).
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the CRI tests need root".into());
    }
    if !Path::new("/bin/busybox").is_file() {
        return Some("/bin/busybox is missing (install busybox-static)".into());
    }
    None
}

/// A command's outcome.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run a command to completion, capturing its output.
pub fn run(cmd: &mut Command) -> Out {
    let desc = format!("{cmd:?}");
    match cmd.stdin(Stdio::null()).output() {
        Ok(o) => Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Out {
            code: -1,
            stdout: String::new(),
            stderr: format!("{desc}: {e}"),
        },
    }
}

/// Whether `name` is a command in PATH.
pub fn have(name: &str) -> bool {
    run(Command::new("sh").args(["-c", &format!("command -v {name}")])).code == 0
}

/// A unique directory under /tmp, removed on drop (after detaching any
/// mount left below it).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "hullcri-{}-{}-{name}",
            std::process::id(),
            next_n()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let mut mounts = mounts_under(&self.path);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in &mounts {
            if let Ok(c) = CString::new(m.as_os_str().as_encoded_bytes()) {
                // SAFETY: c is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if !mounts_under(&self.path).is_empty() {
            eprintln!("warning: leaving {} (mounts below it)", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Host mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Every mount point of the host's mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_octal(m)))
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Host processes whose command line mentions any of `needles`
/// (container and sandbox ids: shims carry `-id`, runtimes the id).
pub fn processes_mentioning(needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().any(|n| cmdline.contains(n.as_str())) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// Network links enslaved to `bridge` (veths of running pods).
pub fn links_on_bridge(bridge: &str) -> Vec<String> {
    let o = run(Command::new("ip").args(["-o", "link", "show", "master", bridge]));
    o.stdout
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Whether a network link of that name exists.
pub fn link_exists(name: &str) -> bool {
    run(Command::new("ip").args(["link", "show", name])).code == 0
}

/// The cgroup directories named `rel` (an absolute cgroup path such as
/// `/hullcri-1-2`) in every mounted hierarchy that has it.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut dirs = Vec::new();
    for root in cgroup_roots() {
        let d = root.join(rel);
        if d.is_dir() {
            dirs.push(d);
        }
    }
    dirs
}

/// Mount points of cgroup and cgroup2 file systems.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut roots = Vec::new();
    for l in info.lines() {
        let Some((_, post)) = l.split_once(" - ") else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype == "cgroup" || fstype == "cgroup2" {
            if let Some(mp) = l.split(' ').nth(4) {
                roots.push(PathBuf::from(unescape_octal(mp)));
            }
        }
    }
    roots
}

/// Child cgroups below `dir` (recursively), for "nothing left" checks.
pub fn child_cgroups(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
                out.extend(child_cgroups(&e.path()));
            }
        }
    }
    out
}

/// Remove the cgroup `rel` in every hierarchy (children first); what the
/// kubelet does for a pod's parent cgroup, which containerd never removes.
pub fn remove_cgroup_tree(rel: &str) {
    for d in cgroup_dirs(rel) {
        let mut kids = child_cgroups(&d);
        kids.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for k in kids {
            let _ = fs::remove_dir(k);
        }
        let _ = fs::remove_dir(&d);
    }
}

/// The cgroup file `file` of process `pid` for `controller` (v1: the
/// hierarchy naming the controller; v2: the unified one), if readable.
pub fn cgroup_file_of(pid: u32, controller: &str, file: &str) -> Option<String> {
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = if ctrls.is_empty() {
            // The unified hierarchy: only where the controller is there.
            true
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        if !wanted {
            continue;
        }
        for m in info.lines() {
            let Some((pre, post)) = m.split_once(" - ") else {
                continue;
            };
            let mut fields = post.split(' ');
            let fstype = fields.next().unwrap_or("");
            let opts = post.split(' ').nth(2).unwrap_or("");
            let matches = if ctrls.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup" && opts.split(',').any(|o| o == controller)
            };
            if !matches {
                continue;
            }
            let mp = pre.split(' ').nth(4)?;
            let p = Path::new(&unescape_octal(mp))
                .join(path.trim_start_matches('/'))
                .join(file);
            if let Ok(s) = fs::read_to_string(&p) {
                return Some(s.trim().to_string());
            }
        }
    }
    None
}
