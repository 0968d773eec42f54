//! The container state store: one directory per container under the
//! runtime root (`--root`, default /run/hull), holding `state.json` and the
//! exec fifo, locked with flock while an operation changes it.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, IoContext, Result};
use crate::sys;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// Container ids: `[A-Za-z0-9_+.-]`, not `.` or `..`, at most 1024 bytes.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b))
    {
        return bad("only letters, digits and _ + . - are allowed");
    }
    Ok(())
}

/// Runtime-spec statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

/// The hooks that run after `create` returns, kept for `start` and `delete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LaterHooks {
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
}

/// What hull records about a container (state.json in its directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container's init; 0 before it exists.
    pub pid: i32,
    /// The init's start time (clock ticks after boot), to detect pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: Cgroup,
    #[serde(default)]
    pub hooks: LaterHooks,
    /// The container has its own PID namespace (its processes die with init).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// Set once `start` ran (the exec fifo is gone).
    #[serde(default)]
    pub started: bool,
}

/// The state JSON the runtime-spec defines (output of `hull state`, input
/// of hooks), with runc's extra fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// /proc/<pid>/stat: (state char, start time), or None if the pid is gone.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = crate::sys::read_text(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parens: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is starttime; `rest` starts at field 3.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl ContainerState {
    /// Whether the recorded init is still alive (same pid, same start time,
    /// not a zombie).
    pub fn init_alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((state, start)) => start == self.pid_start && state != 'Z' && state != 'X',
            None => false,
        }
    }

    pub fn status(&self) -> Status {
        if self.pid <= 0 {
            return Status::Creating;
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        // Not started: waiting in the exec fifo for `start`, or (`run`) still
        // being set up by hull before it execs. runc says created for both;
        // "running" before the process runs would let a caller signal an init
        // still in setup (the run then fails instead of reporting the signal).
        if !self.started {
            return Status::Created;
        }
        if crate::cgroups::is_frozen(&self.cgroup) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: crate::config::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: String::new(),
            annotations: self.annotations.clone(),
        }
    }
}

/// An exclusive lock on a container's directory, held until dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
}

impl Lock {
    /// The locked fd: a forked child must close its copy, or the lock stays
    /// held for as long as the child lives.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// Where hull keeps what is no container's state (compiled seccomp
/// programs, the sealed image's empty layer), so that a state root holds
/// containers only: `$HULL_CACHE_DIR`, else `hull-cache` beside the default
/// state root (`/run/hull-cache`, or `$XDG_RUNTIME_DIR/hull-cache`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HULL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let (root, _) = crate::rootless::default_root(|k| std::env::var(k).ok());
    root.with_file_name("hull-cache")
}

/// The runtime root directory and the containers in it.
#[derive(Debug, Clone)]
pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    pub fn new(root: impl Into<PathBuf>) -> StateStore {
        StateStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Make the container's directory and lock it. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<(PathBuf, Lock)> {
        validate_id(id)?;
        std::fs::create_dir_all(&self.root).at(&self.root)?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(Error::io(&dir, e)),
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
        match self.lock(id) {
            Ok(l) => Ok((dir, l)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    pub fn lock(&self, id: &str) -> Result<Lock> {
        let dir = self.dir(id);
        let f = File::open(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(id.to_string())
            } else {
                Error::io(&dir, e)
            }
        })?;
        sys::flock_exclusive(f.as_raw_fd(), false)
            .map_err(|e| Error::sys(format!("locking {}", dir.display()), e))?;
        Ok(Lock { file: f })
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(id.to_string())
            } else {
                Error::io(&path, e)
            }
        })?;
        serde_json::from_str(&text).map_err(|e| Error::ConfigParse {
            path,
            msg: format!("corrupt state: {e}"),
        })
    }

    /// Write state.json atomically (temp file + rename).
    pub fn save(&self, st: &ContainerState) -> Result<()> {
        let dir = self.dir(&st.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(st).map_err(|e| Error::Usage(e.to_string()))?;
        std::fs::write(&tmp, data).at(&tmp)?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).at(dir.join(STATE_FILE))
    }

    /// Ids of all containers with a state file, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Write a `--pid-file` atomically; a relative path is taken from the
/// current directory (as runc does).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().at(".")?.join(path)
    };
    write_atomic(&path, pid.to_string().as_bytes())
}

/// Write `contents` to `path` atomically (temp file in the same directory, rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}", sys::getpid()));
    std::fs::write(&tmp, contents).at(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_restricted() {
        for ok in ["a", "abc-1.2_x+y", "A9"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reads_own_stat() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
        assert!(proc_stat(0).is_none());
    }

    #[test]
    fn store_rejects_duplicates_and_lists() {
        let root = std::env::temp_dir().join(format!("hull-store-{}", std::process::id()));
        let store = StateStore::new(&root);
        let (_dir, _lock) = store.create("one").unwrap();
        assert!(matches!(store.create("one"), Err(Error::Exists(_))));
        assert!(store.list().unwrap().is_empty(), "no state file yet");
        assert!(matches!(store.load("two"), Err(Error::NotFound(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
