//! A shim that runs nothing, for `bench/shim.sh`: the floor of `ctr run
//! --rm IMG ID true` that containerd and ctr set with a task, whatever
//! the shim. It speaks the same task API as containerd-shim-hull-v2
//! (`start` spawns a server on a bound socket and prints its address;
//! the server answers on one thread) but Create makes no container: the
//! task's pid is the server's own, Start "runs" a process that has
//! already exited 0, Wait answers at once, Delete and Shutdown end it.
//!
//!   cargo build --release -p containerd-shim-hull --example null_shim
//!
//! containerd finds it as `containerd-shim-null-v2` on its PATH
//! (`ctr run --runtime io.containerd.null.v2`). Never a product binary.

#[allow(dead_code)]
#[path = "../src/wire.rs"]
mod wire;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use containerd_shim_protos::api::{self, Status};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::proto::{Code, Response};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a.trim_start_matches('-') == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default()
    };
    let result = match args.last().map(String::as_str) {
        Some("start") => start(&value("id")),
        Some("delete") => delete(),
        _ => value("listen-fd")
            .parse::<i32>()
            .map_err(|e| format!("-listen-fd: {e}"))
            .and_then(serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("containerd-shim-null-v2: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Bind the task socket, spawn the server on it, print the address.
fn start(id: &str) -> Result<(), String> {
    let dir = "/run/containerd/s";
    std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    let path = format!("{dir}/null-{}-{id}", std::process::id());
    let listener = UnixListener::bind(&path).map_err(|e| format!("{path}: {e}"))?;
    let fd = listener.as_raw_fd();
    hull::sys::set_cloexec(fd, false).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args(["-listen-fd", &fd.to_string(), "-socket", &path])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawning the server: {e}"))?;
    print!("unix://{path}");
    std::io::stdout().flush().map_err(|e| e.to_string())
}

/// After a dead shim: nothing to clean up; report exit 0.
fn delete() -> Result<(), String> {
    let mut res = api::DeleteResponse::new();
    res.exited_at = Some(now()).into();
    let bytes = res.write_to_bytes().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| e.to_string())
}

fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut t = Timestamp::new();
    t.seconds = d.as_secs() as i64;
    t.nanos = d.subsec_nanos() as i32;
    t
}

/// One connection at a time (containerd keeps one), until Shutdown.
fn serve(fd: i32) -> Result<(), String> {
    // SAFETY: `start` passed us this listening socket; nothing else owns it.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    let socket = std::env::args()
        .skip_while(|a| a != "-socket")
        .nth(1)
        .unwrap_or_default();
    let pid = std::process::id();
    let mut started = false;
    let mut done = false;
    while !done {
        let Ok((mut sock, _)) = listener.accept() else {
            break;
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        while !done {
            match sock.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            for f in wire::split_frames(&mut buf)? {
                let Some(req) = wire::request(&f) else {
                    continue;
                };
                let res = answer(&req.method, pid, &mut started, &mut done);
                reply(&mut sock, f.stream, &res)?;
            }
        }
    }
    let _ = std::fs::remove_file(socket);
    Ok(())
}

fn reply(sock: &mut UnixStream, stream: u32, res: &Response) -> Result<(), String> {
    wire::send_response(sock, stream, res).map_err(|e| e.to_string())
}

fn answer(method: &str, pid: u32, started: &mut bool, done: &mut bool) -> Response {
    match method {
        "Create" => {
            let mut r = api::CreateTaskResponse::new();
            r.pid = pid;
            wire::ok(&r)
        }
        "Start" => {
            *started = true;
            let mut r = api::StartResponse::new();
            r.pid = pid;
            wire::ok(&r)
        }
        "State" => {
            let mut r = api::StateResponse::new();
            r.pid = pid;
            r.status = if *started {
                Status::STOPPED
            } else {
                Status::CREATED
            }
            .into();
            r.exited_at = Some(now()).into();
            wire::ok(&r)
        }
        "Wait" => {
            let mut r = api::WaitResponse::new();
            r.exited_at = Some(now()).into();
            wire::ok(&r)
        }
        "Delete" => {
            let mut r = api::DeleteResponse::new();
            r.pid = pid;
            r.exited_at = Some(now()).into();
            wire::ok(&r)
        }
        "Connect" => {
            let mut r = api::ConnectResponse::new();
            r.shim_pid = pid;
            r.task_pid = pid;
            wire::ok(&r)
        }
        "Shutdown" => {
            *done = true;
            wire::ok(&containerd_shim_protos::api::Empty::new())
        }
        "Kill" => wire::ok(&containerd_shim_protos::api::Empty::new()),
        other => wire::error(
            Code::UNIMPLEMENTED,
            format!("{other}: not in the null shim"),
        ),
    }
}
