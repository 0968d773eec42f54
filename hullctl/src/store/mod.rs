//! The store (`--root`, default /var/lib/hull):
//!
//! ```text
//! blobs/sha256/<hex>        content-addressed blobs (manifests, configs, layers as shipped)
//! layers/<diffid hex>/diff  each layer unpacked once, in overlayfs form (a lowerdir)
//! images/<id hex>.json      image records (id = config digest): manifest, layers
//! refs.json                 name:tag -> image id
//! containers/<name>/        a container: record, bundle (config.json, rootfs), upper, work, log
//! run/                      hull's state root for these containers
//! tmp/                      work in progress (blobs, unpacks); never looks complete
//! lock                      flock: held exclusive by whatever changes records or removes data
//! ```
//!
//! Crash safety: a blob or layer appears under its final name only by
//! rename(2) after it was verified (blob digest and size, layer diff id),
//! so a killed pull or unpack leaves debris only in tmp/ (cleared by
//! `system prune`). Concurrency: writers of the same blob or layer race
//! harmlessly (same content, the loser discards its copy); record changes
//! and removals hold the store lock.

pub mod unpack;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashWriter};
use crate::error::{Error, IoContext, Result};

pub const DEFAULT_ROOT: &str = "/var/lib/hull";

/// One layer of an image: the blob as shipped and its uncompressed digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub digest: Digest,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    #[serde(rename = "diffId")]
    pub diff_id: Digest,
}

/// An image in the store. A commit (issue 17) makes a new record whose
/// layers are its parent's plus one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config digest (docker's image id).
    pub id: Digest,
    pub manifest: Digest,
    #[serde(rename = "manifestMediaType")]
    pub manifest_media_type: String,
    pub layers: Vec<LayerRecord>,
    /// Seconds since the epoch when it entered the store.
    pub added: i64,
}

#[derive(Clone)]
pub struct Store {
    root: PathBuf,
}

/// The store lock, held while alive.
pub struct StoreLock(#[allow(dead_code)] File);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A unique name for work in tmp/.
pub fn tmp_name(what: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{what}-{}-{n}-{t}", crate::sys::getpid())
}

/// Write `data` to `path` atomically (temp file in the same dir, fsync, rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_replace(path, data, true)
}

/// Like [`write_atomic`] without the fsync: for a container's own files,
/// which a crash may lose with the container (they are not the store's
/// data); saves two disk flushes on every `run`.
pub fn write_replace(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}", tmp_name("w")));
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.at(path)
}

impl Store {
    /// Open (creating its directories) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for d in [
            "blobs/sha256",
            "layers",
            "images",
            "containers",
            "run",
            "tmp",
        ] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).at(&p)?;
        }
        let root = std::fs::canonicalize(&root).at(&root)?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }
    /// The unpacked layer (an overlayfs lowerdir).
    pub fn layer_diff(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("diff")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// Take the store lock (exclusive).
    pub fn lock(&self) -> Result<StoreLock> {
        let p = self.root.join("lock");
        Ok(StoreLock(crate::sys::lock_file(&p, libc::LOCK_EX).at(&p)?))
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found("blob", d.to_string())
            } else {
                Error::io(&p, e)
            }
        })
    }

    /// Store a blob from `r`, verifying `expected` digest and size when
    /// given; returns its digest and size. Written to tmp/ and renamed into
    /// place only once verified.
    pub fn put_blob(
        &self,
        r: &mut dyn Read,
        expected: Option<(&Digest, u64)>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let tmp = self.tmp().join(tmp_name("blob"));
        let res = (|| {
            let f = File::create(&tmp).at(&tmp)?;
            let mut w = HashWriter::new(std::io::BufWriter::new(f));
            std::io::copy(r, &mut w).map_err(|e| Error::Image(format!("{what}: reading: {e}")))?;
            w.flush().at(&tmp)?;
            let (d, n) = (w.digest(), w.count);
            if let Some((want, size)) = expected {
                if n != size {
                    return Err(Error::Size {
                        what: what.to_string(),
                        expected: size,
                        got: n,
                    });
                }
                if &d != want {
                    return Err(Error::Digest {
                        what: what.to_string(),
                        expected: want.to_string(),
                        got: d.to_string(),
                    });
                }
            }
            let f = w
                .inner
                .into_inner()
                .map_err(|e| Error::io(&tmp, e.into_error()))?;
            f.sync_all().at(&tmp)?;
            let dst = self.blob_path(&d);
            std::fs::rename(&tmp, &dst).at(&dst)?;
            Ok((d, n))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }

    pub fn put_blob_bytes(&self, data: &[u8], what: &str) -> Result<Digest> {
        let d = Digest::of(data);
        if !self.has_blob(&d) {
            self.put_blob(&mut &data[..], Some((&d, data.len() as u64)), what)?;
        }
        Ok(d)
    }

    // ---- image records and refs ----

    fn image_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    pub fn put_image(&self, rec: &ImageRecord) -> Result<()> {
        let data = serde_json::to_vec_pretty(rec).map_err(|e| Error::json("image record", e))?;
        write_atomic(&self.image_path(&rec.id), &data)
    }

    pub fn image(&self, id: &Digest) -> Result<ImageRecord> {
        let p = self.image_path(id);
        let data = std::fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found("image", id.to_string())
            } else {
                Error::io(&p, e)
            }
        })?;
        serde_json::from_slice(&data).map_err(|e| Error::json(p.display().to_string(), e))
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(hex) = name.strip_suffix(".json") {
                if let Ok(d) = Digest::parse(&format!("sha256:{hex}")) {
                    out.push(self.image(&d)?);
                }
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.added));
        Ok(out)
    }

    pub fn new_record(
        &self,
        id: Digest,
        manifest: Digest,
        manifest_media_type: &str,
        layers: Vec<LayerRecord>,
    ) -> ImageRecord {
        ImageRecord {
            id,
            manifest,
            manifest_media_type: manifest_media_type.to_string(),
            layers,
            added: now(),
        }
    }

    pub fn refs(&self) -> Result<BTreeMap<String, Digest>> {
        let p = self.root.join("refs.json");
        match std::fs::read(&p) {
            Ok(d) => {
                serde_json::from_slice(&d).map_err(|e| Error::json(p.display().to_string(), e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Replace the refs (hold the store lock around read-modify-write).
    pub fn set_refs(&self, refs: &BTreeMap<String, Digest>) -> Result<()> {
        let data = serde_json::to_vec_pretty(refs).map_err(|e| Error::json("refs", e))?;
        write_atomic(&self.root.join("refs.json"), &data)
    }

    /// Point `name` at `id`.
    pub fn tag(&self, name: &str, id: &Digest) -> Result<()> {
        let _l = self.lock()?;
        let mut refs = self.refs()?;
        refs.insert(name.to_string(), id.clone());
        self.set_refs(&refs)
    }

    /// Find an image by ref, full id, or id prefix (as docker does).
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let refs = self.refs()?;
        if let Some(id) = refs.get(&crate::image::normalize_ref(name)) {
            return self.image(id);
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let found: Vec<_> = self
                .images()?
                .into_iter()
                .filter(|r| r.id.hex().starts_with(hex))
                .collect();
            if found.len() == 1 {
                return found
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::not_found("image", name));
            }
            if found.len() > 1 {
                return Err(Error::Usage(format!(
                    "image id prefix {name:?} is ambiguous"
                )));
            }
        }
        Err(Error::not_found("image", name))
    }

    /// Image ids used by containers (their records name the image).
    pub fn images_in_use(&self) -> Result<BTreeSet<Digest>> {
        let mut used = BTreeSet::new();
        for c in crate::container::record::list(self)? {
            used.insert(c.image.clone());
        }
        Ok(used)
    }

    /// Remove every blob, layer and temp file nothing references (the
    /// caller holds the lock). Returns what was removed.
    pub fn gc(&self) -> Result<Vec<String>> {
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for img in self.images()? {
            keep_blobs.insert(img.id.hex().to_string());
            keep_blobs.insert(img.manifest.hex().to_string());
            for l in &img.layers {
                keep_blobs.insert(l.digest.hex().to_string());
                keep_layers.insert(l.diff_id.hex().to_string());
            }
        }
        let mut removed = Vec::new();
        let blobs = self.root.join("blobs/sha256");
        for e in std::fs::read_dir(&blobs).at(&blobs)? {
            let e = e.at(&blobs)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !keep_blobs.contains(&name) {
                std::fs::remove_file(e.path()).at(e.path())?;
                removed.push(format!("blob sha256:{name}"));
            }
        }
        let layers = self.root.join("layers");
        for e in std::fs::read_dir(&layers).at(&layers)? {
            let e = e.at(&layers)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !keep_layers.contains(&name) {
                remove_tree(&e.path())?;
                removed.push(format!("layer sha256:{name}"));
            }
        }
        Ok(removed)
    }

    /// Clear tmp/ of work no live process is doing (names carry the pid).
    pub fn clear_tmp(&self) -> Result<Vec<String>> {
        let tmp = self.tmp();
        let mut removed = Vec::new();
        for e in std::fs::read_dir(&tmp).at(&tmp)? {
            let e = e.at(&tmp)?;
            let name = e.file_name().to_string_lossy().to_string();
            // A partial download is kept while a pull holds its lock (and
            // for the next pull to resume, unless pruned).
            if name.starts_with("partial-") {
                let f = File::open(e.path()).at(e.path())?;
                if crate::sys::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB).is_err() {
                    continue;
                }
            }
            let pid: Option<i32> = name.split('-').nth(1).and_then(|p| p.parse().ok());
            if let Some(pid) = pid {
                if pid != crate::sys::getpid() && Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
            }
            // A container `run --rm` left to its cleaner: still mounted.
            if mounted_below(&e.path()) {
                continue;
            }
            remove_tree(&e.path())?;
            removed.push(format!("tmp {name}"));
        }
        removed.extend(self.clear_overlay_probes()?);
        Ok(removed)
    }

    /// An overlay probe (containers/.overlay-probe-PID-...) its process
    /// left behind when it died: unmounted and removed.
    fn clear_overlay_probes(&self) -> Result<Vec<String>> {
        let dir = self.containers_dir();
        let mut removed = Vec::new();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(removed);
        };
        for e in rd {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().to_string();
            let Some(rest) = name.strip_prefix(".overlay-probe-") else {
                continue;
            };
            let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
            if pid.is_some_and(|p| {
                p == crate::sys::getpid() || Path::new(&format!("/proc/{p}")).exists()
            }) {
                continue;
            }
            let m = e.path().join("m");
            if mounted_below(&m) {
                let c = crate::sys::cstr(m.as_os_str().as_encoded_bytes()).at(&m)?;
                let _ = crate::sys::umount(&c, libc::MNT_DETACH);
            }
            remove_tree(&e.path())?;
            removed.push(format!("overlay probe {name}"));
        }
        Ok(removed)
    }
}

/// Whether anything is mounted at or below `dir`.
fn mounted_below(dir: &Path) -> bool {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines()
                .filter_map(|l| l.split(' ').nth(4))
                .any(|t| t == prefix || t.starts_with(&format!("{prefix}/")))
        })
        .unwrap_or(false)
}

/// Remove a file or tree, making read-only directories writable first is
/// unnecessary as root; a missing path is fine.
pub fn remove_tree(p: &Path) -> Result<()> {
    let r = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.at(p)
}

/// Held (shared) by whatever adds blobs and layers before recording them,
/// (exclusive) by garbage collection, so a collection never removes the
/// blobs of an image being loaded or pulled.
pub struct GcGuard(#[allow(dead_code)] File);

impl Store {
    fn gc_lock(&self, op: libc::c_int) -> Result<GcGuard> {
        let p = self.root.join("gc.lock");
        Ok(GcGuard(crate::sys::lock_file(&p, op).at(&p)?))
    }
    /// Taken by load, import, pull.
    pub fn ingest_guard(&self) -> Result<GcGuard> {
        self.gc_lock(libc::LOCK_SH)
    }
    fn gc_guard(&self) -> Result<GcGuard> {
        self.gc_lock(libc::LOCK_EX)
    }
}

/// `rmi`: untag `name`; once no name is left (or given by id), remove the
/// image unless a container uses it; then collect unreferenced blobs and
/// layers. Returns docker-style lines (Untagged:, Deleted:).
pub fn rmi(store: &Store, name: &str, force: bool) -> Result<Vec<String>> {
    let _g = store.gc_guard()?;
    let img = store.resolve(name)?;
    let _l = store.lock()?;
    let mut refs = store.refs()?;
    let mut out = Vec::new();
    let by_ref = crate::image::normalize_ref(name);
    let names: Vec<String> = refs
        .iter()
        .filter(|(_, d)| **d == img.id)
        .map(|(r, _)| r.clone())
        .collect();
    let untag: Vec<String> = if refs.contains_key(&by_ref) {
        vec![by_ref]
    } else if names.len() > 1 && !force {
        return Err(Error::Usage(format!(
            "image {} is referenced by {} names ({}): remove them by name, or use -f",
            img.id.short(),
            names.len(),
            names.join(", ")
        )));
    } else {
        names.clone()
    };
    let left = names.len() - untag.len();
    if left == 0 {
        let users: Vec<String> = crate::container::record::list(store)?
            .into_iter()
            .filter(|c| c.image == img.id)
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::Usage(format!(
                "image {} is in use by container(s) {}: remove them first",
                img.id.short(),
                users.join(", ")
            )));
        }
    }
    for u in &untag {
        refs.remove(u);
        out.push(format!("Untagged: {u}"));
    }
    store.set_refs(&refs)?;
    if left == 0 {
        let p = store.image_path(&img.id);
        std::fs::remove_file(&p).at(&p)?;
        out.push(format!("Deleted: {}", img.id));
        for r in store.gc()? {
            out.push(format!("Deleted: {r}"));
        }
    }
    Ok(out)
}

/// `system prune`: stopped containers, images without a name (all unused
/// ones with `all`) that no container uses, then everything unreferenced.
pub fn prune(store: &Store, all: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in crate::container::record::list(store)? {
        let (_, running) = crate::container::status_text(store, &c);
        if !running {
            crate::container::remove(store, &c, false)?;
            out.push(format!("container {}", c.name));
        }
    }
    let _g = store.gc_guard()?;
    let _l = store.lock()?;
    let used = store.images_in_use()?;
    let mut refs = store.refs()?;
    for img in store.images()? {
        let named = refs.values().any(|d| *d == img.id);
        if used.contains(&img.id) || (named && !all) {
            continue;
        }
        refs.retain(|_, d| *d != img.id);
        let p = store.image_path(&img.id);
        std::fs::remove_file(&p).at(&p)?;
        out.push(format!("image {}", img.id));
    }
    store.set_refs(&refs)?;
    out.extend(store.gc()?);
    out.extend(store.clear_tmp()?);
    Ok(out)
}
