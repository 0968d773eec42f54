//! The container layer (its overlayfs upper dir): `diff` (what changed,
//! as docker lists it), `commit` (the upper dir as a new image layer, in
//! OCI form: whiteouts as `.wh.NAME`, opaque directories marked with
//! `.wh..wh..opq`) and `export` (the merged view flattened into a tar).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::json;

use super::record::{ContainerRecord, Paths};
use super::storage::Storage;
use super::{mount_rootfs, status, umount_rootfs};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{self, OCI_LAYER};
use crate::store::{tmp_name, LayerRecord, Store};

/// One changed path, as `docker diff` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: char,
    pub path: String,
}

/// A whiteout in the upper dir: a character device 0/0.
fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// An opaque directory: the lower layers' content below it is hidden
/// (kernel overlayfs' xattr, or fuse-overlayfs' when it could not set
/// that one).
fn is_opaque(p: &Path) -> bool {
    let Ok(c) = crate::sys::cstr(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    [c"trusted.overlay.opaque", c"user.fuseoverlayfs.opaque"]
        .iter()
        .any(|x| crate::sys::lgetxattr(&c, x).is_ok_and(|v| v == b"y"))
}

/// fuse-overlayfs' file forms of its markers (used where it cannot make a
/// 0/0 device or set the xattr).
const OPAQUE_FILE: &str = ".wh..wh..opq";
/// fuse-overlayfs also makes a whiteout named `.wh..opq` beside its
/// opaque file (in OCI form that would be the opaque marker again).
const FUSE_OPAQUE_WHITEOUT: &str = ".wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// Entries of `dir`, sorted by name (stable output and layer digests).
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf, std::fs::Metadata)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).at(&p)?;
        out.push((e.file_name().to_string_lossy().to_string(), p, m));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Where `rel` is in the image's layers (top-down: a whiteout or an
/// opaque directory in a higher layer hides it): the topmost layer's
/// path of it.
fn image_path(lowers: &[PathBuf], rel: &str) -> Option<PathBuf> {
    let rel = rel.trim_start_matches('/');
    for l in lowers {
        let p = l.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if is_whiteout(&m) => return None,
            Ok(_) => return Some(p),
            Err(_) => {}
        }
        // An opaque directory above it in this layer hides the lower ones.
        let mut up = Path::new(rel).parent();
        while let Some(a) = up.filter(|a| !a.as_os_str().is_empty()) {
            if is_opaque(&l.join(a)) {
                return None;
            }
            up = a.parent();
        }
    }
    None
}

fn in_image(lowers: &[PathBuf], rel: &str) -> bool {
    image_path(lowers, rel).is_some()
}

/// The image's layer directories, top layer first.
fn lowers(store: &Store, rec: &ContainerRecord) -> Result<Vec<PathBuf>> {
    let img = store.image(&rec.image)?;
    Ok(img
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_diff(&l.diff_id))
        .collect())
}

/// The mount points the runtime made for the container's mounts (/proc,
/// /dev, /sys, volumes, /etc/hosts...) where the image has nothing:
/// docker keeps those in an init layer below the container layer, so its
/// diff and commit never show them; neither do hullctl's (while they are
/// still what the runtime made: an empty directory or an empty file).
fn runtime_mountpoints(store: &Store, rec: &ContainerRecord, lowers: &[PathBuf]) -> Vec<String> {
    let p = Paths::new(store, &rec.name).bundle().join("config.json");
    let cfg: serde_json::Value = std::fs::read(&p)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    let mut out: Vec<String> = cfg["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str())
        .map(|d| format!("/{}", d.trim_matches('/')))
        .filter(|d| d != "/" && !in_image(lowers, d))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `p` (at `rel`) is a runtime-made mount point, untouched.
fn is_runtime_mountpoint(skip: &[String], rel: &str, p: &Path, m: &std::fs::Metadata) -> bool {
    if skip.binary_search_by(|s| s.as_str().cmp(rel)).is_err() {
        return false;
    }
    if m.is_dir() {
        // (fuse-overlayfs marks each directory it makes opaque)
        std::fs::read_dir(p).is_ok_and(|d| {
            d.flatten()
                .all(|e| e.file_name() == OPAQUE_FILE || e.file_name() == FUSE_OPAQUE_WHITEOUT)
        })
    } else {
        m.is_file() && m.len() == 0
    }
}

/// `diff`: A (added), C (changed), D (deleted), depth first, as docker.
pub fn diff(store: &Store, rec: &ContainerRecord) -> Result<Vec<Change>> {
    let lowers = lowers(store, rec)?;
    let skip = runtime_mountpoints(store, rec, &lowers);
    let paths = Paths::new(store, &rec.name);
    let mut out = Vec::new();
    if rec.storage == Storage::Copy {
        compare_tree(&paths.rootfs(), "", &lowers, &skip, &mut out)?;
    } else {
        walk_changes(&paths.upper(), "", &lowers, &skip, &mut out)?;
    }
    Ok(out)
}

/// Whether a directory's own metadata differs from the image's.
fn dir_meta_differs(m: &std::fs::Metadata, image: Option<&Path>) -> bool {
    match image.and_then(|p| std::fs::symlink_metadata(p).ok()) {
        Some(i) => i.mode() != m.mode() || i.uid() != m.uid() || i.gid() != m.gid(),
        None => true,
    }
}

/// The changes the overlay upper dir `dir` (at `rel`) holds; whether any.
/// A directory that is only there because something below it changed is
/// listed (C) only when something below it is.
fn walk_changes(
    dir: &Path,
    rel: &str,
    lowers: &[PathBuf],
    skip: &[String],
    out: &mut Vec<Change>,
) -> Result<bool> {
    let mut any = false;
    for (name, p, m) in sorted_entries(dir)? {
        if name == OPAQUE_FILE || (name == FUSE_OPAQUE_WHITEOUT && is_whiteout(&m)) {
            continue;
        }
        let r = format!("{rel}/{name}");
        if is_whiteout(&m) {
            out.push(Change { kind: 'D', path: r });
            any = true;
            continue;
        }
        if let Some(gone) = name.strip_prefix(WHITEOUT_PREFIX).filter(|_| m.is_file()) {
            out.push(Change {
                kind: 'D',
                path: format!("{rel}/{gone}"),
            });
            any = true;
            continue;
        }
        if is_runtime_mountpoint(skip, &r, &p, &m) {
            continue;
        }
        let image = image_path(lowers, &r);
        if !m.is_dir() {
            let kind = if image.is_some() { 'C' } else { 'A' };
            out.push(Change { kind, path: r });
            any = true;
            continue;
        }
        let opaque = is_opaque(&p) || p.join(OPAQUE_FILE).exists();
        let mut below = Vec::new();
        if image.is_some() && opaque {
            hidden_by_opaque(&p, &r, lowers, &mut below)?;
        }
        let changed_below = walk_changes(&p, &r, lowers, skip, &mut below)? || !below.is_empty();
        let kind = match &image {
            None => 'A',
            Some(_) if changed_below || opaque || dir_meta_differs(&m, image.as_deref()) => 'C',
            Some(_) => continue,
        };
        out.push(Change { kind, path: r });
        out.append(&mut below);
        any = true;
    }
    Ok(any)
}

/// The names the image has in its directory `rel`.
fn image_names(lowers: &[PathBuf], rel: &str) -> Result<std::collections::BTreeSet<String>> {
    let mut names = std::collections::BTreeSet::new();
    for l in lowers {
        let d = l.join(rel.trim_start_matches('/'));
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd {
                let n = e.at(&d)?.file_name().to_string_lossy().to_string();
                if in_image(lowers, &format!("{rel}/{n}")) {
                    names.insert(n);
                }
            }
        }
    }
    Ok(names)
}

/// What an opaque directory hides: the image's entries below it that the
/// upper dir does not have again are deleted.
fn hidden_by_opaque(
    upper: &Path,
    rel: &str,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<()> {
    for n in image_names(lowers, rel)? {
        if std::fs::symlink_metadata(upper.join(&n)).is_err() {
            out.push(Change {
                kind: 'D',
                path: format!("{rel}/{n}"),
            });
        }
    }
    Ok(())
}

/// The copy fallback's diff: the container's rootfs `dir` (at `rel`)
/// compared with the image's layers, as docker's naive diff does (type,
/// mode, owner, device; for non-directories also size, mtime and a
/// symlink's target). Whether anything below changed.
fn compare_tree(
    dir: &Path,
    rel: &str,
    lowers: &[PathBuf],
    skip: &[String],
    out: &mut Vec<Change>,
) -> Result<bool> {
    let entries = sorted_entries(dir)?;
    let mut any = false;
    let mut changes = Vec::new();
    for (name, p, m) in &entries {
        let r = format!("{rel}/{name}");
        if is_runtime_mountpoint(skip, &r, p, m) {
            continue;
        }
        let image = image_path(lowers, &r);
        let im = image
            .as_ref()
            .and_then(|i| std::fs::symlink_metadata(i).ok());
        let mut below = Vec::new();
        let kind = match im {
            None => {
                if m.is_dir() {
                    all_added(p, &r, &mut below)?;
                }
                Some('A')
            }
            Some(im) if im.is_dir() && m.is_dir() => {
                let changed_below = compare_tree(p, &r, lowers, skip, &mut below)?;
                (changed_below || dir_meta_differs(m, image.as_deref())).then_some('C')
            }
            Some(im) => {
                if m.is_dir() {
                    all_added(p, &r, &mut below)?;
                }
                let differs = im.file_type() != m.file_type()
                    || im.mode() != m.mode()
                    || im.uid() != m.uid()
                    || im.gid() != m.gid()
                    || im.rdev() != m.rdev()
                    || (!m.is_dir()
                        && (im.size() != m.size()
                            || im.mtime() != m.mtime()
                            || im.mtime_nsec() != m.mtime_nsec()))
                    || (m.file_type().is_symlink()
                        && image.as_ref().map(std::fs::read_link).transpose().ok()
                            != Some(Some(std::fs::read_link(p).at(p)?)));
                differs.then_some('C')
            }
        };
        if let Some(kind) = kind {
            changes.push(Change { kind, path: r });
            changes.append(&mut below);
            any = true;
        }
    }
    let present: std::collections::BTreeSet<&str> =
        entries.iter().map(|(n, _, _)| n.as_str()).collect();
    for n in image_names(lowers, rel)? {
        if !present.contains(n.as_str()) {
            changes.push(Change {
                kind: 'D',
                path: format!("{rel}/{n}"),
            });
            any = true;
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    out.append(&mut changes);
    Ok(any)
}

/// Everything below a new directory is new.
fn all_added(dir: &Path, rel: &str, out: &mut Vec<Change>) -> Result<()> {
    for (name, p, m) in sorted_entries(dir)? {
        let r = format!("{rel}/{name}");
        out.push(Change {
            kind: 'A',
            path: r.clone(),
        });
        if m.is_dir() {
            all_added(&p, &r, out)?;
        }
    }
    Ok(())
}

/// A tar header for `m` (type, mode, owner, mtime, device numbers).
fn header(m: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
    h
}

/// The header of a whiteout or opaque marker: an empty file owned by root.
fn marker(m: &std::fs::Metadata) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(m.mtime().max(0) as u64);
    h
}

/// How [`append_tree`] writes what it finds.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// An OCI layer: whiteouts and opaque markers translated.
    Layer,
    /// A plain tree (the merged view).
    Plain,
}

/// Append `dir`'s content under the archive path `rel` (no symlink is
/// followed; each file is opened with O_NOFOLLOW). In a layer, the
/// runtime's untouched mount points (`skip`) are left out.
fn append_tree<W: Write>(
    tb: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    mode: Mode,
    skip: &[String],
) -> Result<()> {
    for (name, p, m) in sorted_entries(dir)? {
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if mode == Mode::Layer {
            if name == FUSE_OPAQUE_WHITEOUT && is_whiteout(&m) {
                continue;
            }
            if is_whiteout(&m) {
                let wh = match rel {
                    "" => format!("{WHITEOUT_PREFIX}{name}"),
                    _ => format!("{rel}/{WHITEOUT_PREFIX}{name}"),
                };
                tb.append_data(&mut marker(&m), &wh, &[][..]).at(&p)?;
                continue;
            }
            if name.starts_with(WHITEOUT_PREFIX) && m.is_file() {
                // fuse-overlayfs' file markers are OCI's already.
                tb.append_data(&mut marker(&m), &r, &[][..]).at(&p)?;
                continue;
            }
            if is_runtime_mountpoint(skip, &format!("/{r}"), &p, &m) {
                continue;
            }
        }
        append_one(tb, &p, &m, &r)?;
        if m.is_dir() {
            if mode == Mode::Layer && is_opaque(&p) && !p.join(OPAQUE_FILE).exists() {
                tb.append_data(&mut marker(&m), format!("{r}/{OPAQUE_FILE}"), &[][..])
                    .at(&p)?;
            }
            append_tree(tb, &p, &r, mode, skip)?;
        }
    }
    Ok(())
}

/// Append the one entry `p` (a directory without its content) as `r`.
fn append_one<W: Write>(
    tb: &mut tar::Builder<W>,
    p: &Path,
    m: &std::fs::Metadata,
    r: &str,
) -> Result<()> {
    let ft = m.file_type();
    let mut h = header(m);
    if ft.is_dir() {
        h.set_size(0);
        tb.append_data(&mut h, format!("{r}/"), &[][..]).at(p)?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(p).at(p)?;
        h.set_size(0);
        tb.append_link(&mut h, r, &target).at(p)?;
    } else if ft.is_file() {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
            .at(p)?;
        // Exactly the size the header says, even if the file changes
        // meanwhile (a commit without --pause): cut or padded with zeros,
        // never a misaligned archive.
        let size = h.size().at(p)?;
        let body = std::io::Read::take(
            std::io::Read::chain(std::io::Read::take(f, size), std::io::repeat(0)),
            size,
        );
        tb.append_data(&mut h, r, body).at(p)?;
    } else {
        // devices, fifos, sockets: the header says it all
        h.set_size(0);
        tb.append_data(&mut h, r, &[][..]).at(p)?;
    }
    Ok(())
}

/// The copy fallback's layer: the changes `diff` finds, taken from the
/// container's rootfs; deletions as whiteouts.
fn append_changes<W: Write>(
    tb: &mut tar::Builder<W>,
    rootfs: &Path,
    changes: &[Change],
) -> Result<()> {
    for c in changes {
        let r = c.path.trim_start_matches('/');
        if c.kind == 'D' {
            let (dir, name) = r.rsplit_once('/').unwrap_or(("", r));
            let wh = match dir {
                "" => format!("{WHITEOUT_PREFIX}{name}"),
                _ => format!("{dir}/{WHITEOUT_PREFIX}{name}"),
            };
            let m = std::fs::symlink_metadata(rootfs).at(rootfs)?;
            tb.append_data(&mut marker(&m), &wh, &[][..]).at(rootfs)?;
            continue;
        }
        let p = rootfs.join(r);
        let m = std::fs::symlink_metadata(&p).at(&p)?;
        append_one(tb, &p, &m, r)?;
    }
    Ok(())
}

/// What [`write_tar`] archives.
enum Source<'a> {
    Tree(&'a Path, Mode, &'a [String]),
    Changes(&'a Path, &'a [Change]),
}

/// Write a tar of `src` to `out` (via a temp file renamed into place).
fn write_tar(src: Source, out: &Path) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.{}",
        out.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        tmp_name("tar")
    ));
    let r = (|| {
        let f = File::create(&tmp).at(&tmp)?;
        let mut tb = tar::Builder::new(std::io::BufWriter::new(f));
        match src {
            Source::Tree(dir, mode, skip) => append_tree(&mut tb, dir, "", mode, skip)?,
            Source::Changes(rootfs, changes) => append_changes(&mut tb, rootfs, changes)?,
        }
        let w = tb.into_inner().at(&tmp)?;
        let f = w
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, out).at(out)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// `export`: the container's merged filesystem (without its volumes) as
/// a tar. The rootfs is mounted for the export if it was not.
pub fn export(store: &Store, rec: &ContainerRecord, out: &Path) -> Result<()> {
    let rootfs = Paths::new(store, &rec.name).rootfs();
    let was_mounted = super::is_mountpoint(&rootfs);
    mount_rootfs(store, rec)?;
    let r = write_tar(Source::Tree(&rootfs, Mode::Plain, &[]), out);
    if !was_mounted {
        umount_rootfs(store, &rec.name);
    }
    r.map_err(|e| Error::Image(format!("container {}: export: {e}", rec.name)))
}

/// Pauses a running container for as long as it lives (docker's
/// `commit --pause`, the default), so the upper dir holds still.
struct Paused<'a> {
    store: &'a Store,
    rec: &'a ContainerRecord,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        let _ = super::pause(self.store, self.rec, false);
    }
}

/// `commit`: the container layer becomes a new image, the parent image's
/// layers plus this one, its config history extended; tagged `reference`.
/// A running container is paused meanwhile unless `pause` is false (then
/// files it writes during the commit may be caught half written).
pub fn commit(
    store: &Store,
    rec: &ContainerRecord,
    reference: &str,
    message: &str,
    pause: bool,
) -> Result<Digest> {
    image::check_ref(reference)?;
    let _paused = match status(store, &rec.name) {
        Some(hull::Status::Running) if pause => {
            super::pause(store, rec, true)?;
            Some(Paused { store, rec })
        }
        _ => None,
    };
    let _g = store.ingest_guard()?;
    let parent = store.image(&rec.image)?;
    let what = format!("container {} layer", rec.name);
    let tar_path = store.tmp().join(tmp_name("commit"));
    let r = (|| {
        let paths = Paths::new(store, &rec.name);
        let lowers = lowers(store, rec)?;
        let (rootfs, upper) = (paths.rootfs(), paths.upper());
        let changes;
        let skip;
        let src = if rec.storage == Storage::Copy {
            changes = diff(store, rec)?;
            Source::Changes(&rootfs, &changes)
        } else {
            skip = runtime_mountpoints(store, rec, &lowers);
            Source::Tree(&upper, Mode::Layer, &skip)
        };
        write_tar(src, &tar_path)
            .map_err(|e| Error::Image(format!("container {}: commit: {e}", rec.name)))?;
        let mut f = File::open(&tar_path).at(&tar_path)?;
        store.put_blob(&mut f, None, &what)
    })();
    let _ = std::fs::remove_file(&tar_path);
    let (layer, size) = r?;
    // Uncompressed: the blob's digest is its diff id.
    let diff_id =
        crate::store::unpack::unpack_layer(store, &store.blob_path(&layer), Some(&layer), &what)?;
    let mut cfg = image::config(store, &parent)?;
    let created = hull::timefmt::now(false);
    cfg["created"] = json!(created);
    match cfg["rootfs"]["diff_ids"].as_array_mut() {
        Some(ids) => ids.push(json!(diff_id.as_str())),
        None => {
            return Err(Error::Image(format!(
                "image {}: config without rootfs.diff_ids",
                parent.id.short()
            )))
        }
    }
    let entry = json!({"created": created, "created_by": format!("hullctl commit {}", rec.name), "comment": message});
    match cfg["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => cfg["history"] = json!([entry]),
    }
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| Error::json("config", e))?;
    let cfg_digest = store.put_blob_bytes(&cfg_bytes, "config")?;
    let mut layers = parent.layers.clone();
    layers.push(LayerRecord {
        digest: layer,
        media_type: OCI_LAYER.to_string(),
        size,
        diff_id,
    });
    let manifest = image::new_manifest(&cfg_digest, cfg_bytes.len() as u64, &layers);
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
    let img = image::register(store, &bytes, &what)?;
    store.tag(&image::normalize_ref(reference), &img.id)?;
    Ok(img.id)
}
