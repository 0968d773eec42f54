//! Parent side of SCMP_ACT_NOTIFY: the init hands its listener fd over the
//! init socket; hull connects to `linux.seccomp.listenerPath` and sends the
//! runtime-spec's containerProcessState with the fd (SCM_RIGHTS) in one
//! message, then closes its copy. The seccomp agent answers the syscalls.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The containerProcessState JSON (runtime-spec, runtime.md).
pub fn process_state(pid: i32, metadata: &str, state: Value) -> Value {
    json!({
        "ociVersion": crate::config::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
}

/// Send `fd` and the state to the agent listening on `path`.
pub fn send(path: &Path, fd: std::os::fd::RawFd, msg: &Value) -> Result<()> {
    let field = "linux.seccomp.listenerPath";
    let stream = UnixStream::connect(path)
        .map_err(|e| Error::config(field, format!("connecting to {}: {e}", path.display())))?;
    let data = serde_json::to_vec(msg).unwrap_or_default();
    crate::sys::send_with_fd(stream.as_raw_fd(), &data, Some(fd)).map_err(|e| {
        Error::config(
            field,
            format!("sending the seccomp fd to {}: {e}", path.display()),
        )
    })
}
