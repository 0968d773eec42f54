//! hull's typed errors. Each variant carries the context a person needs to
//! act: which container, which file, which config field.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    #[error("container with id {0:?} already exists")]
    Exists(String),

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// config.json is not valid JSON or not a valid OCI config.
    #[error("{path}: {msg}")]
    ConfigParse { path: PathBuf, msg: String },

    /// A config field has a value hull cannot run.
    #[error("config.json: {field}: {msg}")]
    Config { field: String, msg: String },

    /// The operation is not allowed in the container's current status.
    #[error("container {id:?}: {msg}")]
    BadState { id: String, msg: String },

    #[error("container {id:?}: {hook} hook {path}: {msg}")]
    Hook {
        id: String,
        hook: &'static str,
        path: PathBuf,
        msg: String,
    },

    /// The container's init reported a failure while it was being set up.
    #[error("container {id:?}: {msg}")]
    Init { id: String, msg: String },

    /// `--systemd-cgroup`, and no D-Bus endpoint reached systemd: every
    /// socket tried, with why it failed.
    #[error(
        "--systemd-cgroup: systemd is not reachable: {}; is systemd running? \
         (use the default cgroupfs driver without it)",
        tried_list(.tried)
    )]
    SystemdUnreachable {
        tried: Vec<(PathBuf, std::io::Error)>,
    },

    #[error("{0}")]
    Usage(String),
}

/// "path: error; path: error".
fn tried_list(tried: &[(PathBuf, std::io::Error)]) -> String {
    let parts: Vec<String> = tried
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.display()))
        .collect();
    parts.join("; ")
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn sys(what: impl Into<String>, errno: crate::sys::Errno) -> Error {
        Error::Sys {
            what: what.into(),
            source: errno.io(),
        }
    }

    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Config {
            field: field.into(),
            msg: msg.into(),
        }
    }

    pub fn bad_state(id: &str, msg: impl Into<String>) -> Error {
        Error::BadState {
            id: id.to_string(),
            msg: msg.into(),
        }
    }
}

/// Attach a path to an io::Result.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
