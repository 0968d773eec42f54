//! The container user: uid/gid/groups switch (child side) and the
//! /etc/passwd and /etc/group lookups done on the parent side, read safely
//! from inside the rootfs.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys;

pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

pub fn current_gid() -> u32 {
    // SAFETY: getgid cannot fail.
    unsafe { libc::getgid() }
}

/// Read a regular file inside `rootfs` without following links out of it.
/// This runs on the runtime's side, outside the container's device cgroup
/// and before its mounts: anything but a regular file (a FIFO, on which an
/// open would block forever; a device node shipped in the image, e.g.
/// /dev/zero's or the host disk's) is never opened and reads as missing,
/// and at most 16 MiB are read.
fn read_in_root(rootfs: &Path, path: &[u8]) -> Option<String> {
    const MAX: u64 = 16 << 20;
    let root = std::fs::File::open(rootfs).ok()?;
    let fd = crate::rootfs::resolve::open(root.as_raw_fd(), path, libc::O_PATH).ok()?;
    // SAFETY: fd was just opened by us and is owned by nobody else.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    // Reopened through /proc: the same inode, now for reading.
    let mut buf = [0u8; 64];
    let proc_path = sys::proc_fd_path(&mut buf, file.as_raw_fd());
    let f = std::fs::File::open(std::ffi::OsStr::from_bytes(proc_path.to_bytes())).ok()?;
    let mut s = String::new();
    f.take(MAX).read_to_string(&mut s).ok()?;
    Some(s)
}

/// What the container's /etc/passwd and /etc/group say about a uid.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub home: Option<String>,
    /// Groups that list the user's name as a member.
    pub groups: Vec<u32>,
}

pub fn lookup(rootfs: &Path, uid: u32) -> UserInfo {
    let passwd = read_in_root(rootfs, b"/etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, b"/etc/group").unwrap_or_default();
    lookup_in(&passwd, &group, uid)
}

pub fn lookup_in(passwd: &str, group: &str, uid: u32) -> UserInfo {
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[5].to_string()))
    });
    let Some((name, home)) = entry else {
        return UserInfo::default();
    };
    let groups = group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                f[2].parse().ok()
            } else {
                None
            }
        })
        .collect();
    UserInfo {
        home: Some(home),
        groups,
    }
}

/// The user the container process runs as.
#[derive(Debug, Clone, Default)]
pub struct UserPlan {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// setgroups is denied in a user namespace without a full gid map.
    pub set_groups: bool,
    pub umask: Option<libc::mode_t>,
}

/// Child side: switch to the container user. With `keep_caps`, the
/// permitted set survives a switch away from uid 0 so the exact sets can be
/// applied afterwards.
pub fn switch(u: &UserPlan, keep_caps: bool) -> ChildResult<()> {
    if keep_caps {
        sys::prctl(libc::PR_SET_KEEPCAPS, 1).step(Step::KeepCaps)?;
    }
    if u.set_groups {
        sys::setgroups(&u.groups).step(Step::Setgroups)?;
    }
    sys::setresgid(u.gid).step(Step::Setgid)?;
    sys::setresuid(u.uid).step(Step::Setuid)?;
    if keep_caps {
        sys::prctl(libc::PR_SET_KEEPCAPS, 0).step(Step::KeepCaps)?;
    }
    if let Some(m) = u.umask {
        sys::umask(m);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_home_and_member_groups() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        let group = "root:x:0:\nwheel:x:10:bob,alice\nusers:x:100:alice\n";
        let bob = lookup_in(passwd, group, 1000);
        assert_eq!(bob.home.as_deref(), Some("/home/bob"));
        assert_eq!(bob.groups, [10]);
        assert_eq!(lookup_in(passwd, group, 0).home.as_deref(), Some("/root"));
        assert_eq!(lookup_in(passwd, group, 5), UserInfo::default());
    }

    /// Only regular files are read: a FIFO (which would block the open)
    /// reads as missing.
    #[test]
    fn reads_regular_files_only() {
        let dir = std::env::temp_dir().join(format!("hull-user-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let fifo = std::ffi::CString::new(format!("{}/etc/group", dir.display())).unwrap();
        // SAFETY: fifo is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let passwd = read_in_root(&dir, b"/etc/passwd");
        let group = read_in_root(&dir, b"/etc/group");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(passwd.as_deref(), Some("root:x:0:0::/root:/bin/sh\n"));
        assert_eq!(group, None);
    }
}
