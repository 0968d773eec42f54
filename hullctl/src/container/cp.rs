//! `cp`: files and directories between a container (running or not) and
//! the host, as `docker cp`. Paths in the container are resolved with
//! openat2 RESOLVE_IN_ROOT against its root: its rootfs (mounted for the
//! copy if it is not running), or, under the destination of one of its
//! bind mounts or volumes, that mount's source; so neither `..` nor a
//! symlink, absolute or relative, leads out of it. As docker's cp, this
//! does not see the container's /proc, /sys, /dev or tmpfs mounts. Below the
//! resolved directories every entry is opened fd-relative with
//! O_NOFOLLOW: a copy never follows a symlink of the tree it copies.
//!
//! As docker: files copied into the container are owned by root unless
//! `-a`, files copied out by the user running hullctl unless `-a`; modes
//! and times are kept; a symlink is copied as a symlink (`-L` follows
//! the source's final one, inside the container's root).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::record::{self, ContainerRecord, Paths};
use super::{is_mountpoint, mount_rootfs};
use crate::error::{Error, Result};
use crate::store::Store;

/// One side of a copy, as given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Host(PathBuf),
    Container(String, String),
}

/// docker's rule: `NAME:PATH` is in a container; a host path with a
/// colon is written with a `/` or `./` before it.
pub fn parse(arg: &str) -> Endpoint {
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => {
            Endpoint::Container(name.to_string(), path.to_string())
        }
        _ => Endpoint::Host(PathBuf::from(arg)),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// Keep the owners (docker cp -a).
    pub archive: bool,
    /// Follow the source's final symlink (docker cp -L).
    pub follow: bool,
}

/// A tree paths are resolved in: a container's root (plus, for a stopped
/// container, its bind mounts by destination) or the host's `/`.
struct Side {
    label: String,
    root: OwnedFd,
    /// (destination, source dir, the file's name for a file bind) of the
    /// container's bind mounts (not mounted in this mount namespace).
    binds: Vec<(String, OwnedFd, Option<String>)>,
    /// The rootfs this side mounted (unmounted on drop).
    mounted: Option<PathBuf>,
}

impl Drop for Side {
    fn drop(&mut self) {
        if let Some(rootfs) = &self.mounted {
            unmount(rootfs);
        }
    }
}

fn unmount(rootfs: &Path) {
    if is_mountpoint(rootfs) {
        if let Ok(c) = crate::sys::cstr(rootfs.as_os_str().as_encoded_bytes()) {
            let _ = crate::sys::umount(&c, libc::MNT_DETACH);
        }
    }
}

fn io_err(what: &str, path: &str, e: std::io::Error) -> Error {
    Error::Usage(format!("cp: {what}: {path}: {e}"))
}

fn c(s: &str) -> std::io::Result<CString> {
    crate::sys::cstr(s.as_bytes())
}

/// `path` made absolute and clean (`.`, `..` and `//` resolved by name,
/// `..` stopping at `/`), as docker does before resolving it.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A host directory (symlinks followed: the host's own paths, and
/// /proc/PID/root, are trusted), for resolving in.
fn open_dir_path(p: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)?;
    Ok(OwnedFd::from(f))
}

impl Side {
    fn host() -> Result<Side> {
        Ok(Side {
            label: "host".into(),
            root: open_dir_path(Path::new("/")).map_err(|e| io_err("host", "/", e))?,
            binds: Vec::new(),
            mounted: None,
        })
    }

    fn container(store: &Store, rec: &ContainerRecord) -> Result<Side> {
        let label = format!("container {}", rec.name);
        // The rootfs (mounted for the copy if the container is not
        // running), and its bind mounts and volumes by destination,
        // longest first: what docker's cp sees (not /proc, /sys, /dev or
        // tmpfs mounts inside the container).
        let rootfs = Paths::new(store, &rec.name).rootfs();
        let was = rec.storage == super::storage::Storage::Copy || is_mountpoint(&rootfs);
        mount_rootfs(store, rec)?;
        let root = match open_dir_path(&rootfs) {
            Ok(r) => r,
            Err(e) => {
                if !was {
                    unmount(&rootfs);
                }
                return Err(io_err(&label, "/", e));
            }
        };
        let mut side = Side {
            label,
            root,
            binds: Vec::new(),
            mounted: (!was).then(|| rootfs.clone()),
        };
        let cfg = Paths::new(store, &rec.name).bundle().join("config.json");
        let cfg: serde_json::Value = std::fs::read(&cfg)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        for m in cfg["mounts"].as_array().into_iter().flatten() {
            let bind = m["type"] == "bind"
                || m["options"]
                    .as_array()
                    .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
            let (Some(dest), Some(src)) = (m["destination"].as_str(), m["source"].as_str()) else {
                continue;
            };
            if !bind {
                continue;
            }
            // A file bind (/etc/hosts...) is reached by its exact path.
            let src = Path::new(src);
            if let Ok(fd) = open_dir_path(src) {
                side.binds.push((clean(dest), fd, None));
            } else if let (Some(dir), Some(name)) = (src.parent(), src.file_name()) {
                if let Ok(fd) = open_dir_path(dir) {
                    let name = name.to_string_lossy().to_string();
                    side.binds.push((clean(dest), fd, Some(name)));
                }
            }
        }
        side.binds
            .sort_by_key(|(d, _, _)| std::cmp::Reverse(d.len()));
        Ok(side)
    }

    /// The root `path` (clean, absolute) is under, and its rest there.
    fn place(&self, path: &str) -> (RawFd, String) {
        for (dest, fd, file) in &self.binds {
            let Some(rest) = path.strip_prefix(dest.as_str()) else {
                continue;
            };
            match file {
                Some(name) if rest.is_empty() => return (fd.as_raw_fd(), format!("/{name}")),
                None if rest.is_empty() || rest.starts_with('/') => {
                    return (fd.as_raw_fd(), format!("/{}", rest.trim_start_matches('/')))
                }
                _ => {}
            }
        }
        (self.root.as_raw_fd(), path.to_string())
    }

    fn open(&self, path: &str, flags: libc::c_int) -> std::io::Result<OwnedFd> {
        let (root, rest) = self.place(path);
        crate::sys::open_in_root(root, &c(&rest)?, flags, 0)
    }

    /// The directory holding `path` (opened in the root) and its last
    /// name; a final symlink is followed (inside the root) when `follow`.
    fn locate(&self, path: &str, follow: bool) -> Result<(OwnedFd, CString, String)> {
        let mut path = clean(path);
        for _ in 0..40 {
            if path == "/" {
                // The root itself: its parent is itself, named ".".
                let d = self
                    .open("/", libc::O_PATH | libc::O_DIRECTORY)
                    .map_err(|e| io_err(&self.label, "/", e))?;
                return Ok((d, c".".to_owned(), path));
            }
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
            let dir = if dir.is_empty() { "/" } else { dir };
            let d = self
                .open(dir, libc::O_PATH | libc::O_DIRECTORY)
                .map_err(|e| io_err(&self.label, dir, e))?;
            let cname = c(name).map_err(|e| io_err(&self.label, &path, e))?;
            let st = crate::sys::lstatat(d.as_raw_fd(), &cname);
            let is_link = st.is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFLNK);
            if !(follow && is_link) {
                return Ok((d, cname, path));
            }
            let target = crate::sys::readlinkat(d.as_raw_fd(), &cname)
                .map_err(|e| io_err(&self.label, &path, e))?;
            let target = String::from_utf8_lossy(&target).to_string();
            path = if target.starts_with('/') {
                clean(&target)
            } else {
                clean(&format!("{dir}/{target}"))
            };
        }
        Err(io_err(
            &self.label,
            &path,
            std::io::Error::from_raw_os_error(libc::ELOOP),
        ))
    }
}

/// The host side's path, absolute.
fn host_path(p: &Path) -> Result<String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| io_err("host", ".", e))?
            .join(p)
    };
    let s = abs.to_string_lossy().to_string();
    // Keep a trailing "/" or "/." (they mean something to cp).
    Ok(s)
}

/// `cp SRC DST`: exactly one of them in a container.
pub fn cp(store: &Store, src: &Endpoint, dst: &Endpoint, o: CpOptions) -> Result<()> {
    let side = |e: &Endpoint| -> Result<(Side, String, bool)> {
        match e {
            Endpoint::Host(p) => Ok((Side::host()?, host_path(p)?, false)),
            Endpoint::Container(n, p) => {
                let rec = record::find(store, n)?;
                Ok((Side::container(store, &rec)?, p.clone(), true))
            }
        }
    };
    if [src, dst].contains(&&Endpoint::Host(PathBuf::from("-"))) {
        return Err(Error::Usage(
            "cp: \"-\" (a tar stream on stdin/stdout) is not supported; name a host path".into(),
        ));
    }
    let into_container = match (src, dst) {
        (Endpoint::Host(_), Endpoint::Container(..)) => true,
        (Endpoint::Container(..), Endpoint::Host(_)) => false,
        _ => {
            return Err(Error::Usage(
                "cp: copying between two containers or two host paths is not supported; \
                 one side must be NAME:PATH"
                    .into(),
            ))
        }
    };
    let (s, spath, _) = side(src)?;
    let (d, dpath, _) = side(dst)?;
    let owner = if o.archive {
        None
    } else if into_container {
        Some((0, 0))
    } else {
        Some(crate::sys::geteuid_egid())
    };
    copy(&s, &spath, &d, &dpath, o.follow, owner)
}

fn copy(
    s: &Side,
    spath: &str,
    d: &Side,
    dpath: &str,
    follow: bool,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    // "dir/." copies the directory's content; "/" too.
    let contents = spath.ends_with("/.") || clean(spath) == "/";
    // A trailing "/" (or "/.") asks for the directory a symlink names.
    let follow = follow || spath.ends_with('/') || spath.ends_with("/.");
    let (sdir, sname, sclean) = s.locate(spath, follow)?;
    let st =
        crate::sys::lstatat(sdir.as_raw_fd(), &sname).map_err(|e| io_err(&s.label, &sclean, e))?;
    let src_is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if spath.ends_with('/') && !src_is_dir {
        return Err(io_err(
            &s.label,
            spath,
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    let mut cx = Copier {
        owner,
        from: &s.label,
        to: &d.label,
    };
    // An existing directory (a symlink to one followed inside the root):
    // the source goes into it.
    let (ddir, dname, dclean) = d.locate(dpath, true)?;
    let dst = crate::sys::lstatat(ddir.as_raw_fd(), &dname).ok();
    let dst_is_dir = dst.is_some_and(|t| t.st_mode & libc::S_IFMT == libc::S_IFDIR);
    if dst_is_dir {
        let into = crate::sys::openat(
            ddir.as_raw_fd(),
            &dname,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| io_err(&d.label, &dclean, e))?;
        if src_is_dir && contents {
            let from = crate::sys::openat(
                sdir.as_raw_fd(),
                &sname,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )
            .map_err(|e| io_err(&s.label, &sclean, e))?;
            return cx.children(&from, &into, &sclean, &dclean);
        }
        let name = if &*sname == c"." {
            c"rootfs".to_owned()
        } else {
            sname.clone()
        };
        let dn = format!("{dclean}/{}", name.to_string_lossy());
        return cx.entry(
            sdir.as_raw_fd(),
            &sname,
            into.as_raw_fd(),
            &name,
            &sclean,
            &dn,
        );
    }
    if dst.is_some() && src_is_dir {
        return Err(Error::Usage(format!(
            "cp: cannot copy directory {} of the {} over the file {} of the {}",
            sclean, s.label, dclean, d.label
        )));
    }
    if dpath.ends_with('/') && !src_is_dir {
        return Err(Error::Usage(format!(
            "cp: destination directory {dclean} does not exist in the {}",
            d.label
        )));
    }
    cx.entry(
        sdir.as_raw_fd(),
        &sname,
        ddir.as_raw_fd(),
        &dname,
        &sclean,
        &dclean,
    )
}

/// The recursive copy, fd-relative on both sides.
struct Copier<'a> {
    owner: Option<(u32, u32)>,
    from: &'a str,
    to: &'a str,
}

impl Copier<'_> {
    fn src_err(&self, p: &str, e: std::io::Error) -> Error {
        io_err(self.from, p, e)
    }
    fn dst_err(&self, p: &str, e: std::io::Error) -> Error {
        io_err(self.to, p, e)
    }

    /// Copy the entries of the open directory `from` into `into`.
    fn children(&mut self, from: &OwnedFd, into: &OwnedFd, sp: &str, dp: &str) -> Result<()> {
        let listing = format!("/proc/self/fd/{}", from.as_raw_fd());
        let mut names: Vec<_> = std::fs::read_dir(&listing)
            .map_err(|e| self.src_err(sp, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| self.src_err(sp, e))?;
        names.sort();
        for n in names {
            let cn = crate::sys::cstr(n.as_encoded_bytes()).map_err(|e| self.src_err(sp, e))?;
            let ns = n.to_string_lossy();
            self.entry(
                from.as_raw_fd(),
                &cn,
                into.as_raw_fd(),
                &cn,
                &format!("{}/{ns}", sp.trim_end_matches('/')),
                &format!("{}/{ns}", dp.trim_end_matches('/')),
            )?;
        }
        Ok(())
    }

    /// Copy `sname` in `sdir` as `dname` in `ddir` (neither followed).
    fn entry(
        &mut self,
        sdir: RawFd,
        sname: &CStr,
        ddir: RawFd,
        dname: &CStr,
        sp: &str,
        dp: &str,
    ) -> Result<()> {
        let st = crate::sys::lstatat(sdir, sname).map_err(|e| self.src_err(sp, e))?;
        let kind = st.st_mode & libc::S_IFMT;
        let existing = crate::sys::lstatat(ddir, dname).ok();
        let existing_dir = existing.is_some_and(|t| t.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if kind == libc::S_IFDIR {
            if existing.is_some() && !existing_dir {
                return Err(Error::Usage(format!(
                    "cp: cannot overwrite the non-directory {dp} of the {} with a directory",
                    self.to
                )));
            }
            if !existing_dir {
                crate::sys::mkdirat(ddir, dname, 0o700).map_err(|e| self.dst_err(dp, e))?;
            }
            let from = crate::sys::openat(sdir, sname, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| self.src_err(sp, e))?;
            let into = crate::sys::openat(ddir, dname, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| self.dst_err(dp, e))?;
            self.children(&from, &into, sp, dp)?;
            return self.finish(into.as_raw_fd(), c"", &st, dp);
        }
        if existing_dir {
            return Err(Error::Usage(format!(
                "cp: cannot overwrite the directory {dp} of the {} with a non-directory",
                self.to
            )));
        }
        // What is there is replaced (never written through: it may be a
        // symlink, or a hard link to a file elsewhere).
        if existing.is_some() {
            crate::sys::unlinkat(ddir, dname, 0).map_err(|e| self.dst_err(dp, e))?;
        }
        match kind {
            libc::S_IFREG => {
                let from = crate::sys::openat(sdir, sname, libc::O_RDONLY, 0)
                    .map_err(|e| self.src_err(sp, e))?;
                let into = crate::sys::openat(
                    ddir,
                    dname,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                    0o600,
                )
                .map_err(|e| self.dst_err(dp, e))?;
                let (mut r, mut w) = (File::from(from), File::from(into));
                std::io::copy(&mut r, &mut w).map_err(|e| self.dst_err(dp, e))?;
                self.finish(w.as_raw_fd(), c"", &st, dp)
            }
            libc::S_IFLNK => {
                let t = crate::sys::readlinkat(sdir, sname).map_err(|e| self.src_err(sp, e))?;
                let t = crate::sys::cstr(&t).map_err(|e| self.src_err(sp, e))?;
                crate::sys::symlinkat(&t, ddir, dname).map_err(|e| self.dst_err(dp, e))?;
                self.finish(ddir, dname, &st, dp)
            }
            libc::S_IFSOCK => Ok(()), // as tar: a socket is not copied
            _ => {
                crate::sys::mknodat(ddir, dname, st.st_mode, st.st_rdev)
                    .map_err(|e| self.dst_err(dp, e))?;
                self.finish(ddir, dname, &st, dp)
            }
        }
    }

    /// Owner, mode and times: on the open fd (`name` empty) or on `name`
    /// in `dir` (a symlink or device, not followed).
    fn finish(&self, dir: RawFd, name: &CStr, st: &libc::stat, dp: &str) -> Result<()> {
        let (uid, gid) = self.owner.unwrap_or((st.st_uid, st.st_gid));
        crate::sys::fchownat_empty_or_nofollow(dir, name, uid, gid)
            .map_err(|e| self.dst_err(dp, e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            if name.is_empty() {
                crate::sys::fchmod(dir, st.st_mode & 0o7777)
            } else {
                crate::sys::fchmodat(dir, name, st.st_mode & 0o7777)
            }
            .map_err(|e| self.dst_err(dp, e))?;
        }
        let ts = |s: i64, ns: i64| libc::timespec {
            tv_sec: s as libc::time_t,
            tv_nsec: ns as _,
        };
        crate::sys::utimensat_nofollow(
            dir,
            name,
            ts(st.st_atime, st.st_atime_nsec),
            ts(st.st_mtime, st.st_mtime_nsec),
        )
        .map_err(|e| self.dst_err(dp, e))
    }
}
