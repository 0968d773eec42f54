//! A container's record (containers/<name>/container.json) and its files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::{write_replace, Store};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits, as docker's.
    pub id: String,
    /// Unique; also the hull container id and the directory name.
    pub name: String,
    pub image: Digest,
    #[serde(rename = "imageRef")]
    pub image_ref: String,
    pub created: String,
    pub command: Vec<String>,
    #[serde(rename = "stopSignal")]
    pub stop_signal: String,
    #[serde(rename = "autoRemove")]
    pub auto_remove: bool,
    /// How the rootfs is made (older records: kernel overlayfs).
    #[serde(default)]
    pub storage: super::storage::Storage,
}

impl ContainerRecord {
    pub fn dir(&self, store: &Store) -> PathBuf {
        store.containers_dir().join(&self.name)
    }
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// The files of a container, under containers/<name>/.
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(store: &Store, name: &str) -> Paths {
        Paths {
            dir: store.containers_dir().join(name),
        }
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("container.json")
    }
    /// The OCI bundle (config.json and the rootfs mount point).
    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("bundle/rootfs")
    }
    /// The container layer (issue 17's commit/diff/export read it).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }
    /// Written when the container starts (its mtime is the start time).
    pub fn started(&self) -> PathBuf {
        self.dir.join("started")
    }
    /// The exit code, written by whoever waited for the container (its
    /// mtime is the exit time).
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit")
    }
}

pub fn save(store: &Store, rec: &ContainerRecord) -> Result<()> {
    let data = serde_json::to_vec_pretty(rec).map_err(|e| Error::json("container record", e))?;
    write_replace(&Paths::new(store, &rec.name).record(), &data, false)
}

pub fn load(path: &Path) -> Result<ContainerRecord> {
    let data = std::fs::read(path).at(path)?;
    serde_json::from_slice(&data).map_err(|e| Error::json(path.display().to_string(), e))
}

/// Every container with a complete record.
pub fn list(store: &Store) -> Result<Vec<ContainerRecord>> {
    let dir = store.containers_dir();
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        let p = e.path().join("container.json");
        if p.is_file() {
            out.push(load(&p)?);
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(out)
}

/// Find a container by name, id, or unique id prefix.
pub fn find(store: &Store, key: &str) -> Result<ContainerRecord> {
    let p = Paths::new(store, key).record();
    if hull::state::validate_id(key).is_ok() && p.is_file() {
        return load(&p);
    }
    let all: Vec<_> = list(store)?
        .into_iter()
        .filter(|c| !key.is_empty() && c.id.starts_with(key))
        .collect();
    match all.len() {
        1 => all
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("container", key)),
        0 => Err(Error::not_found("container", key)),
        _ => Err(Error::Usage(format!(
            "container id prefix {key:?} is ambiguous"
        ))),
    }
}

/// The exit code recorded for a stopped container.
pub fn exit_code(store: &Store, name: &str) -> Option<i32> {
    std::fs::read_to_string(Paths::new(store, name).exit())
        .ok()
        .and_then(|s| s.trim().parse().ok())
}
