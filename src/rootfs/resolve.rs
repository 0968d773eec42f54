//! Paths inside the rootfs, resolved safely: every lookup goes through
//! openat2(RESOLVE_IN_ROOT) on a dirfd of the rootfs, so a symlink or `..`
//! planted in the image cannot redirect a mount or a device node onto the
//! host. Allocation-free (fixed stack buffers), for use in the init.

use std::ffi::CStr;
use std::os::fd::RawFd;

use crate::sys::{self, Errno, SysResult};

const PATH_MAX: usize = 4096;

/// Copy `bytes` into `buf` with a NUL, as a C string.
fn cstr<'a>(buf: &'a mut [u8; PATH_MAX], bytes: &[u8]) -> SysResult<&'a CStr> {
    if bytes.len() >= PATH_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    CStr::from_bytes_until_nul(&buf[..=bytes.len()]).map_err(|_| Errno(libc::EINVAL))
}

/// Open `path` inside `root` (O_PATH unless other flags are given).
pub fn open(root: RawFd, path: &[u8], flags: libc::c_int) -> SysResult<RawFd> {
    let p = if path.is_empty() { b"/" as &[u8] } else { path };
    open_in_root(root, p, flags, 0)
}

/// openat2(RESOLVE_IN_ROOT), or, where the kernel (before 5.6) or a tool
/// (valgrind 3.19) has no openat2, the same resolution done by [`walk`].
fn open_in_root(
    root: RawFd,
    path: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> SysResult<RawFd> {
    let mut buf = [0u8; PATH_MAX];
    match sys::open_in_root(root, cstr(&mut buf, path)?, flags, mode) {
        Err(Errno(libc::ENOSYS)) => walk(root, path, flags, mode),
        r => r,
    }
}

/// Resolve `path` inside `root` one component at a time, as
/// RESOLVE_IN_ROOT would: every component opened with O_NOFOLLOW relative
/// to the directory before it, a symlink's target read and spliced into
/// the rest of the path (an absolute one restarts at `root`), `..` never
/// above `root`, at most 40 links. Allocation-free, for the init.
pub fn walk(root: RawFd, path: &[u8], flags: libc::c_int, mode: libc::mode_t) -> SysResult<RawFd> {
    const MAX_DEPTH: usize = 128;
    const MAX_LINKS: u32 = 40;
    let mut dirs = [-1; MAX_DEPTH];
    let mut depth = 0;
    let mut buf = [0u8; PATH_MAX];
    if path.len() >= PATH_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    buf[..path.len()].copy_from_slice(path);
    let mut len = path.len();
    let mut pos = 0;
    let mut links = 0;
    let result = loop {
        let cur = if depth == 0 { root } else { dirs[depth - 1] };
        while pos < len && buf[pos] == b'/' {
            pos += 1;
        }
        if pos == len {
            // The path ends at a directory (`/`, `a/..`).
            break sys::openat(cur, c".", flags, mode);
        }
        let start = pos;
        while pos < len && buf[pos] != b'/' {
            pos += 1;
        }
        let last = buf[pos..len].iter().all(|&c| c == b'/');
        let comp = &buf[start..pos];
        if comp == b"." || comp == b".." {
            if comp == b".." && depth > 0 {
                depth -= 1;
                sys::close(dirs[depth]);
            }
            continue;
        }
        let mut nbuf = [0u8; PATH_MAX];
        let name = cstr(&mut nbuf, comp)?;
        let mut target = [0u8; PATH_MAX];
        match sys::readlinkat(cur, name, &mut target) {
            Ok(tlen) => {
                links += 1;
                let rest = len - pos;
                if links > MAX_LINKS {
                    break Err(Errno(libc::ELOOP));
                }
                if tlen + rest >= PATH_MAX {
                    break Err(Errno(libc::ENAMETOOLONG));
                }
                // The rest of the path now follows the link's target.
                buf.copy_within(pos..len, tlen);
                buf[..tlen].copy_from_slice(&target[..tlen]);
                len = tlen + rest;
                pos = 0;
                if target[0] == b'/' {
                    while depth > 0 {
                        depth -= 1;
                        sys::close(dirs[depth]);
                    }
                }
                continue;
            }
            // Not a symlink, or not there (created below if it is the last).
            Err(Errno(libc::EINVAL)) | Err(Errno(libc::ENOENT)) => {}
            Err(e) => break Err(e),
        }
        if last {
            break sys::openat(cur, name, flags | libc::O_NOFOLLOW, mode);
        }
        let dflags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        match sys::openat(cur, name, dflags, 0) {
            Ok(fd) if depth < MAX_DEPTH => {
                dirs[depth] = fd;
                depth += 1;
            }
            Ok(fd) => {
                sys::close(fd);
                break Err(Errno(libc::ENAMETOOLONG));
            }
            Err(e) => break Err(e),
        }
    };
    while depth > 0 {
        depth -= 1;
        sys::close(dirs[depth]);
    }
    result
}

/// Split `path` into (parent, final component), ignoring trailing slashes.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    let p = &path[..end];
    match p.iter().rposition(|&c| c == b'/') {
        Some(0) => (b"/", &p[1..]),
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (b"/", p),
    }
}

/// mkdir -p inside `root`: every missing directory of `path` is created
/// (mode 0755) in the directory its parent resolved to inside the root.
pub fn mkdir_all(root: RawFd, path: &[u8]) -> SysResult<()> {
    mkdir_all_depth(root, path, 0)
}

fn mkdir_all_depth(root: RawFd, path: &[u8], depth: u32) -> SysResult<()> {
    if depth > 8 {
        return Err(Errno(libc::ELOOP));
    }
    let mut i = 0;
    while i <= path.len() {
        let boundary = i == path.len() || path[i] == b'/';
        if boundary && i > 0 && path[i - 1] != b'/' {
            let prefix = &path[..i];
            match open(root, prefix, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(fd) => sys::close(fd),
                Err(Errno(libc::ENOENT)) => {
                    let (parent, name) = split(prefix);
                    let pfd = open(root, parent, libc::O_PATH | libc::O_DIRECTORY)?;
                    let mut nbuf = [0u8; PATH_MAX];
                    let n = cstr(&mut nbuf, name)?;
                    let r = sys::mkdirat(pfd, n, 0o755);
                    let r = match r {
                        // It exists but did not open: a dangling symlink.
                        // Create its target, resolved inside the root.
                        Err(Errno(libc::EEXIST)) => {
                            let mut target = [0u8; PATH_MAX];
                            match sys::readlinkat(pfd, n, &mut target) {
                                Ok(len) => mkdir_link_target(root, parent, &target[..len], depth),
                                Err(_) => Ok(()),
                            }
                        }
                        r => r,
                    };
                    sys::close(pfd);
                    r?;
                }
                Err(e) => return Err(e),
            }
        }
        i += 1;
    }
    Ok(())
}

fn mkdir_link_target(root: RawFd, parent: &[u8], target: &[u8], depth: u32) -> SysResult<()> {
    let mut buf = [0u8; PATH_MAX];
    let len = if target.first() == Some(&b'/') {
        if target.len() >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        buf[..target.len()].copy_from_slice(target);
        target.len()
    } else {
        let total = parent.len() + 1 + target.len();
        if total >= PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        buf[..parent.len()].copy_from_slice(parent);
        buf[parent.len()] = b'/';
        buf[parent.len() + 1..total].copy_from_slice(target);
        total
    };
    // `..` above the root stays at the root: openat2 resolves it that way.
    mkdir_all_depth(root, &buf[..len], depth + 1)
}

/// Make sure `path` exists inside `root` as a directory (or, if `dir` is
/// false, as a file), then return an O_PATH fd for it.
pub fn ensure(root: RawFd, path: &[u8], dir: bool) -> SysResult<RawFd> {
    if let Ok(fd) = open(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    if dir {
        mkdir_all(root, path)?;
    } else {
        let (parent, _) = split(path);
        mkdir_all(root, parent)?;
        let create = || {
            open_in_root(
                root,
                path,
                libc::O_CREAT | libc::O_RDONLY | libc::O_NOCTTY,
                0o644,
            )
        };
        let fd = match create() {
            // A dangling symlink whose target's directories are missing:
            // make them, resolved inside the root (as runc does), and retry.
            Err(Errno(libc::ENOENT)) => {
                let mut target = [0u8; PATH_MAX];
                let len = with_parent(root, path, |dir, n| sys::readlinkat(dir, n, &mut target))
                    .map_err(|_| Errno(libc::ENOENT))?;
                let target = &target[..len];
                if target.contains(&b'/') {
                    let (tparent, _) = split(target);
                    mkdir_link_target(root, parent, tparent, 0)?;
                }
                create()?
            }
            r => r?,
        };
        sys::close(fd);
    }
    open(root, path, libc::O_PATH)
}

/// Mount targets resolved one after another, with the last parent
/// directory kept open: the v1 cgroup binds, for instance, all land in
/// /sys/fs/cgroup. The final component is opened beneath that parent
/// (RESOLVE_BENEATH); anything unusual (a symlink leaving it, a dangling
/// one, a missing parent) goes the full [`ensure`] way from the root.
pub struct Resolver {
    root: RawFd,
    parent: [u8; PATH_MAX],
    parent_len: usize,
    /// -1: nothing cached.
    parent_fd: RawFd,
}

impl Resolver {
    pub fn new(root: RawFd) -> Resolver {
        Resolver {
            root,
            parent: [0; PATH_MAX],
            parent_len: 0,
            parent_fd: -1,
        }
    }

    /// Like [`ensure`]: make sure `path` exists (a directory if `dir`),
    /// return an O_PATH fd for it.
    pub fn ensure(&mut self, path: &[u8], dir: bool) -> SysResult<RawFd> {
        let (parent, name) = split(path);
        if name.is_empty() || name == b"." || name == b".." {
            return ensure(self.root, path, dir);
        }
        let Some(pfd) = self.parent_fd(parent) else {
            return ensure(self.root, path, dir);
        };
        let mut nbuf = [0u8; PATH_MAX];
        let n = cstr(&mut nbuf, name)?;
        match sys::open_beneath(pfd, n, libc::O_PATH) {
            Ok(fd) => return Ok(fd),
            Err(Errno(libc::ENOENT)) => {}
            Err(_) => return ensure(self.root, path, dir),
        }
        let made = if dir {
            sys::mkdirat(pfd, n, 0o755)
        } else {
            sys::openat(
                pfd,
                n,
                libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY | libc::O_NOCTTY | libc::O_NOFOLLOW,
                0o644,
            )
            .map(sys::close)
        };
        match made.and_then(|()| sys::open_beneath(pfd, n, libc::O_PATH)) {
            Ok(fd) => Ok(fd),
            // A dangling symlink, a race, no openat2: the full walk sorts
            // it out.
            Err(_) => ensure(self.root, path, dir),
        }
    }

    /// Like [`with_parent`], with the parent directory cached.
    pub fn with_parent<T>(
        &mut self,
        path: &[u8],
        f: impl FnOnce(RawFd, &CStr) -> SysResult<T>,
    ) -> SysResult<T> {
        let (parent, name) = split(path);
        let Some(pfd) = self.parent_fd(parent) else {
            return with_parent(self.root, path, f);
        };
        let mut nbuf = [0u8; PATH_MAX];
        f(pfd, cstr(&mut nbuf, name)?)
    }

    /// Something was mounted on `path`: a cached parent at or below it now
    /// points under the new mount.
    pub fn mounted_on(&mut self, path: &[u8]) {
        let cached = &self.parent[..self.parent_len];
        let path = if path.len() > 1 {
            path.strip_suffix(b"/").unwrap_or(path)
        } else {
            path
        };
        let below = cached.starts_with(path)
            && (cached.len() == path.len() || cached[path.len()] == b'/' || path == b"/");
        if self.parent_fd >= 0 && below {
            self.forget();
        }
    }

    fn forget(&mut self) {
        if self.parent_fd >= 0 && self.parent_fd != self.root {
            sys::close(self.parent_fd);
        }
        self.parent_fd = -1;
        self.parent_len = 0;
    }

    /// The cached fd of `parent`, opening (and creating) it if needed.
    fn parent_fd(&mut self, parent: &[u8]) -> Option<RawFd> {
        if self.parent_fd >= 0 && &self.parent[..self.parent_len] == parent {
            return Some(self.parent_fd);
        }
        self.forget();
        if parent.len() >= PATH_MAX {
            return None;
        }
        let fd = if parent == b"/" {
            self.root
        } else {
            let flags = libc::O_PATH | libc::O_DIRECTORY;
            match open(self.root, parent, flags) {
                Ok(fd) => fd,
                Err(Errno(libc::ENOENT)) => {
                    mkdir_all(self.root, parent).ok()?;
                    open(self.root, parent, flags).ok()?
                }
                Err(_) => return None,
            }
        };
        self.parent[..parent.len()].copy_from_slice(parent);
        self.parent_len = parent.len();
        self.parent_fd = fd;
        Some(fd)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Run `f` with the parent directory of `path` (created if missing, fd open
/// O_PATH) and the final component as a C string.
pub fn with_parent<T>(
    root: RawFd,
    path: &[u8],
    f: impl FnOnce(RawFd, &CStr) -> SysResult<T>,
) -> SysResult<T> {
    let (parent, name) = split(path);
    mkdir_all(root, parent)?;
    let pfd = open(root, parent, libc::O_PATH | libc::O_DIRECTORY)?;
    let mut nbuf = [0u8; PATH_MAX];
    let r = cstr(&mut nbuf, name).and_then(|n| f(pfd, n));
    sys::close(pfd);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn splits_paths() {
        assert_eq!(split(b"/a/b/c"), (&b"/a/b"[..], &b"c"[..]));
        assert_eq!(split(b"/a"), (&b"/"[..], &b"a"[..]));
        assert_eq!(split(b"/a/b/"), (&b"/a"[..], &b"b"[..]));
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let base = std::env::temp_dir().join(format!("hull-resolve-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute symlink to a host directory, and a `..` climb.
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("climb")).unwrap();
        let dir = std::fs::File::open(&root).unwrap();
        let fd = ensure(dir.as_raw_fd(), b"/evil/x/y", true).unwrap();
        sys::close(fd);
        let fd = ensure(dir.as_raw_fd(), b"/climb/f", false).unwrap();
        sys::close(fd);
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
        assert!(root.join("outside/f").is_file());
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "escaped the root"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn cached_resolver_stays_inside_the_root() {
        let base = std::env::temp_dir().join(format!("hull-resolver-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // Final components that leave their parent: a climb and an
        // absolute link; and a parent that is itself a link out.
        std::os::unix::fs::symlink("../../../outside/c", root.join("d/climb")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("d/abs")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("p")).unwrap();
        // File mount points that are dangling links into missing dirs.
        std::os::unix::fs::symlink(outside.join("deep/f"), root.join("d/fabs")).unwrap();
        std::os::unix::fs::symlink("../../../outside/rel/g", root.join("d/frel")).unwrap();
        let dir = std::fs::File::open(&root).unwrap();
        let mut res = Resolver::new(dir.as_raw_fd());
        for (path, is_dir) in [
            (&b"/d/new"[..], true),
            (b"/d/file", false),
            (b"/d/climb", true),
            (b"/d/abs/x", true),
            (b"/p/y/z", true),
            (b"/d/new", true),
            (b"/d/fabs", false),
            (b"/d/frel", false),
        ] {
            let fd = res.ensure(path, is_dir).unwrap();
            sys::close(fd);
        }
        res.with_parent(b"/d/node", |d, n| sys::mkdirat(d, n, 0o700))
            .unwrap();
        drop(res);
        assert!(root.join("d/new").is_dir() && root.join("d/node").is_dir());
        assert!(root.join("d/file").is_file());
        assert!(
            root.join("outside/c").is_dir(),
            "climb resolved in the root"
        );
        let o = outside.strip_prefix("/").unwrap();
        assert!(root.join(o).join("x").is_dir() && root.join(o).join("y/z").is_dir());
        assert!(root.join(o).join("deep/f").is_file());
        assert!(root.join("outside/rel/g").is_file());
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "escaped the root"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// The manual walk (no openat2) lands where RESOLVE_IN_ROOT does.
    #[test]
    fn walk_matches_openat2() {
        use std::os::unix::fs::symlink;
        let base = std::env::temp_dir().join(format!("hull-walk-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(outside.join("b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        symlink("/a/b", root.join("abs")).unwrap();
        symlink("../../..", root.join("a/b/up")).unwrap();
        symlink(&outside, root.join("a/out")).unwrap();
        symlink("c/../f", root.join("a/b/rel")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let dir = std::fs::File::open(&root).unwrap();
        let r = dir.as_raw_fd();
        let id = |fd: RawFd| {
            // SAFETY: st is plain data filled by fstat.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: fd is open; st is valid for writing.
            assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
            sys::close(fd);
            (st.st_dev, st.st_ino)
        };
        for path in [
            &b"/"[..],
            b"/a/b/c",
            b"a/b/f",
            b"/abs/c/",
            b"/a/b/up/a",
            b"/a/b/up/../../a/b",
            b"/a/b/rel",
            b"/abs/up/abs/f",
            b"/../../a/./b//c/..",
        ] {
            let mut buf = [0u8; PATH_MAX];
            let want = sys::open_in_root(r, cstr(&mut buf, path).unwrap(), libc::O_PATH, 0);
            let got = walk(r, path, libc::O_PATH, 0);
            let p = String::from_utf8_lossy(path);
            assert_eq!(id(got.unwrap()), id(want.unwrap()), "{p}");
        }
        // Out of the root only inside it: /a/out/b is looked up as
        // <root>/<outside>/b, which does not exist there.
        assert_eq!(
            walk(r, b"/a/out/b", libc::O_PATH, 0),
            Err(Errno(libc::ENOENT))
        );
        assert_eq!(
            walk(r, b"/loop1/x", libc::O_PATH, 0),
            Err(Errno(libc::ELOOP))
        );
        // Creating the last component.
        let fd = walk(r, b"/abs/new", libc::O_CREAT | libc::O_RDONLY, 0o600).unwrap();
        sys::close(fd);
        assert!(root.join("a/b/new").is_file());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
