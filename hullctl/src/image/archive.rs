//! Image archives: `load` (docker save tarballs, OCI image layout
//! tarballs), `save` (an OCI layout that also carries docker's
//! manifest.json, so both `docker load` and `podman load` take it, as
//! docker 25 writes), and `import` (a rootfs tarball as a one-layer image).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::error::IoContext;
use crate::store::unpack::unpack_layer;

/// What `load` found: each image and the names it was tagged with.
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<String>,
}

/// Load a docker-save or OCI-layout tarball (optionally gzip'd).
pub fn load(store: &Store, file: &Path) -> Result<Vec<Loaded>> {
    let what = file.display().to_string();
    let _g = store.ingest_guard()?;
    let f = File::open(file).at(file)?;
    let (files, meta) = ingest(store, f, &what)?;
    let blob = |p: &str| -> Result<Digest> {
        let p = p.trim_start_matches("./");
        files.get(p).cloned().ok_or_else(|| {
            Error::Image(format!(
                "{what}: names {p:?}, which the archive does not hold"
            ))
        })
    };
    if let Some(index) = meta.get("index.json") {
        load_oci(store, index, &what)
    } else if let Some(manifest) = meta.get("manifest.json") {
        let manifest = parse_json(manifest, &format!("{what} manifest.json"))?;
        load_docker(store, &manifest, &blob, &what)
    } else {
        Err(Error::Image(format!(
            "{what}: neither an OCI layout (index.json) nor a docker archive (manifest.json)"
        )))
    }
}

/// The archive's own small files, read into memory rather than stored.
const META: [&str; 4] = ["index.json", "manifest.json", "oci-layout", "repositories"];

/// Store every regular file of the archive as a blob (path → digest), but
/// the layout's own files (path → bytes). Files under blobs/sha256/ must
/// hash to their names.
type Ingested = (BTreeMap<String, Digest>, BTreeMap<String, Vec<u8>>);

fn ingest(store: &Store, f: File, what: &str) -> Result<Ingested> {
    let mut br = std::io::BufReader::new(f);
    let gz = {
        use std::io::BufRead;
        br.fill_buf().at(what)?.starts_with(&[0x1f, 0x8b])
    };
    let r: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(br))
    } else {
        Box::new(br)
    };
    let mut ar = tar::Archive::new(r);
    let mut files = BTreeMap::new();
    let mut meta = BTreeMap::new();
    for e in ar
        .entries()
        .map_err(|e| Error::Image(format!("{what}: {e}")))?
    {
        let mut e = e.map_err(|e| Error::Image(format!("{what}: {e}")))?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let size = e
            .header()
            .size()
            .map_err(|e| Error::Image(format!("{what}: {path}: {e}")))?;
        let fwhat = format!("{what}: {path}");
        if META.contains(&path.as_str()) && size < (16 << 20) {
            let mut data = Vec::new();
            e.read_to_end(&mut data)
                .map_err(|e| Error::Image(format!("{fwhat}: {e}")))?;
            meta.insert(path, data);
            continue;
        }
        let expected = match path.strip_prefix("blobs/sha256/") {
            Some(hex) => Some(Digest::parse(&format!("sha256:{hex}"))?),
            None => None,
        };
        let (d, _) = store.put_blob(&mut e, expected.as_ref().map(|d| (d, size)), &fwhat)?;
        files.insert(path, d);
    }
    Ok((files, meta))
}

fn load_oci(store: &Store, index: &[u8], what: &str) -> Result<Vec<Loaded>> {
    let index = parse_json(index, &format!("{what} index.json"))?;
    let mut out = Vec::new();
    for m in index["manifests"].as_array().into_iter().flatten() {
        let names: Vec<String> = [CONTAINERD_NAME, REF_NAME]
            .iter()
            .filter_map(|k| m["annotations"][*k].as_str())
            .map(str::to_string)
            .take(1)
            .collect();
        let rec = resolve_manifest(store, m, what, 0)?;
        for n in &names {
            let n = if n.contains(':') || n.contains('/') {
                n.clone()
            } else {
                // A bare ref.name is only a tag.
                format!("image:{n}")
            };
            store.tag(&normalize_ref(&n), &rec.id)?;
        }
        out.push(Loaded {
            id: rec.id,
            tags: names,
        });
    }
    if out.is_empty() {
        return Err(Error::Image(format!("{what}: index.json lists no images")));
    }
    Ok(out)
}

/// Follow a descriptor (index or manifest) whose blob is in the store.
pub fn resolve_manifest(
    store: &Store,
    desc: &Value,
    what: &str,
    depth: u32,
) -> Result<ImageRecord> {
    let (digest, size, mt) = descriptor(desc, what)?;
    let data = store.read_blob(&digest)?;
    if data.len() as u64 != size {
        return Err(Error::Size {
            what: format!("{what}: manifest {digest}"),
            expected: size,
            got: data.len() as u64,
        });
    }
    match mt.as_str() {
        OCI_INDEX | DOCKER_LIST if depth < 4 => {
            let index = parse_json(&data, what)?;
            let m = choose_platform(&index, what)?;
            resolve_manifest(store, &m, what, depth + 1)
        }
        OCI_MANIFEST | DOCKER_MANIFEST => register(store, &data, what),
        mt => Err(Error::Image(format!(
            "{what}: unknown manifest media type {mt:?}"
        ))),
    }
}

fn load_docker(
    store: &Store,
    manifest: &Value,
    blob: &dyn Fn(&str) -> Result<Digest>,
    what: &str,
) -> Result<Vec<Loaded>> {
    let mut out = Vec::new();
    for m in manifest.as_array().into_iter().flatten() {
        let config = blob(m["Config"].as_str().unwrap_or_default())?;
        let config_bytes = store.read_blob(&config)?;
        let config_size = config_bytes.len() as u64;
        let cfg = parse_json(&config_bytes, &format!("{what} config"))?;
        let diff_ids = cfg["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut layers = Vec::new();
        for (i, l) in m["Layers"].as_array().into_iter().flatten().enumerate() {
            let d = blob(l.as_str().unwrap_or_default())?;
            let path = store.blob_path(&d);
            let size = std::fs::metadata(&path).at(&path)?.len();
            let mut head = [0u8; 4];
            let n = File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .at(&path)?;
            let mt = if head[..n].starts_with(&[0x1f, 0x8b]) {
                OCI_LAYER_GZIP
            } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            } else {
                OCI_LAYER
            };
            let diff_id = match diff_ids.get(i).and_then(Value::as_str) {
                Some(s) => Digest::parse(s)?,
                None => {
                    return Err(Error::Image(format!(
                        "{what}: layer {i} has no diff id in the config"
                    )))
                }
            };
            layers.push(crate::store::LayerRecord {
                digest: d,
                media_type: mt.to_string(),
                size,
                diff_id,
            });
        }
        let manifest = new_manifest(&config, config_size, &layers);
        let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
        let rec = register(store, &bytes, what)?;
        let tags: Vec<String> = m["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        for t in &tags {
            store.tag(&normalize_ref(t), &rec.id)?;
        }
        out.push(Loaded { id: rec.id, tags });
    }
    if out.is_empty() {
        return Err(Error::Image(format!(
            "{what}: manifest.json lists no images"
        )));
    }
    Ok(out)
}

/// Write `names` as an OCI layout tarball with docker's manifest.json too.
pub fn save(store: &Store, names: &[String], out: &Path) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.{}",
        out.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        crate::store::tmp_name("save")
    ));
    let r = write_layout(store, names, &tmp).and_then(|()| std::fs::rename(&tmp, out).at(out));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn write_layout(store: &Store, names: &[String], out: &Path) -> Result<()> {
    let f = File::create(out).at(out)?;
    let mut tb = tar::Builder::new(std::io::BufWriter::new(f));
    let mut index = Vec::new();
    let mut docker = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    for name in names {
        let rec = store.resolve(name)?;
        let tag = if name.starts_with("sha256:") || rec.id.hex().starts_with(name.as_str()) {
            None
        } else {
            Some(normalize_ref(name))
        };
        let mut blobs = vec![rec.id.clone(), rec.manifest.clone()];
        blobs.extend(rec.layers.iter().map(|l| l.digest.clone()));
        for d in blobs {
            if written.insert(d.clone()) {
                let p = store.blob_path(&d);
                tb.append_path_with_name(&p, format!("blobs/sha256/{}", d.hex()))
                    .at(&p)?;
            }
        }
        let msize = store.read_blob(&rec.manifest)?.len();
        let mut desc = json!({"mediaType": rec.manifest_media_type, "digest": rec.manifest.as_str(), "size": msize});
        if let Some(t) = &tag {
            let short = t.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
            desc["annotations"] = json!({CONTAINERD_NAME: t, REF_NAME: short});
        }
        index.push(desc);
        docker.push(json!({
            "Config": format!("blobs/sha256/{}", rec.id.hex()),
            "RepoTags": tag.iter().collect::<Vec<_>>(),
            "Layers": rec.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
        }));
    }
    let files = [
        ("oci-layout", json!({"imageLayoutVersion": "1.0.0"})),
        (
            "index.json",
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}),
        ),
        ("manifest.json", Value::Array(docker)),
    ];
    for (name, v) in files {
        let data = serde_json::to_vec(&v).map_err(|e| Error::json(name, e))?;
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tb.append_data(&mut h, name, &data[..]).at(out)?;
    }
    let w = tb.into_inner().at(out)?;
    let f = w.into_inner().map_err(|e| Error::io(out, e.into_error()))?;
    f.sync_all().at(out)
}

/// `import FILE REF`: a rootfs tarball (optionally gzip/zstd) as a one-layer
/// image. The layer is stored uncompressed (its digest is its diff id).
pub fn import(store: &Store, file: &Path, name: &str) -> Result<Digest> {
    check_ref(name)?;
    let what = file.display().to_string();
    let _g = store.ingest_guard()?;
    let f = File::open(file).at(file)?;
    let mut plain = crate::store::unpack::decompress(f).at(file)?;
    let (layer, size) = store.put_blob(&mut plain, None, &what)?;
    let diff_id = unpack_layer(store, &store.blob_path(&layer), Some(&layer), &what)?;
    let comment = format!("imported from {}", file.display());
    let cfg = new_config(std::slice::from_ref(&diff_id), "hullctl import", &comment);
    let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| Error::json("config", e))?;
    let cfg_digest = store.put_blob_bytes(&cfg_bytes, "config")?;
    let layers = vec![crate::store::LayerRecord {
        digest: layer,
        media_type: OCI_LAYER.to_string(),
        size,
        diff_id,
    }];
    let manifest = new_manifest(&cfg_digest, cfg_bytes.len() as u64, &layers);
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
    let rec = register(store, &bytes, &what)?;
    store.tag(&normalize_ref(name), &rec.id)?;
    Ok(rec.id)
}
