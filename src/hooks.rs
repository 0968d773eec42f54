//! OCI hooks: each runs with the container state JSON on stdin, its `args`
//! (args[0] is argv[0]), `env` and `timeout`.
//!
//! prestart, createRuntime and poststart/poststop run from the runtime, in
//! the runtime's namespaces; createContainer runs in the container's mount
//! namespace before pivot_root (the runtime joins it in the hook's child);
//! startContainer runs inside the container, from the init, before exec.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};
use crate::process::exec::CArray;
use crate::sys;

/// The hook kinds, by their config names.
pub const PRESTART: &str = "prestart";
pub const CREATE_RUNTIME: &str = "createRuntime";
pub const CREATE_CONTAINER: &str = "createContainer";
pub const START_CONTAINER: &str = "startContainer";
pub const POSTSTART: &str = "poststart";
pub const POSTSTOP: &str = "poststop";

/// Run every hook of a kind whose failure must not stop anything
/// (poststart, poststop): each failure is logged as a warning and the
/// remaining hooks still run, as the runtime-spec requires.
pub fn run_all_warn(id: &str, kind: &'static str, hooks: &[Hook], state_json: &[u8]) {
    for h in hooks {
        if let Err(e) = run_all(id, kind, std::slice::from_ref(h), state_json, None) {
            crate::logging::warn(&e.to_string());
        }
    }
}

/// Run `hooks` in order; the first failure stops the list and is returned.
/// With `mnt_ns_of`, each hook runs in that process's mount namespace.
pub fn run_all(
    id: &str,
    kind: &'static str,
    hooks: &[Hook],
    state_json: &[u8],
    mnt_ns_of: Option<libc::pid_t>,
) -> Result<()> {
    for h in hooks {
        run_one(h, state_json, mnt_ns_of).map_err(|msg| Error::Hook {
            id: id.to_string(),
            hook: kind,
            path: h.path().clone(),
            msg,
        })?;
    }
    Ok(())
}

fn run_one(
    h: &Hook,
    state_json: &[u8],
    mnt_ns_of: Option<libc::pid_t>,
) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    cmd.stdout(Stdio::inherit());
    cmd.stderr(Stdio::piped());
    let ns_file = match mnt_ns_of {
        Some(pid) => Some(
            std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
                .map_err(|e| format!("opening the container's mount namespace: {e}"))?,
        ),
        None => None,
    };
    let ns_fd = ns_file.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    // The hook starts with no signal blocked: a caller waiting on a
    // signalfd (`run` in the foreground, the shim) blocks SIGCHLD, SIGTERM
    // and others, which an exec'd program would inherit (a shell hook's
    // `wait` would never return, a TERM would not stop it).
    sys::pre_exec_unblock_setns(&mut cmd, ns_fd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        sys::nanosleep_ms(1);
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    if status.success() {
        return Ok(());
    }
    let stderr = stderr.trim();
    let tail = if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    };
    Err(format!("failed ({status}){tail}"))
}

/// A startContainer hook prepared for the init (which may not allocate).
#[derive(Debug)]
pub struct ChildHook {
    pub path: CString,
    pub argv: CArray,
    pub envp: CArray,
    pub timeout_ms: Option<u64>,
    pub config_path: PathBuf,
}

impl ChildHook {
    pub fn prepare(h: &Hook) -> Result<ChildHook> {
        use std::os::unix::ffi::OsStrExt;
        let path = CString::new(h.path().as_os_str().as_bytes())
            .map_err(|_| Error::config("hooks.startContainer[].path", "contains a NUL byte"))?;
        let mut args = h.args().clone().unwrap_or_default();
        if args.is_empty() {
            args.push(h.path().to_string_lossy().into_owned());
        }
        Ok(ChildHook {
            path,
            argv: CArray::new(&args)?,
            envp: CArray::new(h.env().as_deref().unwrap_or(&[]))?,
            timeout_ms: h.timeout().map(|t| t as u64 * 1000),
            config_path: h.path().clone(),
        })
    }

    /// Child side: fork, feed the state on stdin, exec, wait. Returns the
    /// errno-style failure: Ok(()) on exit status 0.
    pub fn run(&self, state: &[u8]) -> sys::SysResult<()> {
        let (r, w) = sys::pipe()?;
        let pid = sys::fork()?;
        if pid == 0 {
            sys::close(w);
            if sys::dup2(r, 0).is_err() {
                sys::exit_now(127);
            }
            let e = sys::execve(&self.path, self.argv.ptrs(), self.envp.ptrs());
            sys::exit_now(if e.0 == libc::ENOENT { 127 } else { 126 });
        }
        sys::close(r);
        let _ = sys::write_all(w, state);
        sys::close(w);
        let mut waited = 0u64;
        loop {
            let (p, status) = sys::waitpid(pid, libc::WNOHANG)?;
            if p == pid {
                return if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    Ok(())
                } else {
                    Err(sys::Errno(libc::ECHILD))
                };
            }
            if self.timeout_ms.is_some_and(|t| waited >= t) {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = sys::waitpid(pid, 0);
                return Err(sys::Errno(libc::ETIMEDOUT));
            }
            sys::nanosleep_ms(1);
            waited += 1;
        }
    }
}
