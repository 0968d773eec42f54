//! Restoring a checkpoint: containerd's Create with `checkpoint`, done at
//! Start (as runc's shim does). The library's restore makes the calling
//! process's mount namespace private (CRIU needs the rootfs as a mount
//! point); done in the long-lived shim, the rootfs mounts of every later
//! Create would be hidden from the host. So it runs in a forked child of
//! the shim (single-threaded, so the fork is safe). CRIU restores the
//! tree as that child's children (`--restore-sibling`); when the child
//! exits they are reparented to the shim, a child subreaper, which reaps
//! the init like any other and reports its exit once.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use containerd_shim_protos::protobuf::Enum;
use containerd_shim_protos::ttrpc::proto::Code;
use hull::container::checkpoint::{restore, RestoreOptions};
use hull::sys;
use hull::{Container, CreateOptions, StateStore};

use crate::service::Failure;
use crate::stdio::Io;

/// Where the process's stdio sits in the child for CRIU to inherit
/// (`--inherit-fd fd[N]:...`): above anything the shim has open.
const STDIO_FD: RawFd = 900;

/// Restore container `id` from the CRIU images in `images` with `io` as
/// its stdio; returns the restored init's pid.
pub fn run(
    store: &StateStore,
    id: &str,
    bundle: &Path,
    images: &Path,
    io: &Io,
) -> Result<i32, Failure> {
    let fail = |what: String| Failure(Code::UNKNOWN, format!("restoring {id:?}: {what}"));
    let fds = io
        .child_fds()
        .ok_or_else(|| fail("the task's stdio is not open".into()))?;
    let o = RestoreOptions {
        create: CreateOptions {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            stdio: Some([STDIO_FD, STDIO_FD + 1, STDIO_FD + 2]),
            ..Default::default()
        },
        criu: PathBuf::from("criu"),
        image_path: images.to_path_buf(),
        work_path: Some(bundle.join("criu-work")),
        detach: true,
        ..Default::default()
    };
    let (r, w) = sys::pipe().map_err(|e| fail(format!("pipe: {e}")))?;
    let child = match sys::fork() {
        Ok(0) => {
            sys::close(r);
            in_child(store, &o, fds, w)
        }
        Ok(pid) => pid,
        Err(e) => {
            sys::close(r);
            sys::close(w);
            return Err(fail(format!("fork: {e}")));
        }
    };
    sys::close(w);
    let message = read_all(r);
    sys::close(r);
    let status = sys::waitpid(child, 0)
        .map(|(_, s)| s)
        .map_err(|e| fail(format!("waiting for the restoring child {child}: {e}")))?;
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(match message {
            Some((code, msg)) => Failure(code, msg),
            None => fail(format!(
                "the restoring child {child} failed (status {status:#x})"
            )),
        });
    }
    let container = Container::load(store, id).map_err(Failure::from)?;
    Ok(container.state.pid)
}

/// The forked child: stdio where CRIU inherits it, the library's
/// restore; its error goes to the parent through `w`.
fn in_child(store: &StateStore, o: &RestoreOptions, fds: [RawFd; 3], w: RawFd) -> ! {
    // The shim blocks SIGCHLD and SIGTERM (read from a signalfd); CRIU
    // waits for its own children.
    sys::set_sigmask_empty();
    let placed = fds
        .iter()
        .enumerate()
        .try_for_each(|(i, &fd)| sys::dup2(fd, STDIO_FD + i as RawFd));
    let r = match placed {
        Ok(()) => restore(store, o).map_err(Failure::from),
        Err(e) => Err(Failure(Code::UNKNOWN, format!("placing the stdio: {e}"))),
    };
    match r {
        Ok(_) => sys::exit_now(0),
        Err(Failure(code, msg)) => {
            let mut buf = (code.value() as u32).to_le_bytes().to_vec();
            buf.extend_from_slice(msg.as_bytes());
            let _ = sys::write_all(w, &buf);
            sys::exit_now(1)
        }
    }
}

/// The child's error: its code and message, if it wrote one.
fn read_all(fd: RawFd) -> Option<(Code, String)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let code = u32::from_le_bytes(out.get(..4)?.try_into().ok()?);
    let code = Code::from_i32(code as i32).unwrap_or(Code::UNKNOWN);
    Some((code, String::from_utf8_lossy(&out[4..]).into_owned()))
}
