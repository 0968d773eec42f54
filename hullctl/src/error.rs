//! hullctl's errors: each names what it was about (file, image, layer entry,
//! container, option).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {got}")]
    Digest {
        what: String,
        expected: String,
        got: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {got}")]
    Size {
        what: String,
        expected: u64,
        got: u64,
    },
    #[error("layer {layer}: entry {entry:?}: {msg}")]
    Entry {
        layer: String,
        entry: String,
        msg: String,
    },
    #[error("{0}")]
    Image(String),
    #[error("no such {kind}: {name}")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Usage(String),
    #[error("container {id}: {source}")]
    Hull { id: String, source: hull::Error },
    #[error("{}: invalid JSON: {source}", what)]
    Json {
        what: String,
        source: serde_json::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json {
            what: what.into(),
            source,
        }
    }
    pub fn hull(id: &str, source: hull::Error) -> Error {
        Error::Hull {
            id: id.to_string(),
            source,
        }
    }
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Error {
        Error::NotFound {
            kind,
            name: name.into(),
        }
    }
}

/// `.at(path)` on io results: attach the path.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
