//! The Task service: containerd's task API on the hull library. One
//! `Service` holds every container of the shim (a pod's share one).

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use containerd_shim_protos::api::{self, ProcessInfo, Status as TaskStatus};
use containerd_shim_protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO,
    TaskOOM, TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::{
    CheckpointOptions as CriuOptions, Options as RuncOptions, ProcessDetails,
};
use containerd_shim_protos::ttrpc::proto::{Code, Response};
use hull::container::checkpoint::CheckpointOptions;
use hull::container::create::{create_from, Input};
use hull::container::exec::{exec_spawn, ExecOptions};
use hull::container::update::UpdateOptions;
use hull::{Container, CreateOptions, StateStore, Status};

use crate::bootstrap::{Saved, DEFAULT_ROOT};
use crate::events::{now, Publisher};
use crate::stdio::{Io, Owner};
use crate::{mounts, restore, wire};

/// A failed request: the ttrpc code containerd maps to its error kinds,
/// and hull's message.
pub struct Failure(pub Code, pub String);

type Answer<T> = Result<T, Failure>;

impl From<hull::Error> for Failure {
    fn from(e: hull::Error) -> Failure {
        let code = match &e {
            hull::Error::NotFound(_) => Code::NOT_FOUND,
            hull::Error::Exists(_) => Code::ALREADY_EXISTS,
            hull::Error::BadState { .. } => Code::FAILED_PRECONDITION,
            hull::Error::Config { .. }
            | hull::Error::ConfigParse { .. }
            | hull::Error::InvalidId { .. }
            | hull::Error::Usage(_) => Code::INVALID_ARGUMENT,
            _ => Code::UNKNOWN,
        };
        Failure(code, e.to_string())
    }
}

fn not_found(what: impl std::fmt::Display) -> Failure {
    Failure(Code::NOT_FOUND, format!("{what}: not found"))
}

/// A process of a container: its init or an exec.
struct Proc {
    pid: i32,
    /// Exit status (128+signal if killed) and time, once reaped.
    exit: Option<(u32, Timestamp)>,
    io: Io,
    stdin: String,
    stdout: String,
    stderr: String,
    terminal: bool,
    /// An exec's process (OCI JSON), until it starts.
    spec: Vec<u8>,
}

impl Proc {
    fn status(&self) -> TaskStatus {
        match (self.exit.is_some(), self.pid) {
            (true, _) => TaskStatus::STOPPED,
            (false, 0) => TaskStatus::CREATED,
            _ => TaskStatus::RUNNING,
        }
    }
}

struct Ctr {
    store: StateStore,
    bundle: PathBuf,
    rootfs_mounted: bool,
    init: Proc,
    execs: BTreeMap<String, Proc>,
    /// The container's cgroup (as created; read for OOM kills without
    /// loading the state each time) and its oom_kill count last seen.
    cgroup: hull::cgroups::Cgroup,
    ooms: u64,
    /// The checkpoint (CRIU images) Start restores, until it has.
    restore: Option<PathBuf>,
}

impl Ctr {
    fn container(&self, id: &str) -> Answer<Container> {
        Ok(Container::load(&self.store, id)?)
    }

    fn proc_mut(&mut self, exec_id: &str) -> Answer<&mut Proc> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| not_found(format!("exec {exec_id:?}")))
    }
}

/// A Wait not answered yet: the connection and stream to answer on.
pub struct Waiter {
    pub conn: u64,
    pub stream: u32,
    id: String,
    exec_id: String,
}

pub struct Service {
    namespace: String,
    pub events: Publisher,
    containers: BTreeMap<String, Ctr>,
    waiters: Vec<Waiter>,
    /// Shutdown was asked for and no container is left.
    pub done: bool,
}

/// Decode `payload` as `Req`, run `f`, encode its answer.
fn call<Req: Message, Res: Message>(
    payload: &[u8],
    f: impl FnOnce(Req) -> Answer<Res>,
) -> Response {
    let req = match Req::parse_from_bytes(payload) {
        Ok(r) => r,
        Err(e) => return wire::error(Code::INVALID_ARGUMENT, format!("bad request: {e}")),
    };
    match f(req) {
        Ok(res) => wire::ok(&res),
        Err(Failure(code, msg)) => wire::error(code, msg),
    }
}

fn exit_code(status: i32) -> u32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status) as u32
    } else {
        libc::WEXITSTATUS(status) as u32
    }
}

/// Protobuf type names of what the shim puts in an Any (spelled out, see
/// `events::Event`; checked against the descriptors in the tests).
const PROCESS_DETAILS: &str = "containerd.runc.v1.ProcessDetails";
const METRICS_V1: &str = "io.containerd.cgroups.v1.Metrics";
const METRICS_V2: &str = "io.containerd.cgroups.v2.Metrics";

fn to_any<M: Message>(type_url: &str, m: &M) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: m.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    }
}

impl Service {
    pub fn new(namespace: String, events: Publisher) -> Service {
        Service {
            namespace,
            events,
            containers: BTreeMap::new(),
            waiters: Vec::new(),
            done: false,
        }
    }

    /// Answer a request; None: parked (a Wait for a running process).
    pub fn handle(
        &mut self,
        method: &str,
        payload: &[u8],
        conn: u64,
        stream: u32,
    ) -> Option<Response> {
        Some(match method {
            "Create" => call(payload, |r| self.create(r)),
            "Start" => call(payload, |r| self.start(r)),
            "Delete" => call(payload, |r| self.delete(r)),
            "State" => call(payload, |r| self.state(r)),
            "Pids" => call(payload, |r| self.pids(r)),
            "Pause" => call(payload, |r| self.pause(r, true)),
            "Resume" => call(payload, |r: api::ResumeRequest| {
                let mut p = api::PauseRequest::new();
                p.id = r.id;
                self.pause(p, false)
            }),
            "Kill" => call(payload, |r| self.kill(r)),
            "Exec" => call(payload, |r| self.exec(r)),
            "ResizePty" => call(payload, |r| self.resize_pty(r)),
            "CloseIO" => call(payload, |r| self.close_io(r)),
            "Update" => call(payload, |r| self.update(r)),
            "Stats" => call(payload, |r| self.stats(r)),
            "Connect" => call(payload, |r| self.connect(r)),
            "Shutdown" => call(payload, |r| self.shutdown(r)),
            "Wait" => {
                let req = match api::WaitRequest::parse_from_bytes(payload) {
                    Ok(r) => r,
                    Err(e) => return Some(wire::error(Code::INVALID_ARGUMENT, e.to_string())),
                };
                match self.wait_answer(&req.id, &req.exec_id) {
                    Ok(Some(res)) => wire::ok(&res),
                    Ok(None) => {
                        self.waiters.push(Waiter {
                            conn,
                            stream,
                            id: req.id,
                            exec_id: req.exec_id,
                        });
                        return None;
                    }
                    Err(Failure(code, msg)) => wire::error(code, msg),
                }
            }
            "Checkpoint" => call(payload, |r| self.checkpoint(r)),
            other => wire::error(Code::UNIMPLEMENTED, format!("{other}: unknown method")),
        })
    }

    fn ctr(&mut self, id: &str) -> Answer<&mut Ctr> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| not_found(format!("container {id:?}")))
    }

    fn create(&mut self, req: api::CreateTaskRequest) -> Answer<api::CreateTaskResponse> {
        if self.containers.contains_key(&req.id) {
            return Err(Failure(
                Code::ALREADY_EXISTS,
                format!("container {:?} already exists", req.id),
            ));
        }
        let opts = match req.options.as_ref() {
            Some(any) => RuncOptions::parse_from_bytes(&any.value)
                .map_err(|e| Failure(Code::INVALID_ARGUMENT, format!("runtime options: {e}")))?,
            None => RuncOptions::new(),
        };
        let bundle = PathBuf::from(&req.bundle);
        let root = match opts.root.as_str() {
            "" => Path::new(DEFAULT_ROOT).join(&self.namespace),
            r => Path::new(r).join(&self.namespace),
        };
        let saved = Saved {
            root: root.clone(),
            systemd_cgroup: opts.systemd_cgroup,
        };
        saved
            .write(&bundle)
            .map_err(|e| Failure(Code::UNKNOWN, e))?;
        let rootfs = bundle.join("rootfs");
        let mounted = match mounts::mount_rootfs(&req.rootfs, &rootfs) {
            Ok(m) => m,
            Err(e) => {
                Saved::remove(&bundle);
                return Err(Failure(Code::UNKNOWN, e));
            }
        };
        // With a checkpoint, Start restores it (as runc's shim does):
        // until then the task is created, with its stdio open.
        let made = if req.checkpoint.is_empty() {
            self.create_container(&req, &opts, &root)
        } else {
            self.prepare_restore(&req, &root)
        };
        let (pid, store, io) = match made {
            Ok(m) => m,
            Err(e) => {
                if mounted {
                    mounts::unmount_rootfs(&rootfs);
                }
                Saved::remove(&bundle);
                return Err(e);
            }
        };
        let cgroup = Container::load(&store, &req.id)
            .map(|c| c.state.cgroup)
            .unwrap_or_default();
        let ooms = cgroup.oom_kills().unwrap_or(0);
        self.containers.insert(
            req.id.clone(),
            Ctr {
                store,
                bundle,
                rootfs_mounted: mounted,
                init: Proc {
                    pid,
                    exit: None,
                    io,
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    spec: Vec::new(),
                },
                execs: BTreeMap::new(),
                cgroup,
                ooms,
                restore: (!req.checkpoint.is_empty()).then(|| PathBuf::from(&req.checkpoint)),
            },
        );
        self.events.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    /// The library's create, with the process's stdio and the runc
    /// options that apply.
    fn create_container(
        &self,
        req: &api::CreateTaskRequest,
        opts: &RuncOptions,
        root: &Path,
    ) -> Answer<(i32, StateStore, Io)> {
        let owner = Owner {
            id: &req.id,
            namespace: &self.namespace,
        };
        let mut io = Io::open(&req.stdin, &req.stdout, &req.stderr, req.terminal, &owner)
            .map_err(|e| Failure(Code::UNKNOWN, e))?;
        std::fs::create_dir_all(root)
            .map_err(|e| Failure(Code::UNKNOWN, format!("{}: {e}", root.display())))?;
        let store = StateStore::new(root);
        let copts = CreateOptions {
            id: req.id.clone(),
            bundle: PathBuf::from(&req.bundle),
            no_pivot: opts.no_pivot_root,
            no_new_keyring: opts.no_new_keyring,
            keep_pty: req.terminal,
            systemd_cgroup: opts.systemd_cgroup,
            stdio: io.child_fds(),
            ..Default::default()
        };
        let input = Input::load(&copts)?;
        // CVE-2019-5736: the shim runs from a sealed image (it re-executed
        // itself from one at start), or refuses what needs one.
        if let Some(why) = hull::exeseal::reason(&input.spec, false) {
            if !hull::exeseal::running_sealed() {
                return Err(Failure(
                    Code::FAILED_PRECONDITION,
                    format!("{why}: the shim does not run from a sealed image"),
                ));
            }
        }
        let created = create_from(&store, &copts, input)?;
        io.handed_over();
        if let Some(pty) = created.pty {
            io.attach_pty(pty);
        }
        Ok((created.container.state.pid, store, io))
    }

    /// A task created from a checkpoint: its stdio, no container yet.
    fn prepare_restore(
        &self,
        req: &api::CreateTaskRequest,
        root: &Path,
    ) -> Answer<(i32, StateStore, Io)> {
        if req.terminal {
            return Err(Failure(
                Code::INVALID_ARGUMENT,
                "restoring a checkpoint with a terminal is not supported".into(),
            ));
        }
        let owner = Owner {
            id: &req.id,
            namespace: &self.namespace,
        };
        let io = Io::open(&req.stdin, &req.stdout, &req.stderr, false, &owner)
            .map_err(|e| Failure(Code::UNKNOWN, e))?;
        std::fs::create_dir_all(root)
            .map_err(|e| Failure(Code::UNKNOWN, format!("{}: {e}", root.display())))?;
        Ok((0, StateStore::new(root), io))
    }

    fn start(&mut self, req: api::StartRequest) -> Answer<api::StartResponse> {
        let c = self.ctr(&req.id)?;
        if req.exec_id.is_empty() {
            let pid = match c.restore.clone() {
                Some(images) => {
                    let pid = restore::run(&c.store, &req.id, &c.bundle, &images, &c.init.io)?;
                    let container = c.container(&req.id)?;
                    c.cgroup = container.state.cgroup.clone();
                    c.ooms = c.cgroup.oom_kills().unwrap_or(0);
                    c.init.io.handed_over();
                    c.init.pid = pid;
                    c.restore = None;
                    pid
                }
                None => {
                    let mut container = c.container(&req.id)?;
                    container.start()?;
                    container.state.pid
                }
            };
            self.events.publish(TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            });
            return Ok(api::StartResponse {
                pid: pid as u32,
                ..Default::default()
            });
        }
        let pid = start_exec(
            self.containers.get_mut(&req.id),
            &self.namespace,
            &req.id,
            &req.exec_id,
        )?;
        self.events.publish(TaskExecStarted {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn exec(&mut self, req: api::ExecProcessRequest) -> Answer<api::Empty> {
        let c = self.ctr(&req.id)?;
        if c.init.exit.is_some() {
            return Err(Failure(
                Code::FAILED_PRECONDITION,
                format!("container {:?}: cannot exec in a stopped container", req.id),
            ));
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(Failure(
                Code::ALREADY_EXISTS,
                format!("exec {:?} already exists", req.exec_id),
            ));
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        c.execs.insert(
            req.exec_id.clone(),
            Proc {
                pid: 0,
                exit: None,
                io: Io::default(),
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                spec,
            },
        );
        self.events.publish(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn delete(&mut self, req: api::DeleteRequest) -> Answer<api::DeleteResponse> {
        let c = self.ctr(&req.id)?;
        if !req.exec_id.is_empty() {
            let p = c.proc_mut(&req.exec_id)?;
            if p.exit.is_none() && p.pid != 0 {
                return Err(Failure(
                    Code::FAILED_PRECONDITION,
                    format!("exec {:?} is still running", req.exec_id),
                ));
            }
            let p = c.execs.remove(&req.exec_id);
            let (pid, (status, at)) = p
                .map(|p| (p.pid, p.exit.unwrap_or_default()))
                .unwrap_or_default();
            return Ok(delete_response(pid, status, at));
        }
        // The library kills what is still running (a created container,
        // or a forced delete) and removes the cgroup and state.
        let pid = c.init.pid;
        match Container::load(&c.store, &req.id) {
            Ok(container) => container.delete(true)?,
            Err(hull::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(mut c) = self.containers.remove(&req.id) else {
            return Err(not_found(format!("container {:?}", req.id)));
        };
        let (status, at) = c
            .init
            .exit
            .clone()
            .unwrap_or((128 + libc::SIGKILL as u32, now()));
        c.init.io.finish();
        for p in c.execs.values_mut() {
            p.io.finish();
        }
        if c.rootfs_mounted {
            mounts::unmount_rootfs_in_background(&c.bundle.join("rootfs"));
        }
        Saved::remove(&c.bundle);
        self.events.publish(TaskDelete {
            container_id: req.id.clone(),
            pid: pid as u32,
            exit_status: status,
            exited_at: Some(at.clone()).into(),
            id: req.id.clone(),
            ..Default::default()
        });
        Ok(delete_response(pid, status, at))
    }

    fn state(&mut self, req: api::StateRequest) -> Answer<api::StateResponse> {
        let c = self.ctr(&req.id)?;
        let bundle = c.bundle.display().to_string();
        let live = if c.restore.is_some() {
            Some(Status::Created)
        } else if req.exec_id.is_empty() && c.init.exit.is_none() {
            Some(c.container(&req.id)?.status())
        } else {
            None
        };
        let p = c.proc_mut(&req.exec_id)?;
        let status = match live {
            Some(Status::Creating | Status::Created) => TaskStatus::CREATED,
            Some(Status::Running) => TaskStatus::RUNNING,
            Some(Status::Paused) => TaskStatus::PAUSED,
            Some(Status::Stopped) => TaskStatus::STOPPED,
            None => p.status(),
        };
        let (exit_status, exited_at) = match &p.exit {
            Some((s, t)) => (*s, Some(t.clone())),
            None => (0, None),
        };
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle,
            pid: p.pid.max(0) as u32,
            status: status.into(),
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.terminal,
            exit_status,
            exited_at: exited_at.into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn pids(&mut self, req: api::PidsRequest) -> Answer<api::PidsResponse> {
        let c = self.ctr(&req.id)?;
        let container = c.container(&req.id)?;
        let execs: BTreeMap<i32, &String> = c.execs.iter().map(|(k, p)| (p.pid, k)).collect();
        let processes = container
            .state
            .cgroup
            .procs()
            .into_iter()
            .map(|pid| ProcessInfo {
                pid: pid as u32,
                info: execs
                    .get(&pid)
                    .map(|e| {
                        to_any(
                            PROCESS_DETAILS,
                            &ProcessDetails {
                                exec_id: e.to_string(),
                                ..Default::default()
                            },
                        )
                    })
                    .into(),
                ..Default::default()
            })
            .collect();
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&mut self, req: api::PauseRequest, pause: bool) -> Answer<api::Empty> {
        let container = self.ctr(&req.id)?.container(&req.id)?;
        if pause {
            container.pause()?;
            self.events.publish(TaskPaused {
                container_id: req.id.clone(),
                ..Default::default()
            });
        } else {
            container.resume()?;
            self.events.publish(TaskResumed {
                container_id: req.id.clone(),
                ..Default::default()
            });
        }
        Ok(api::Empty::new())
    }

    fn kill(&mut self, req: api::KillRequest) -> Answer<api::Empty> {
        let c = self.ctr(&req.id)?;
        let sig = req.signal as i32;
        if req.exec_id.is_empty() {
            if c.init.exit.is_some() && !req.all {
                return Err(not_found("process already finished"));
            }
            let container = c.container(&req.id)?;
            return match container.kill(sig, req.all) {
                Ok(()) => Ok(api::Empty::new()),
                Err(hull::Error::BadState { .. }) => Err(not_found("process already finished")),
                Err(e) => Err(e.into()),
            };
        }
        let p = c.proc_mut(&req.exec_id)?;
        if p.exit.is_some() || p.pid == 0 {
            return Err(not_found("process already finished"));
        }
        hull::sys::kill(p.pid, sig)
            .map_err(|e| Failure(Code::UNKNOWN, format!("signalling {}: {e}", p.pid)))?;
        Ok(api::Empty::new())
    }

    /// CRIU dump through the library into `req.path` (containerd packs
    /// it); `exit` stops the container, else it keeps running.
    fn checkpoint(&mut self, req: api::CheckpointTaskRequest) -> Answer<api::Empty> {
        let o = match req.options.as_ref() {
            Some(any) => CriuOptions::parse_from_bytes(&any.value)
                .map_err(|e| Failure(Code::INVALID_ARGUMENT, format!("checkpoint options: {e}")))?,
            None => CriuOptions::new(),
        };
        let container = self.ctr(&req.id)?.container(&req.id)?;
        let opt_path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        container.checkpoint(&CheckpointOptions {
            criu: PathBuf::from("criu"),
            image_path: opt_path(&o.image_path).unwrap_or_else(|| PathBuf::from(&req.path)),
            work_path: opt_path(&o.work_path),
            parent_path: None,
            leave_running: !o.exit,
            tcp_established: o.open_tcp,
            ext_unix_sk: o.external_unix_sockets,
            shell_job: o.terminal,
            file_locks: o.file_locks,
            pre_dump: false,
            manage_cgroups_mode: opt_path(&o.cgroups_mode).map(|p| p.display().to_string()),
        })?;
        self.events.publish(TaskCheckpointed {
            container_id: req.id.clone(),
            checkpoint: req.path.clone(),
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resize_pty(&mut self, req: api::ResizePtyRequest) -> Answer<api::Empty> {
        let p = self.ctr(&req.id)?.proc_mut(&req.exec_id)?;
        if p.exit.is_some() {
            // A late resize of a process that is gone (ctr resizes after
            // start; a short command may have exited already).
            return Ok(api::Empty::new());
        }
        let Some(pty) = p.io.pty() else {
            return Err(Failure(
                Code::FAILED_PRECONDITION,
                "the process has no terminal".into(),
            ));
        };
        hull::sys::set_winsize(pty, req.height as u16, req.width as u16)
            .map_err(|e| Failure(Code::UNKNOWN, format!("resizing the terminal: {e}")))?;
        Ok(api::Empty::new())
    }

    fn close_io(&mut self, req: api::CloseIORequest) -> Answer<api::Empty> {
        let p = self.ctr(&req.id)?.proc_mut(&req.exec_id)?;
        if req.stdin {
            p.io.close_stdin();
        }
        Ok(api::Empty::new())
    }

    fn update(&mut self, req: api::UpdateTaskRequest) -> Answer<api::Empty> {
        let c = self.ctr(&req.id)?;
        let mut container = c.container(&req.id)?;
        let json = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        // The library reads `-r FILE` (LinuxResources JSON, as containerd
        // sends it); the file lives next to the container's state.
        let file = c.store.dir(&req.id).join("update.json");
        std::fs::write(&file, json)
            .map_err(|e| Failure(Code::UNKNOWN, format!("{}: {e}", file.display())))?;
        let r = container.update(&UpdateOptions {
            resources_file: Some(file.clone()),
            ..Default::default()
        });
        let _ = std::fs::remove_file(&file);
        r?;
        Ok(api::Empty::new())
    }

    fn stats(&mut self, req: api::StatsRequest) -> Answer<api::StatsResponse> {
        let container = self.ctr(&req.id)?.container(&req.id)?;
        let cg = &container.state.cgroup;
        let stats = cg.stats();
        let any = if cg.v2 {
            to_any(METRICS_V2, &crate::server::metrics_v2(&stats))
        } else {
            to_any(
                METRICS_V1,
                &crate::server::metrics_v1(&stats, cg.oom_kills()),
            )
        };
        Ok(api::StatsResponse {
            stats: Some(any).into(),
            ..Default::default()
        })
    }

    fn connect(&mut self, req: api::ConnectRequest) -> Answer<api::ConnectResponse> {
        let task_pid = self
            .containers
            .get(&req.id)
            .map(|c| c.init.pid)
            .unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid.max(0) as u32,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&mut self, _req: api::ShutdownRequest) -> Answer<api::Empty> {
        if self.containers.is_empty() {
            self.done = true;
        }
        Ok(api::Empty::new())
    }

    /// The Wait answer if the process has exited.
    fn wait_answer(&mut self, id: &str, exec_id: &str) -> Answer<Option<api::WaitResponse>> {
        let p = self.ctr(id)?.proc_mut(exec_id)?;
        Ok(p.exit.clone().map(|(status, at)| api::WaitResponse {
            exit_status: status,
            exited_at: Some(at).into(),
            ..Default::default()
        }))
    }

    /// Every process that exited (SIGCHLD): record it, publish TaskExit,
    /// and answer its waiters. Returns (connection, stream, answer).
    pub fn reap(&mut self) -> Vec<(u64, u32, Response)> {
        while let Ok((pid, status)) = hull::sys::waitpid(-1, libc::WNOHANG) {
            if pid <= 0 {
                break;
            }
            self.exited(pid, exit_code(status));
        }
        let mut answers = Vec::new();
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            match self.wait_answer(&w.id, &w.exec_id) {
                Ok(Some(res)) => answers.push((w.conn, w.stream, wire::ok(&res))),
                Ok(None) => self.waiters.push(w),
                Err(Failure(code, msg)) => answers.push((w.conn, w.stream, wire::error(code, msg))),
            }
        }
        answers
    }

    fn exited(&mut self, pid: i32, status: u32) {
        self.check_ooms();
        let at = now();
        for (id, c) in self.containers.iter_mut() {
            let (exec_id, p) = if c.init.pid == pid && c.init.exit.is_none() {
                (String::new(), &mut c.init)
            } else if let Some((e, p)) = c
                .execs
                .iter_mut()
                .find(|(_, p)| p.pid == pid && p.exit.is_none())
            {
                (e.clone(), p)
            } else {
                continue;
            };
            p.exit = Some((status, at.clone()));
            p.io.finish();
            if exec_id.is_empty() {
                // Without its own PID namespace the init's death does not
                // take the others along: the shim does (as runc's does).
                if let Ok(container) = Container::load(&c.store, id) {
                    if !container.state.own_pid_ns {
                        container.state.cgroup.kill_all(libc::SIGKILL);
                    }
                }
            }
            self.events.publish(TaskExit {
                container_id: id.clone(),
                id: if exec_id.is_empty() {
                    id.clone()
                } else {
                    exec_id
                },
                pid: pid as u32,
                exit_status: status,
                exited_at: Some(at).into(),
                ..Default::default()
            });
            return;
        }
    }

    /// Publish TaskOOM for each container whose cgroup counted a new OOM
    /// kill.
    pub fn check_ooms(&mut self) {
        for (id, c) in self.containers.iter_mut() {
            let n = c.cgroup.oom_kills().unwrap_or(0);
            if n > c.ooms {
                c.ooms = n;
                self.events.publish(TaskOOM {
                    container_id: id.clone(),
                    ..Default::default()
                });
            }
        }
    }

    /// Whether any container is running (OOM counters are then polled).
    pub fn has_live(&self) -> bool {
        self.containers.values().any(|c| c.init.exit.is_none())
    }

    /// The stdio fds to poll (terminals, stdin copies), with events.
    pub fn poll_fds(&self) -> Vec<(RawFd, libc::c_short)> {
        let mut v = Vec::new();
        for c in self.containers.values() {
            v.extend(c.init.io.poll_fds());
            for p in c.execs.values() {
                v.extend(p.io.poll_fds());
            }
        }
        v
    }

    /// Copy for the process whose stdio `fd` is.
    pub fn pump(&mut self, fd: RawFd) {
        for c in self.containers.values_mut() {
            for p in std::iter::once(&mut c.init).chain(c.execs.values_mut()) {
                if p.io.poll_fds().iter().any(|&(f, _)| f == fd) {
                    p.io.pump(fd);
                    return;
                }
            }
        }
    }

    /// The connection went away: forget its waiters.
    pub fn drop_conn(&mut self, conn: u64) {
        self.waiters.retain(|w| w.conn != conn);
    }
}

fn delete_response(pid: i32, status: u32, at: Timestamp) -> api::DeleteResponse {
    api::DeleteResponse {
        pid: pid.max(0) as u32,
        exit_status: status,
        exited_at: Some(at).into(),
        ..Default::default()
    }
}

/// Start an exec'd process: its stdio, its process JSON as a file for the
/// library, then the library's exec (detached; the shim reaps it).
fn start_exec(c: Option<&mut Ctr>, namespace: &str, id: &str, exec_id: &str) -> Answer<i32> {
    let c = c.ok_or_else(|| not_found(format!("container {id:?}")))?;
    let store = c.store.clone();
    let p = c.proc_mut(exec_id)?;
    if p.pid != 0 {
        return Err(Failure(
            Code::FAILED_PRECONDITION,
            format!("exec {exec_id:?} was started already"),
        ));
    }
    let owner = Owner { id, namespace };
    p.io = Io::open(&p.stdin, &p.stdout, &p.stderr, p.terminal, &owner)
        .map_err(|e| Failure(Code::UNKNOWN, e))?;
    let file = store.dir(id).join(format!("exec-{exec_id}.json"));
    std::fs::write(&file, &p.spec)
        .map_err(|e| Failure(Code::UNKNOWN, format!("{}: {e}", file.display())))?;
    let o = ExecOptions {
        id: id.to_string(),
        process: Some(file.clone()),
        tty: p.terminal,
        detach: true,
        stdio: p.io.child_fds(),
        ..Default::default()
    };
    let spawned = exec_spawn(&store, &o);
    let _ = std::fs::remove_file(&file);
    let (pid, pty) = spawned?;
    p.io.handed_over();
    if let Some(pty) = pty {
        p.io.attach_pty(pty);
    }
    p.pid = pid;
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::cgroups::metrics as v1;
    use containerd_shim_protos::cgroups_v2::metrics as v2;
    use containerd_shim_protos::protobuf::MessageFull;

    #[test]
    fn any_type_names_match_the_descriptors() {
        assert_eq!(ProcessDetails::descriptor().full_name(), PROCESS_DETAILS);
        assert_eq!(v1::Metrics::descriptor().full_name(), METRICS_V1);
        assert_eq!(v2::Metrics::descriptor().full_name(), METRICS_V2);
    }
}
