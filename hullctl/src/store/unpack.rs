//! Unpacking a layer tarball into its own directory, in overlayfs form:
//! OCI whiteouts `.wh.NAME` become 0/0 character devices, `.wh..wh..opq`
//! becomes the `trusted.overlay.opaque=y` xattr on its directory.
//!
//! Path safety: an entry's name may not be absolute or contain `..`, and
//! its parent directory is opened with openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS) from the layer's root, so no symlink (planted by an
//! earlier entry or not) can lead a write outside the layer: such an entry
//! is refused. Everything below is done relative to that parent fd with
//! the *at calls, never following a symlink at the last component.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::digest::{Digest, HashReader};
use crate::error::{Error, IoContext, Result};
use crate::store::{remove_tree, tmp_name, Store};
use crate::sys;

/// The compression of a layer, from its first bytes (the media type can
/// lie or be docker's generic one).
pub fn decompress<'a>(r: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(256 * 1024, r);
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d =
            ruzstd::StreamingDecoder::new(r).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(r))
    }
}

/// The media types of layers hullctl unpacks.
pub fn known_layer_type(mt: &str) -> bool {
    matches!(
        mt,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
    )
}

/// Unpack the layer in `blob` (any supported compression) as `diff_id`,
/// unless it is there already. The uncompressed stream must hash to
/// `diff_id` (None for `import`, where it is computed); returns the diff id.
pub fn unpack_layer(
    store: &Store,
    blob: &Path,
    diff_id: Option<&Digest>,
    what: &str,
) -> Result<Digest> {
    if let Some(d) = diff_id {
        if store.layer_diff(d).is_dir() {
            return Ok(d.clone());
        }
    }
    let work = store.tmp().join(tmp_name("layer"));
    let res = (|| {
        let diff = work.join("diff");
        std::fs::create_dir_all(&diff).at(&diff)?;
        let f = std::fs::File::open(blob).at(blob)?;
        let mut hr = HashReader::new(decompress(f).map_err(|e| layer_err(what, e))?);
        unpack_into(&diff, &mut hr, what)?;
        let (got, _) = hr.finish().map_err(|e| layer_err(what, e))?;
        if let Some(want) = diff_id {
            if &got != want {
                return Err(Error::Digest {
                    what: format!("layer {what} (uncompressed)"),
                    expected: want.to_string(),
                    got: got.to_string(),
                });
            }
        }
        let dst = store.layer_dir(&got);
        match std::fs::rename(&work, &dst) {
            Ok(()) => {}
            // Another unpack of the same layer won the race: same content.
            Err(e) if dst.join("diff").is_dir() => drop(e),
            Err(e) => return Err(Error::io(&dst, e)),
        }
        Ok(got)
    })();
    let _ = remove_tree(&work);
    res
}

fn layer_err(what: &str, e: std::io::Error) -> Error {
    Error::Image(format!(
        "layer {what}: {e} (the layer data is truncated or corrupt)"
    ))
}

/// The entry's path as components: no absolute path, no `..`; `.` and
/// empty components dropped.
fn clean(path: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    if path.starts_with(b"/") {
        return Err("absolute path refused");
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path with '..' refused"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Open the directory `comps` beneath `root` (no symlinks), creating
/// missing ones (0755, as tar does for implied parents).
fn open_dir(root: &OwnedFd, comps: &[&[u8]]) -> std::io::Result<OwnedFd> {
    let mut dir =
        sys::open_beneath_nolinks(root.as_raw_fd(), c".", libc::O_PATH | libc::O_DIRECTORY)?;
    for c in comps {
        let name = sys::cstr(c)?;
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        dir = match sys::open_beneath_nolinks(dir.as_raw_fd(), &name, flags) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                sys::mkdirat(dir.as_raw_fd(), &name, 0o755)?;
                sys::open_beneath_nolinks(dir.as_raw_fd(), &name, flags)?
            }
            r => r?,
        };
    }
    Ok(dir)
}

/// Unpack the tar stream `r` into `dir`.
pub fn unpack_into(dir: &Path, r: &mut dyn Read, what: &str) -> Result<()> {
    let cdir = sys::cstr(dir.as_os_str().as_encoded_bytes()).at(dir)?;
    let root = sys::openat(libc::AT_FDCWD, &cdir, libc::O_PATH | libc::O_DIRECTORY, 0).at(dir)?;
    let mut ar = tar::Archive::new(r);
    let entries = ar.entries().map_err(|e| layer_err(what, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| layer_err(what, e))?;
        let path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&path).to_string();
        let fail = |msg: String| Error::Entry {
            layer: what.to_string(),
            entry: name.clone(),
            msg,
        };
        let comps = clean(&path).map_err(|m| fail(m.to_string()))?;
        apply(&root, &comps, &mut entry).map_err(|e| {
            let msg = match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::EXDEV) => {
                    format!("goes through a symlink, refused ({e})")
                }
                _ if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                ) =>
                {
                    format!("{e} (the layer data is truncated or corrupt)")
                }
                _ => e.to_string(),
            };
            fail(msg)
        })?;
    }
    Ok(())
}

/// Put one entry in place.
fn apply<R: Read>(
    root: &OwnedFd,
    comps: &[&[u8]],
    entry: &mut tar::Entry<R>,
) -> std::io::Result<()> {
    let Some((last, parents)) = comps.split_last() else {
        return Ok(()); // the layer root itself
    };
    let parent = open_dir(root, parents)?;
    let pfd = parent.as_raw_fd();
    if *last == b".wh..wh..opq" {
        let d = sys::open_beneath_nolinks(
            root.as_raw_fd(),
            &join(parents)?,
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        return sys::fsetxattr(d.as_raw_fd(), c"trusted.overlay.opaque", b"y");
    }
    if let Some(hidden) = last.strip_prefix(b".wh.") {
        let name = sys::cstr(hidden)?;
        remove_existing(pfd, &name)?;
        return sys::mknodat(pfd, &name, libc::S_IFCHR, sys::makedev(0, 0));
    }
    let name = sys::cstr(last)?;
    let h = entry.header().clone();
    let mode = h.mode()? & 0o7777;
    let (uid, gid) = (h.uid()? as u32, h.gid()? as u32);
    let kind = h.entry_type();
    if !kind.is_dir() {
        remove_existing(pfd, &name)?;
    }
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let fd = sys::openat(
                pfd,
                &name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )?;
            let mut f = std::fs::File::from(fd);
            let n = std::io::copy(entry, &mut f)?;
            if n != h.size()? {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "truncated file data",
                ));
            }
            set_xattrs(f.as_raw_fd(), entry)?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        tar::EntryType::Directory => {
            match sys::mkdirat(pfd, &name, 0o755) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                r => r?,
            }
            let d = sys::open_beneath_nolinks(pfd, &name, libc::O_RDONLY | libc::O_DIRECTORY)?;
            set_xattrs(d.as_raw_fd(), entry)?;
            let f = std::fs::File::from(d);
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        tar::EntryType::Symlink => {
            let target = entry.link_name_bytes().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "symlink without target")
            })?;
            // The target is stored as is: it is only ever followed inside
            // the container, never while unpacking.
            sys::symlinkat(&sys::cstr(&target)?, pfd, &name)?;
            sys::fchownat_nofollow(pfd, &name, uid, gid)?;
        }
        tar::EntryType::Link => {
            let target = entry.link_name_bytes().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "hard link without target")
            })?;
            let tcomps = clean(&target)
                .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidData, m))?;
            let t = sys::open_beneath_nolinks(
                root.as_raw_fd(),
                &join(&tcomps)?,
                libc::O_PATH | libc::O_NOFOLLOW,
            )?;
            sys::link_fd(&t, pfd, &name)?;
            return Ok(());
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let ft = match kind {
                tar::EntryType::Char => libc::S_IFCHR,
                tar::EntryType::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            let dev = sys::makedev(
                h.device_major()?.unwrap_or(0),
                h.device_minor()?.unwrap_or(0),
            );
            sys::mknodat(pfd, &name, ft | mode, dev)?;
            sys::fchownat_nofollow(pfd, &name, uid, gid)?;
            sys::fchmodat(pfd, &name, mode)?;
        }
        // pax/GNU headers are consumed by the tar crate; others are skipped.
        _ => return Ok(()),
    }
    if let Ok(mtime) = h.mtime() {
        sys::set_mtime(pfd, &name, mtime as i64)?;
    }
    Ok(())
}

fn join(comps: &[&[u8]]) -> std::io::Result<CString> {
    if comps.is_empty() {
        return sys::cstr(b".");
    }
    sys::cstr(&comps.join(&b'/'))
}

/// Remove what is at `name` (a file, or a directory tree an entry replaces).
fn remove_existing(dir: libc::c_int, name: &CString) -> std::io::Result<()> {
    match sys::unlinkat(dir, name, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
            let p = format!("/proc/self/fd/{dir}/{}", name.to_string_lossy());
            std::fs::remove_dir_all(p)
        }
        Err(e) => Err(e),
    }
}

/// The entry's PAX xattrs (`SCHILY.xattr.NAME`), set on `fd`.
fn set_xattrs<R: Read>(fd: libc::c_int, entry: &mut tar::Entry<R>) -> std::io::Result<()> {
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(());
    };
    for ext in exts {
        let ext = ext?;
        if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
            sys::fsetxattr(fd, &sys::cstr(name)?, ext.value_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn entry_names() {
        assert_eq!(clean(b"./a//b/./c").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(clean(b"./").unwrap(), Vec::<&[u8]>::new());
        assert!(clean(b"/etc/passwd").is_err());
        assert!(clean(b"a/../../b").is_err());
        assert!(clean(b"..").is_err());
        // `..` inside a name is a name.
        assert_eq!(clean(b"a..b/..c").unwrap(), vec![&b"a..b"[..], b"..c"]);
    }
}
