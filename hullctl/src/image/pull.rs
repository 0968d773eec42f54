//! `pull REF` from an OCI distribution registry (oci-client): plain HTTP
//! for localhost registries, HTTPS elsewhere, the registry's token auth
//! (and basic auth from ~/.docker/config.json), an index resolved to the
//! host platform, every blob downloaded in parallel and verified (digest
//! and size) before it enters the store, then each layer unpacked.
//!
//! Resumable: a layer downloads into tmp/partial-<hex>, locked while in
//! use; an interrupted pull leaves it there and the next pull continues
//! with a range request from its end (and starts over if the registry
//! answers with the whole blob). The downloads run on a tokio runtime whose
//! threads are gone before `pull` returns: hull creates containers only in
//! a single-threaded process, and `run` may pull first.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::str::FromStr;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::Value;

use super::*;
use crate::error::IoContext;

const ACCEPTED: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// The name an image pulled as `name` is stored under (docker's short
/// form for Docker Hub names).
pub fn local_name(r: &Reference) -> String {
    let repo = r.repository();
    let base = match r.registry() {
        "docker.io" | "index.docker.io" => {
            repo.strip_prefix("library/").unwrap_or(repo).to_string()
        }
        reg => format!("{reg}/{repo}"),
    };
    match (r.tag(), r.digest()) {
        (Some(t), _) => format!("{base}:{t}"),
        (None, Some(d)) => format!("{base}@{d}"),
        (None, None) => format!("{base}:latest"),
    }
}

fn is_local(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(registry);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// docker's client configuration, where `login` keeps credentials:
/// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
pub fn docker_config_path() -> std::path::PathBuf {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d).join("config.json"),
        _ => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            std::path::PathBuf::from(home).join(".docker/config.json")
        }
    }
}

fn read_docker_config(path: &std::path::Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::json(path.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Basic credentials for `registry` from docker's configuration, if any
/// (the registry's token service gets them when it asks).
fn auth_for(registry: &str) -> RegistryAuth {
    let Ok(v) = read_docker_config(&docker_config_path()) else {
        return RegistryAuth::Anonymous;
    };
    let Some(b64) = v["auths"][registry]["auth"].as_str() else {
        return RegistryAuth::Anonymous;
    };
    match base64_decode(b64).and_then(|b| String::from_utf8(b).ok()) {
        Some(s) => match s.split_once(':') {
            Some((u, p)) => RegistryAuth::Basic(u.to_string(), p.to_string()),
            None => RegistryAuth::Anonymous,
        },
        None => RegistryAuth::Anonymous,
    }
}

/// `login`: store `user:password` for `registry` as docker does (auths
/// in config.json, mode 0600); other entries are kept.
pub fn login(registry: &str, user: &str, password: &str) -> Result<std::path::PathBuf> {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt;
    if registry.is_empty() || user.is_empty() || user.contains(':') {
        return Err(Error::Usage(
            "login: a registry and a user name (without ':') are required".into(),
        ));
    }
    let path = docker_config_path();
    let mut v = read_docker_config(&path)?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    if !v["auths"].is_object() {
        v["auths"] = serde_json::json!({});
    }
    v["auths"][registry] = serde_json::json!({ "auth": auth });
    write_docker_config(&path, &v)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).at(&path)?;
    Ok(path)
}

/// `logout`: forget `registry`'s credentials; false if there were none.
pub fn logout(registry: &str) -> Result<bool> {
    let path = docker_config_path();
    let mut v = read_docker_config(&path)?;
    let had = v["auths"]
        .as_object_mut()
        .is_some_and(|a| a.remove(registry).is_some());
    if had {
        write_docker_config(&path, &v)?;
    }
    Ok(had)
}

fn write_docker_config(path: &std::path::Path, v: &Value) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .at(dir)?;
    }
    let data = serde_json::to_vec_pretty(v).map_err(|e| Error::json("docker config", e))?;
    crate::store::write_replace(path, &data, true)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// A registry error with its causes (reqwest's top-level message alone
/// hides e.g. the TLS reason).
fn reg_err(what: &str, e: impl std::error::Error) -> Error {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !msg.contains(&t) {
            msg.push_str(": ");
            msg.push_str(&t);
        }
        src = c.source();
    }
    Error::Image(format!("{what}: {msg}"))
}

/// A registry's refusal, with what to do about it: log in (no
/// credentials were sent) or log in again (the saved ones were refused).
fn denied(e: Error, registry: &str, auth: &RegistryAuth) -> Error {
    let Error::Image(msg) = &e else {
        return e;
    };
    // (Not a bare "401": a digest in a URL may contain it.)
    let refused = [
        "Not authorized",
        "Unauthorized",
        "unauthorized",
        "UNAUTHORIZED",
        "DENIED",
        "Forbidden",
        "status 401",
        "status 403",
    ];
    if !refused.iter().any(|r| msg.contains(r)) {
        return e;
    }
    let hint = match auth {
        RegistryAuth::Anonymous => format!(
            "access denied: {registry} wants credentials (hullctl login -u USER {registry})"
        ),
        _ => format!(
            "access denied: {registry} refused the credentials saved for it (hullctl login -u USER {registry} again)"
        ),
    };
    Error::Image(format!("{msg}\n{hint}"))
}

/// Pull `name` into the store and tag it; returns the image id.
pub fn pull(store: &Store, name: &str, progress: bool) -> Result<(Digest, String)> {
    let r = Reference::from_str(name)
        .map_err(|e| Error::Usage(format!("invalid reference {name:?}: {e}")))?;
    let local = local_name(&r);
    let _g = store.ingest_guard()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let bars = if progress {
        indicatif::MultiProgress::new()
    } else {
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let manifest = rt.block_on(fetch(store, &r, name, &bars));
    // Wait for the runtime's threads: a caller may go on to create a
    // container (`run` of an image it had to pull), which hull does only
    // in a single-threaded process.
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    wait_single_threaded();
    let manifest = manifest?;
    let rec = register(store, &manifest, name)?;
    store.tag(&local, &rec.id)?;
    Ok((rec.id, local))
}

/// Fetch the manifest (through an index) and every blob; returns the
/// manifest bytes.
async fn fetch(
    store: &Store,
    r: &Reference,
    what: &str,
    bars: &indicatif::MultiProgress,
) -> Result<Vec<u8>> {
    let registry = r.resolve_registry().to_string();
    let protocol = if is_local(&registry) {
        ClientProtocol::HttpsExcept(vec![registry.clone()])
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let auth = auth_for(&registry);
    let (mut bytes, mut digest) = client
        .pull_manifest_raw(r, &auth, &ACCEPTED)
        .await
        .map_err(|e| denied(reg_err(what, e), &registry, &auth))?;
    verify_manifest(&bytes, &digest, r.digest(), what)?;
    let mut mref = r.clone();
    for _ in 0..4 {
        let v = parse_json(&bytes, &format!("{what} manifest"))?;
        let mt = v["mediaType"].as_str().unwrap_or("");
        if mt == OCI_INDEX || mt == DOCKER_LIST || (mt.is_empty() && v["manifests"].is_array()) {
            let m = choose_platform(&v, what)?;
            let (d, _, _) = descriptor(&m, what)?;
            mref = Reference::with_digest(
                r.registry().to_string(),
                r.repository().to_string(),
                d.to_string(),
            );
            (bytes, digest) = client
                .pull_manifest_raw(&mref, &auth, &ACCEPTED)
                .await
                .map_err(|e| reg_err(what, e))?;
            verify_manifest(&bytes, &digest, Some(d.as_str()), what)?;
            continue;
        }
        if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST && !(mt.is_empty() && v["layers"].is_array())
        {
            return Err(Error::Image(format!(
                "{what}: unsupported manifest media type {mt:?}"
            )));
        }
        let mut blobs = vec![descriptor(&v["config"], &format!("{what} config"))?];
        for (i, l) in v["layers"].as_array().into_iter().flatten().enumerate() {
            let d = descriptor(l, &format!("{what} layer {i}"))?;
            if !crate::store::unpack::known_layer_type(&d.2) {
                return Err(Error::Image(format!(
                    "{what} layer {i}: unknown layer media type {:?}",
                    d.2
                )));
            }
            blobs.push(d);
        }
        // The config first (it names the layers' diff ids), then every
        // layer at once, each unpacked (on a blocking thread) as soon as
        // it is downloaded and verified.
        let (cd, csize, _) = &blobs[0];
        download(store, &client, &mref, cd, *csize, what, bars).await?;
        let config = parse_json(&store.read_blob(cd)?, &format!("{what} config"))?;
        let diff_ids: Vec<Option<Digest>> = config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d.as_str().and_then(|d| Digest::parse(d).ok()))
            .collect();
        let jobs = blobs[1..].iter().enumerate().map(|(i, (d, size, _))| {
            let diff_id = diff_ids.get(i).cloned().flatten();
            let client = &client;
            let mref = &mref;
            async move {
                download(store, client, mref, d, *size, what, bars).await?;
                let Some(diff_id) = diff_id else {
                    return Ok(()); // register() reports it
                };
                let (st, blob, lwhat) = (
                    store.clone(),
                    store.blob_path(d),
                    format!("{d} ({what} layer {i})"),
                );
                tokio::task::spawn_blocking(move || {
                    crate::store::unpack::unpack_layer(&st, &blob, Some(&diff_id), &lwhat).map(drop)
                })
                .await
                .map_err(|e| Error::Image(format!("{what} layer {i}: unpacking: {e}")))?
            }
        });
        let results = futures_util::future::join_all(jobs).await;
        for res in results {
            res?;
        }
        return Ok(bytes.to_vec());
    }
    Err(Error::Image(format!("{what}: indexes nested too deep")))
}

/// Poll until this process is down to one thread again (the runtime's
/// threads exit asynchronously after shutdown), for at most two seconds.
fn wait_single_threaded() {
    for _ in 0..200 {
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse::<u32>().ok())
            })
            .unwrap_or(1);
        if threads <= 1 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn verify_manifest(bytes: &[u8], digest: &str, want: Option<&str>, what: &str) -> Result<()> {
    let got = Digest::of(bytes);
    for expected in [Some(digest), want].into_iter().flatten() {
        if !expected.is_empty() && got.as_str() != expected {
            return Err(Error::Digest {
                what: format!("{what} manifest"),
                expected: expected.to_string(),
                got: got.to_string(),
            });
        }
    }
    Ok(())
}

/// Download one blob (resuming a partial one), verify, move into place.
async fn download(
    store: &Store,
    client: &Client,
    r: &Reference,
    d: &Digest,
    size: u64,
    what: &str,
    bars: &indicatif::MultiProgress,
) -> Result<()> {
    if store.has_blob(d) {
        return Ok(());
    }
    let what = format!("{what}: blob {d}");
    let part = store.tmp().join(format!("partial-{}", d.hex()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&part)
        .at(&part)?;
    // One downloader per blob; a concurrent pull waits here, then finds
    // the blob in place.
    let fd = f.as_raw_fd();
    tokio::task::block_in_place(|| crate::sys::flock(fd, libc::LOCK_EX)).at(&part)?;
    if store.has_blob(d) {
        let _ = std::fs::remove_file(&part);
        return Ok(());
    }
    let have = f.metadata().at(&part)?.len();
    let have = if have > size { 0 } else { have };
    let resp = client
        .pull_blob_stream_partial(r, d.as_str(), have, None)
        .await
        .map_err(|e| reg_err(&what, e))?;
    let mut stream = match resp {
        oci_client::client::BlobResponse::Partial(s) => s.stream,
        oci_client::client::BlobResponse::Full(s) => {
            f.set_len(0).at(&part)?;
            s.stream
        }
    };
    // The digest covers what is already there, then each chunk as it is
    // written: the file is read once and written once.
    use sha2::Digest as _;
    use std::io::Seek;
    let mut hasher = sha2::Sha256::new();
    f.seek(std::io::SeekFrom::Start(0)).at(&part)?;
    let mut got = std::io::copy(&mut (&f).take(size), &mut HashInto(&mut hasher)).at(&part)?;
    f.seek(std::io::SeekFrom::Start(got)).at(&part)?;
    let bar = bars.add(indicatif::ProgressBar::new(size));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(d.short().to_string());
    bar.set_position(got);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| reg_err(&what, e))?;
        got += chunk.len() as u64;
        if got > size {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Size {
                what,
                expected: size,
                got,
            });
        }
        f.write_all(&chunk).at(&part)?;
        hasher.update(&chunk);
        bar.set_position(got);
    }
    bar.finish();
    // Verified (size, digest) before it gets its final name.
    let digest = format!("sha256:{}", crate::digest::hex(&hasher.finalize()));
    let bad = if got != size {
        Some(Error::Size {
            what: what.clone(),
            expected: size,
            got,
        })
    } else if digest != d.as_str() {
        Some(Error::Digest {
            what: what.clone(),
            expected: d.to_string(),
            got: digest,
        })
    } else {
        None
    };
    if let Some(e) = bad {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    f.sync_all().at(&part)?;
    let dst = store.blob_path(d);
    std::fs::rename(&part, &dst).at(&dst)
}

/// An io::Write that feeds a hasher.
struct HashInto<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashInto<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_credentials() {
        let r = Reference::from_str("busybox").unwrap();
        assert_eq!(local_name(&r), "busybox:latest");
        let r = Reference::from_str("127.0.0.1:5000/a/b:2").unwrap();
        assert_eq!(local_name(&r), "127.0.0.1:5000/a/b:2");
        assert!(is_local("localhost:5000") && is_local("127.0.0.1") && !is_local("example.com"));
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("**").is_none());
    }
}
