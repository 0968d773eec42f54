//! Data volumes: directories kept under the store (volumes/NAME/_data,
//! with volume.json beside it) and bind-mounted into containers, so their
//! data outlives the container layer. Named volumes (`-v NAME:/path`,
//! `volume create`) and anonymous ones (`-v /path`, the image's VOLUMEs)
//! are created on first use. Which containers use a volume is read from
//! their config.json mounts: nothing else needs to be kept in step.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::store::{remove_tree, tmp_name, Store};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub created: String,
    /// Made for one container (`-v /path`, an image VOLUME): `rm -v`
    /// removes it with the container.
    pub anonymous: bool,
}

pub fn dir(store: &Store) -> PathBuf {
    store.root().join("volumes")
}

/// Where the volume's data lives (the bind mount's source).
pub fn data_dir(store: &Store, name: &str) -> PathBuf {
    dir(store).join(name).join("_data")
}

/// docker's rule for volume names.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid volume name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-]+ expected"
        )))
    }
}

/// A volume's record, checked: a volume directory without a readable
/// record or without its data directory is reported, not guessed at.
pub fn get(store: &Store, name: &str) -> Result<VolumeRecord> {
    let d = dir(store).join(name);
    if !d.exists() {
        return Err(Error::not_found("volume", name));
    }
    let meta = d.join("volume.json");
    let data = std::fs::read(&meta)
        .map_err(|e| Error::Image(format!("volume {name}: corrupted: {}: {e}", meta.display())))?;
    let rec: VolumeRecord = serde_json::from_slice(&data)
        .map_err(|e| Error::Image(format!("volume {name}: corrupted: {}: {e}", meta.display())))?;
    let data_dir = data_dir(store, name);
    if !std::fs::symlink_metadata(&data_dir).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Image(format!(
            "volume {name}: corrupted: {} is missing or not a directory",
            data_dir.display()
        )));
    }
    Ok(rec)
}

/// Create a volume (a random name for an anonymous one). An existing
/// named volume is returned as is (as `docker volume create` does).
/// Returns the record and whether it was made now.
pub fn create(store: &Store, name: Option<&str>) -> Result<(VolumeRecord, bool)> {
    let (name, anonymous) = match name {
        Some(n) => {
            check_name(n)?;
            (n.to_string(), false)
        }
        None => (crate::container::random_hex(64)?, true),
    };
    std::fs::create_dir_all(dir(store)).at(dir(store))?;
    let d = dir(store).join(&name);
    if d.exists() {
        return Ok((get(store, &name)?, false));
    }
    let rec = VolumeRecord {
        name: name.clone(),
        created: hull::timefmt::now(false),
        anonymous,
    };
    // Made in tmp/ and renamed into place: a volume is there whole or not
    // at all, without the store lock (container creation holds it).
    let tmp = store.tmp().join(tmp_name("volume"));
    let made = (|| {
        let data = tmp.join("_data");
        std::fs::create_dir_all(&data).at(&data)?;
        let bytes = serde_json::to_vec_pretty(&rec).map_err(|e| Error::json("volume", e))?;
        crate::store::write_atomic(&tmp.join("volume.json"), &bytes)?;
        std::fs::rename(&tmp, &d).at(&d)
    })();
    if let Err(e) = made {
        let _ = remove_tree(&tmp);
        // Another process made it meanwhile.
        if d.exists() {
            return Ok((get(store, &name)?, false));
        }
        return Err(e);
    }
    Ok((rec, true))
}

pub fn list(store: &Store) -> Result<Vec<VolumeRecord>> {
    let d = dir(store);
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&d, e)),
    };
    for e in rd {
        let e = e.at(&d)?;
        // A corrupted volume is reported and left alone (never pruned).
        match get(store, &e.file_name().to_string_lossy()) {
            Ok(v) => out.push(v),
            Err(e) => eprintln!("hullctl: {e} (skipped)"),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn inspect(store: &Store, rec: &VolumeRecord) -> Value {
    json!({
        "CreatedAt": rec.created,
        "Driver": "local",
        "Labels": {},
        "Mountpoint": data_dir(store, &rec.name),
        "Name": rec.name,
        "Options": {},
        "Scope": "local",
        "Anonymous": rec.anonymous,
    })
}

/// The volumes a container's config.json mounts, with their mounts.
pub fn mounts_of(store: &Store, container: &str) -> Vec<(String, Value)> {
    let p = crate::container::record::Paths::new(store, container)
        .bundle()
        .join("config.json");
    let Ok(cfg) = std::fs::read(&p)
        .ok()
        .and_then(|d| serde_json::from_slice::<Value>(&d).ok())
        .ok_or(())
    else {
        return Vec::new();
    };
    let base = dir(store);
    cfg["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let src = Path::new(m["source"].as_str()?);
            let name = src.strip_prefix(&base).ok()?.parent()?;
            Some((name.to_string_lossy().to_string(), m.clone()))
        })
        .collect()
}

/// The containers using `name` (other than `except`).
pub fn users(store: &Store, name: &str, except: Option<&str>) -> Result<Vec<String>> {
    Ok(crate::container::record::list(store)?
        .into_iter()
        .filter(|c| Some(c.name.as_str()) != except)
        .filter(|c| mounts_of(store, &c.name).iter().any(|(v, _)| v == name))
        .map(|c| c.name)
        .collect())
}

/// `volume rm`: refused while a container uses it.
pub fn remove(store: &Store, name: &str, force: bool) -> Result<()> {
    get(store, name).or_else(|e| match e {
        Error::Image(_) if force => Ok(VolumeRecord {
            name: name.to_string(),
            created: String::new(),
            anonymous: false,
        }),
        e => Err(e),
    })?;
    let users = users(store, name, None)?;
    if !users.is_empty() {
        return Err(Error::Usage(format!(
            "volume {name} is in use by container(s) {}: remove them first",
            users.join(", ")
        )));
    }
    // Out of sight at once (renamed into tmp/), then removed.
    let d = dir(store).join(name);
    let tmp = store.tmp().join(tmp_name("volume-rm"));
    std::fs::rename(&d, &tmp).at(&d)?;
    remove_tree(&tmp)
}

/// `volume prune`: unused anonymous volumes (all unused ones with `all`).
pub fn prune(store: &Store, all: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in list(store)? {
        if (v.anonymous || all) && users(store, &v.name, None)?.is_empty() {
            remove(store, &v.name, false)?;
            out.push(v.name);
        }
    }
    Ok(out)
}

/// `rm -v`: the container's anonymous volumes no other container uses
/// (call before the container is removed: its config names them).
pub fn anonymous_of(store: &Store, container: &str) -> Vec<String> {
    mounts_of(store, container)
        .into_iter()
        .filter(|(v, _)| get(store, v).is_ok_and(|r| r.anonymous))
        .map(|(v, _)| v)
        .collect()
}
