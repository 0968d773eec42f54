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

/// An opaque directory: the lower layers' content below it is hidden.
fn is_opaque(p: &Path) -> bool {
    let Ok(c) = crate::sys::cstr(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    crate::sys::lgetxattr(&c, c"trusted.overlay.opaque")
        .map(|v| v == b"y")
        .unwrap_or(false)
}

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

/// Whether `rel` exists in the image's layers (top-down: a whiteout in a
/// higher layer hides it).
fn in_image(lowers: &[PathBuf], rel: &str) -> bool {
    for l in lowers {
        match std::fs::symlink_metadata(l.join(rel)) {
            Ok(m) if is_whiteout(&m) => return false,
            Ok(_) => return true,
            Err(_) => {}
        }
        // An opaque directory above it in this layer hides the lower ones.
        let mut up = Path::new(rel).parent();
        while let Some(a) = up.filter(|a| !a.as_os_str().is_empty()) {
            if is_opaque(&l.join(a)) {
                return false;
            }
            up = a.parent();
        }
    }
    false
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

/// `diff`: A (added), C (changed), D (deleted), depth first, as docker.
pub fn diff(store: &Store, rec: &ContainerRecord) -> Result<Vec<Change>> {
    let lowers = lowers(store, rec)?;
    let mut out = Vec::new();
    walk_changes(&Paths::new(store, &rec.name).upper(), "", &lowers, &mut out)?;
    Ok(out)
}

fn walk_changes(dir: &Path, rel: &str, lowers: &[PathBuf], out: &mut Vec<Change>) -> Result<()> {
    for (name, p, m) in sorted_entries(dir)? {
        let r = format!("{rel}/{name}");
        if is_whiteout(&m) {
            out.push(Change { kind: 'D', path: r });
            continue;
        }
        let existed = in_image(lowers, r.trim_start_matches('/'));
        out.push(Change {
            kind: if existed { 'C' } else { 'A' },
            path: r.clone(),
        });
        if m.is_dir() {
            if existed && is_opaque(&p) {
                hidden_by_opaque(&p, &r, lowers, out)?;
            }
            walk_changes(&p, &r, lowers, out)?;
        }
    }
    Ok(())
}

/// What an opaque directory hides: the image's entries below it that the
/// upper dir does not have again are deleted.
fn hidden_by_opaque(
    upper: &Path,
    rel: &str,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<()> {
    let mut names = std::collections::BTreeSet::new();
    for l in lowers {
        let d = l.join(rel.trim_start_matches('/'));
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd {
                names.insert(e.at(&d)?.file_name().to_string_lossy().to_string());
            }
        }
    }
    for n in names {
        let r = format!("{rel}/{n}");
        if !upper.join(&n).exists() && in_image(lowers, r.trim_start_matches('/')) {
            out.push(Change { kind: 'D', path: r });
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
/// followed; each file is opened with O_NOFOLLOW).
fn append_tree<W: Write>(
    tb: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    mode: Mode,
) -> Result<()> {
    for (name, p, m) in sorted_entries(dir)? {
        let r = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ft = m.file_type();
        if mode == Mode::Layer && is_whiteout(&m) {
            let wh = if rel.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{rel}/.wh.{name}")
            };
            tb.append_data(&mut marker(&m), &wh, &[][..]).at(&p)?;
            continue;
        }
        let mut h = header(&m);
        if ft.is_dir() {
            h.set_size(0);
            tb.append_data(&mut h, format!("{r}/"), &[][..]).at(&p)?;
            if mode == Mode::Layer && is_opaque(&p) {
                tb.append_data(&mut marker(&m), format!("{r}/.wh..wh..opq"), &[][..])
                    .at(&p)?;
            }
            append_tree(tb, &p, &r, mode)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&p).at(&p)?;
            h.set_size(0);
            tb.append_link(&mut h, &r, &target).at(&p)?;
        } else if ft.is_file() {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)
                .at(&p)?;
            tb.append_data(&mut h, &r, f).at(&p)?;
        } else {
            // devices, fifos, sockets: the header says it all
            h.set_size(0);
            tb.append_data(&mut h, &r, &[][..]).at(&p)?;
        }
    }
    Ok(())
}

/// Write a tar of `dir` to `out` (via a temp file renamed into place).
fn write_tar(dir: &Path, out: &Path, mode: Mode) -> Result<()> {
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
        append_tree(&mut tb, dir, "", mode)?;
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
    let r = write_tar(&rootfs, out, Mode::Plain);
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
pub fn commit(
    store: &Store,
    rec: &ContainerRecord,
    reference: &str,
    message: &str,
) -> Result<Digest> {
    image::check_ref(reference)?;
    let _paused = match status(store, &rec.name) {
        Some(hull::Status::Running) => {
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
        write_tar(
            &Paths::new(store, &rec.name).upper(),
            &tar_path,
            Mode::Layer,
        )
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
