//! The `start` and `delete` subcommands containerd runs, and what Create
//! records in the bundle for `delete` (the state root and cgroup driver).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Flags;

/// Where containers' state lives unless the runtime options say `Root`
/// (one directory per containerd namespace, like runc's shim).
pub const DEFAULT_ROOT: &str = "/run/containerd/hull";
/// Under the bundle: the state root and cgroup driver Create used.
const SAVED: &str = "hull-shim.json";
/// The socket directory containerd's shims use.
const SOCKET_DIR: &str = "/run/containerd/s";

/// The containers of one pod share a shim (as with runc's): the group is
/// the sandbox id the CRI plugin annotates, else the container's own id.
pub fn group_of(bundle: &Path, id: &str) -> String {
    let text = std::fs::read_to_string(bundle.join("config.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let a = &v["annotations"];
    for (kind, sandbox) in [
        (
            "io.kubernetes.cri.container-type",
            "io.kubernetes.cri.sandbox-id",
        ),
        (
            "io.kubernetes.cri-o.ContainerType",
            "io.kubernetes.cri-o.SandboxID",
        ),
    ] {
        if a[kind].as_str() == Some("container") {
            if let Some(s) = a[sandbox].as_str() {
                return s.to_string();
            }
        }
    }
    id.to_string()
}

/// The socket path for a group: a hash of containerd's address, the
/// namespace and the group, as containerd's own shims name it.
fn socket_path(flags: &Flags, group: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{}/{}/{}", flags.address, flags.namespace, group));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Path::new(SOCKET_DIR).join(hex)
}

/// `start`: reuse the group's running shim, or bind the socket and spawn
/// one serving it; print the address (containerd reads it from stdout)
/// and keep it in the bundle's `address` file (containerd reads that on
/// restart). As containerd's own shims do, `start` does not wait for the
/// server: containerd's connection waits in the socket's backlog until
/// the server (re-executing itself from a sealed image first) accepts it.
pub fn start(flags: &Flags) -> Result<(), String> {
    let bundle = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let group = group_of(&bundle, &flags.id);
    let path = socket_path(flags, &group);
    let address = format!("unix://{}", path.display());
    if let Some(listener) = crate::server::listen(&path.to_string_lossy())? {
        spawn_server(flags, &address, &listener)?;
    }
    std::fs::write(bundle.join("address"), &address)
        .map_err(|e| format!("{}: {e}", bundle.join("address").display()))?;
    let mut out = std::io::stdout();
    out.write_all(address.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the address: {e}"))
}

/// Spawn the serving shim on `listener` (its own process group, so a
/// signal to containerd's group does not reach it).
fn spawn_server(flags: &Flags, address: &str, listener: &UnixListener) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("/proc/self/exe: {e}"))?;
    let fd = listener.as_raw_fd();
    hull::sys::set_cloexec(fd, false).map_err(|e| format!("the task socket: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["-namespace", &flags.namespace, "-id", &flags.id])
        .args(["-address", &flags.address, "-socket", address])
        .args(["-publish-binary", &flags.publish_binary])
        .args(["-listen-fd", &fd.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Not containerd's pipe: it reads start's output to EOF. The shim
        // logs to the bundle's `log` FIFO instead.
        .stderr(Stdio::null())
        .process_group(0);
    if flags.debug {
        cmd.arg("-debug");
    }
    cmd.spawn()
        .map(drop)
        .map_err(|e| format!("spawning the shim: {e}"))
}

/// What Create used, for `delete` after a crash.
#[derive(Debug, Clone)]
pub struct Saved {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl Saved {
    pub fn write(&self, bundle: &Path) -> Result<(), String> {
        let v = json!({"root": self.root, "systemd_cgroup": self.systemd_cgroup});
        let path = bundle.join(SAVED);
        hull::state::write_atomic(&path, v.to_string().as_bytes()).map_err(|e| e.to_string())
    }

    pub fn read(bundle: &Path, namespace: &str) -> Saved {
        let text = std::fs::read_to_string(bundle.join(SAVED)).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Saved {
            root: v["root"]
                .as_str()
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(DEFAULT_ROOT).join(namespace)),
            systemd_cgroup: v["systemd_cgroup"].as_bool().unwrap_or(false),
        }
    }

    pub fn remove(bundle: &Path) {
        let _ = std::fs::remove_file(bundle.join(SAVED));
    }
}

/// `delete`: the shim is gone; remove the container (killing what is
/// left), its cgroup and the rootfs mounts; report it killed.
pub fn delete(flags: &Flags) -> Result<(), String> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| format!("current directory: {e}"))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let saved = Saved::read(&bundle, &flags.namespace);
    let store = hull::StateStore::new(&saved.root);
    let pid = hull::Container::load(&store, &flags.id)
        .map(|c| c.state.pid)
        .unwrap_or(0);
    if let Err(e) = hull::container::delete::delete_by_id(&store, &flags.id, true) {
        eprintln!("containerd-shim-hull-v2: delete {}: {e}", flags.id);
    }
    crate::mounts::unmount_rootfs(&bundle.join("rootfs"));
    Saved::remove(&bundle);
    let res = DeleteResponse {
        pid: pid.max(0) as u32,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(crate::events::now()).into(),
        ..Default::default()
    };
    let bytes = res.write_to_bytes().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| format!("writing the reply: {e}"))
}
