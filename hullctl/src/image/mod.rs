//! Images: references, platforms, manifests and configs, and turning a
//! manifest whose blobs are in the store into an image record (verifying
//! and unpacking its layers). The formats: [`archive`] (`load`, `save`,
//! `import`).

pub mod archive;
pub mod pull;

use serde_json::{json, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::unpack::{self, known_layer_type};
use crate::store::{ImageRecord, LayerRecord, Store};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// `busybox` → `busybox:latest`; names with a tag or digest stay.
pub fn normalize_ref(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Check a reference's syntax (docker's rules, loosely): lowercase name
/// components, an optional tag of word characters.
pub fn check_ref(name: &str) -> Result<()> {
    let r = normalize_ref(name);
    let (path, tag) = match r.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, t),
        _ => (r.as_str(), "latest"),
    };
    let ok_tag = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let ok_path = !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-:".contains(&b))
        });
    if ok_tag && ok_path {
        Ok(())
    } else {
        Err(Error::Usage(format!("invalid reference format: {name:?}")))
    }
}

/// The host's platform in OCI terms.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    };
    ("linux", arch)
}

pub fn parse_json(data: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(data).map_err(|e| Error::json(what, e))
}

/// A descriptor's digest, size and media type.
pub fn descriptor(d: &Value, what: &str) -> Result<(Digest, u64, String)> {
    let digest = d["digest"]
        .as_str()
        .ok_or_else(|| Error::Image(format!("{what}: descriptor without a digest")))?;
    let size = d["size"]
        .as_u64()
        .ok_or_else(|| Error::Image(format!("{what}: descriptor without a size")))?;
    let mt = d["mediaType"].as_str().unwrap_or_default().to_string();
    Ok((Digest::parse(digest)?, size, mt))
}

/// From an index, the manifest descriptor for the host platform.
pub fn choose_platform(index: &Value, what: &str) -> Result<Value> {
    let (os, arch) = host_platform();
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| Error::Image(format!("{what}: index without manifests")))?;
    let mut seen = Vec::new();
    for m in manifests {
        let p = &m["platform"];
        let (mos, march) = (
            p["os"].as_str().unwrap_or(""),
            p["architecture"].as_str().unwrap_or(""),
        );
        if p.is_null() || (mos == os && march == arch) {
            return Ok(m.clone());
        }
        seen.push(format!("{mos}/{march}"));
    }
    Err(Error::Image(format!(
        "{what}: no manifest for this platform ({os}/{arch}); the index has: {}",
        seen.join(", ")
    )))
}

/// Make an image record from a manifest whose config and layer blobs are
/// in the store (already verified): check media types and the config's
/// diff ids, unpack each layer, write the record. Tags are the caller's.
pub fn register(store: &Store, manifest_bytes: &[u8], what: &str) -> Result<ImageRecord> {
    let manifest = parse_json(manifest_bytes, what)?;
    let mt = manifest["mediaType"]
        .as_str()
        .unwrap_or(OCI_MANIFEST)
        .to_string();
    if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST {
        return Err(Error::Image(format!(
            "{what}: unsupported manifest media type {mt:?}"
        )));
    }
    let (config_digest, _, cmt) = descriptor(&manifest["config"], &format!("{what} config"))?;
    if cmt != OCI_CONFIG && cmt != DOCKER_CONFIG {
        return Err(Error::Image(format!(
            "{what}: config media type {cmt:?} is not an image config"
        )));
    }
    let config = parse_json(&store.read_blob(&config_digest)?, &format!("{what} config"))?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| Error::Image(format!("{what}: config without rootfs.diff_ids")))?;
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| Error::Image(format!("{what}: manifest without layers")))?;
    if layers.len() != diff_ids.len() {
        return Err(Error::Image(format!(
            "{what}: {} layers but {} diff ids in the config",
            layers.len(),
            diff_ids.len()
        )));
    }
    let mut recs = Vec::new();
    for (i, (l, d)) in layers.iter().zip(diff_ids).enumerate() {
        let lwhat = format!("{what} layer {i}");
        let (digest, size, lmt) = descriptor(l, &lwhat)?;
        if !known_layer_type(&lmt) {
            return Err(Error::Image(format!(
                "{lwhat}: unknown layer media type {lmt:?}"
            )));
        }
        let diff_id = Digest::parse(d.as_str().unwrap_or_default())?;
        recs.push(LayerRecord {
            digest,
            media_type: lmt,
            size,
            diff_id,
        });
    }
    for (i, l) in recs.iter().enumerate() {
        if !store.blob_path(&l.digest).is_file() {
            return Err(Error::not_found(
                "blob",
                format!("{} ({what} layer {i})", l.digest),
            ));
        }
    }
    unpack_all(store, &recs, what)?;
    let manifest_digest = store.put_blob_bytes(manifest_bytes, &format!("{what} manifest"))?;
    let rec = store.new_record(config_digest, manifest_digest, &mt, recs);
    let _l = store.lock()?;
    store.put_image(&rec)?;
    Ok(rec)
}

/// Unpack the layers, several at a time (each has its own directory and
/// decompression is the cost); the first error wins. The threads are gone
/// when this returns (hull creates containers only single-threaded).
fn unpack_all(store: &Store, layers: &[LayerRecord], what: &str) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let first_err = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.min(layers.len()) {
            s.spawn(|| loop {
                if first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                    break;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(l) = layers.get(i) else { break };
                let lwhat = format!("{} ({what} layer {i})", l.digest);
                let r = unpack::unpack_layer(
                    store,
                    &store.blob_path(&l.digest),
                    Some(&l.diff_id),
                    &lwhat,
                );
                if let Err(e) = r {
                    if let Ok(mut slot) = first_err.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            });
        }
    });
    match first_err.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// The image config of a record.
pub fn config(store: &Store, rec: &ImageRecord) -> Result<Value> {
    parse_json(
        &store.read_blob(&rec.id)?,
        &format!("image {} config", rec.id.short()),
    )
}

/// The refs pointing at `id`.
pub fn tags_of(store: &Store, id: &Digest) -> Result<Vec<String>> {
    Ok(store
        .refs()?
        .into_iter()
        .filter(|(_, d)| d == id)
        .map(|(r, _)| r)
        .collect())
}

/// A one-image config for layers made here (`import`).
pub fn new_config(diff_ids: &[Digest], history: &str, comment: &str) -> Value {
    let (os, arch) = host_platform();
    let created = hull::timefmt::now(false);
    json!({
        "architecture": arch,
        "os": os,
        "created": created,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
        "history": [{"created": created, "created_by": history, "comment": comment}],
    })
}

/// An OCI manifest for a config and layers in the store.
pub fn new_manifest(config: &Digest, config_size: u64, layers: &[LayerRecord]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.as_str(), "size": config_size},
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type, "digest": l.digest.as_str(), "size": l.size
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(normalize_ref("busybox"), "busybox:latest");
        assert_eq!(
            normalize_ref("localhost:5000/a/b"),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(normalize_ref("a/b:1"), "a/b:1");
        assert!(check_ref("app:1.0-rc_1").is_ok());
        assert!(check_ref("127.0.0.1:5000/app:1").is_ok());
        assert!(check_ref("App:1").is_err());
        assert!(check_ref("app:").is_err());
        assert!(check_ref("a b").is_err());
    }

    #[test]
    fn platform_choice() {
        let (_, arch) = host_platform();
        let idx = json!({"manifests": [
            {"digest": "sha256:1", "platform": {"os": "linux", "architecture": "s390x"}},
            {"digest": "sha256:2", "platform": {"os": "linux", "architecture": arch}},
        ]});
        assert_eq!(choose_platform(&idx, "t").unwrap()["digest"], "sha256:2");
        let idx = json!({"manifests": [{"digest": "sha256:1", "platform": {"os": "linux", "architecture": "s390x"}}]});
        let e = choose_platform(&idx, "t").unwrap_err().to_string();
        assert!(e.contains("linux/s390x"), "{e}");
    }
}
