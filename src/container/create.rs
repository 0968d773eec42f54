//! `create`: validate, reserve the id, build the plan, fork the two stages,
//! drive them through the handshake, record the state. Any failure undoes
//! everything (processes, cgroup, state directory).

use std::ffi::CString;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::Container;
use crate::cgroups::{self, Cgroup};
use crate::config;
use crate::error::{Error, Result};
use crate::hooks::{self, ChildHook};
use crate::init::channel::{self, Kind, Msg, HEADER};
use crate::init::fail::Step;
use crate::init::{self, InitPlan};
use crate::namespaces::{self, cstring, NsPlan};
use crate::process::ProcessPlan;
use crate::rootfs::{MountKind, RootfsInputs, RootfsPlan};
use crate::state::{self, ContainerState, LaterHooks, StateStore, Status};
use crate::sys;

/// How to create a container (the `create` and `run` flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Extra fds (3..3+N) passed into the container.
    pub preserve_fds: u32,
    /// Keep the pty master for the caller (foreground `run` without a socket).
    pub keep_pty: bool,
    /// Use the systemd cgroup driver (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// `--rootless` (default: not root, or in a user namespace): cgroups
    /// only where this user may make them, no device rules (as runc).
    pub rootless: bool,
    /// `run` without a terminal: the init goes on to exec right after
    /// Ready instead of waiting on the exec fifo for `start` (the caller
    /// starts it anyway), and create returns once it has exec'd. Saves a
    /// round trip between the two processes on every `run`.
    pub autostart: bool,
    /// The container process's stdin, stdout and stderr (default: the
    /// caller's): a caller running several containers (the shim) cannot
    /// lend them its own.
    pub stdio: Option<[RawFd; 3]>,
}

/// A freshly created container, and its pty master if the caller keeps it.
#[derive(Debug)]
pub struct Created {
    pub container: Container,
    pub pty: Option<OwnedFd>,
    /// The process was started already (see `CreateOptions::autostart`):
    /// the caller records it with [`Container::mark_started`].
    pub started: bool,
}

/// Undo a half-made container. Disarmed once create succeeds.
struct Cleanup {
    dir: PathBuf,
    cgroup: Option<Cgroup>,
    stage1: Option<libc::pid_t>,
    init: Option<libc::pid_t>,
    fds: Vec<RawFd>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &fd in &self.fds {
            sys::close(fd);
        }
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        if let Some(pid) = self.stage1 {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::waitpid(pid, 0);
        }
        if let Some(pid) = self.init {
            super::wait_gone(pid, 2000);
        }
        if let Some(cg) = &self.cgroup {
            cg.signal_all(libc::SIGKILL);
            let _ = cg.remove();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The device rules to apply: none rootless, where an unprivileged user
/// cannot set them (runc ignores their failure) and the user namespace
/// keeps mknod away anyway.
fn device_rules<'r>(
    opts: &CreateOptions,
    rules: &'r [cgroups::devices::DeviceRule],
) -> Option<&'r [cgroups::devices::DeviceRule]> {
    (!opts.rootless).then_some(rules)
}

fn check_single_threaded(threads: usize) -> Result<()> {
    if threads > 1 {
        return Err(Error::Usage(format!(
            "create must run in a single-threaded process (this one has {threads} threads)"
        )));
    }
    Ok(())
}

/// Create a container: the phases below, in order. The CLI calls this;
/// a caller that cannot re-execute itself (the shim) calls
/// [`Input::load`], handles [`crate::exeseal`] its own way and then
/// [`create_from`].
pub fn create(store: &StateStore, opts: &CreateOptions) -> Result<Created> {
    let input = Input::load(opts)?;
    // CVE-2019-5736: a container that could reach the init's exe gets an
    // init cloned from a sealed image of hull (this process re-execs into
    // it and starts over); every other one the plain path.
    crate::exeseal::ensure(&input.spec, false)?;
    create_from(store, opts, input)
}

/// The phases of a create after validation; any failure undoes what the
/// earlier ones made (processes, cgroup, state directory).
pub fn create_from(store: &StateStore, opts: &CreateOptions, input: Input) -> Result<Created> {
    let mut setup = Setup::reserve(store, opts, input)?;
    setup.make_cgroup()?;
    setup.build_plan()?;
    let pid = setup.spawn()?;
    setup.place(pid)?;
    setup.handshake(pid)?;
    setup.finish()
}

/// What create needs from the bundle and the environment, validated:
/// nothing has been made yet.
pub struct Input {
    pub bundle: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    terminal: bool,
    /// LISTEN_FDS / LISTEN_PID for the container's environment.
    extra_env: Vec<String>,
    /// Fds 3.. passed into the container (LISTEN_FDS + --preserve-fds).
    preserve: u32,
    resources: cgroups::Resources,
    ignored_signals: u64,
}

impl Input {
    /// Validate the id, the bundle, its config and the options; check the
    /// calling process may fork (single-threaded).
    pub fn load(opts: &CreateOptions) -> Result<Input> {
        state::validate_id(&opts.id)?;
        let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| Error::io(&opts.bundle, e))?;
        let spec = config::load(&bundle)?;
        crate::rootless::validate(&spec)?;
        let rootfs = checked_rootfs(&config::rootfs_path(&bundle, &spec))?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "required"))?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal && opts.console_socket.is_none() && !opts.keep_pty {
            return Err(Error::Usage(
                "process.terminal is true but no --console-socket was given to receive the pty"
                    .into(),
            ));
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(Error::Usage(
                "--console-socket was given but process.terminal is false".into(),
            ));
        }
        // LISTEN_FDS (systemd socket activation) are passed on like runc does.
        let listen_fds: u32 = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut extra_env = Vec::new();
        if listen_fds > 0 {
            extra_env.push(format!("LISTEN_FDS={listen_fds}"));
            extra_env.push("LISTEN_PID=1".to_string());
        }
        let preserve = listen_fds + opts.preserve_fds;
        crate::process::check_preserved_fds(preserve, opts.preserve_fds)?;
        // Resource limits are checked before anything is made.
        let resources = cgroups::Resources::from_spec(&spec)?;
        cgroups::resources::validate(&resources, &cgroups::host_info(&resources)?)?;
        let (threads, ignored_signals) = sys::self_status();
        check_single_threaded(threads)?;
        Ok(Input {
            bundle,
            spec,
            rootfs,
            terminal,
            extra_env,
            preserve,
            resources,
            ignored_signals,
        })
    }
}

/// `root.path` resolved: a real directory, not reached through a symlink.
fn checked_rootfs(rootfs: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(rootfs) {
        // As runc: a rootfs that is (or goes through) a symlink is refused,
        // so a bundle cannot point it at a host directory such as /etc
        // (which would then get proc, dev, sys and the mount points).
        Ok(p) if p != config::clean_path(rootfs) => Err(Error::config(
            "root.path",
            format!(
                "{} is a symlink or goes through one (to {}): give the real path",
                rootfs.display(),
                p.display()
            ),
        )),
        Ok(p) if p.is_dir() => Ok(p),
        Ok(p) => Err(Error::config(
            "root.path",
            format!("{} is not a directory", p.display()),
        )),
        Err(e) => Err(Error::config(
            "root.path",
            format!("rootfs {}: {e}", rootfs.display()),
        )),
    }
}

/// A create in progress: what has been made so far (undone on drop unless
/// [`Setup::finish`] disarms it) and what the later phases need.
struct Setup<'a> {
    /// Dropped first (fields drop in order): undone while still locked.
    cleanup: Cleanup,
    lock: state::Lock,
    store: &'a StateStore,
    opts: &'a CreateOptions,
    input: Input,
    cgroup: Cgroup,
    rules: Vec<cgroups::devices::DeviceRule>,
    plan: Option<InitPlan>,
    /// The parent's end of the socketpair to the child.
    sock: RawFd,
    st: Option<ContainerState>,
    pty: Option<OwnedFd>,
}

impl<'a> Setup<'a> {
    /// Reserve the id: its state directory, locked. From here on,
    /// everything made is undone on failure.
    fn reserve(store: &'a StateStore, opts: &'a CreateOptions, input: Input) -> Result<Setup<'a>> {
        let (dir, lock) = store.create(&opts.id)?;
        Ok(Setup {
            store,
            opts,
            input,
            lock,
            cleanup: Cleanup {
                dir,
                cgroup: None,
                stage1: None,
                init: None,
                fds: Vec::new(),
                armed: true,
            },
            cgroup: Cgroup::default(),
            rules: Vec::new(),
            plan: None,
            sock: -1,
            st: None,
            pty: None,
        })
    }

    fn plan(&mut self) -> Result<&mut InitPlan> {
        self.plan
            .as_mut()
            .ok_or_else(|| Error::Usage("create: no plan (phases out of order)".into()))
    }

    /// The cgroup: a systemd scope (limits kept until it starts), or the
    /// cgroup2 directory now (the init is cloned into it) and the v1 ones
    /// once the child is busy with its namespaces.
    fn make_cgroup(&mut self) -> Result<()> {
        let spec = &self.input.spec;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::config("linux", "required"))?;
        let id = self.opts.id.as_str();
        let explicit = linux
            .cgroups_path()
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty());
        let cg_path = if self.opts.rootless && !explicit {
            cgroups::rootless_default_path(id)?
        } else {
            cgroups::resolve_path(linux.cgroups_path().as_deref(), id)?
        };
        let res = &self.input.resources;
        self.cgroup = if self.opts.systemd_cgroup {
            cgroups::systemd::create(linux.cgroups_path().as_deref(), id, res)?
        } else {
            Cgroup::paths_for(&cg_path)?
        };
        self.cleanup.cgroup = Some(self.cgroup.clone());
        self.rules = cgroups::device_rules(res);
        if self.opts.systemd_cgroup {
            // Kept until the scope starts with the first process (place_first).
            let rules = device_rules(self.opts, &self.rules);
            self.cgroup.apply(res, rules)
        } else if self.opts.rootless {
            // Only the hierarchies this user may write (all made now).
            self.cgroup.make_dirs_rootless(res, explicit)
        } else {
            self.cgroup.make_dirs(true)
        }
    }

    /// The init's plan (all C data, see `InitPlan`), the exec fifo and the
    /// cgroup fds the child joins by itself.
    fn build_plan(&mut self) -> Result<()> {
        let inp = &self.input;
        let mut plan = build_plan(inp, &self.cgroup, self.opts)?;
        plan.ignored_signals = inp.ignored_signals;
        plan.process.stdio = self.opts.stdio;
        let cleanup = &mut self.cleanup;
        cleanup.fds.extend(plan.ns.joins.iter().map(|j| j.fd));
        if let namespaces::UserNs::Join(fd) = plan.ns.user {
            cleanup.fds.push(fd);
        }
        // The exec fifo: the init blocks opening it for writing until `start`.
        plan.autostart = self.opts.autostart && !inp.terminal;
        if !plan.autostart {
            let fifo_path = cleanup.dir.join(state::EXEC_FIFO);
            let fifo_c = cstring(&fifo_path.to_string_lossy())?;
            sys::mkfifo(&fifo_c, 0o622)
                .map_err(|e| Error::sys(format!("creating {}", fifo_path.display()), e))?;
            // Not subject to the umask: a non-root container user must open it.
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&fifo_path, std::fs::Permissions::from_mode(0o622))
                    .map_err(|e| Error::io(&fifo_path, e))?;
            }
            let fifo_fd = sys::open(&fifo_c, libc::O_PATH, 0)
                .map_err(|e| Error::sys(format!("opening {}", fifo_path.display()), e))?;
            cleanup.fds.push(fifo_fd);
            let mut buf = [0u8; 64];
            plan.fifo = CString::from(sys::proc_fd_path(&mut buf, fifo_fd));
        }
        plan.parent_fds.push(self.lock.fd());
        // cgroupfs driver: the child joins the v1 cgroups itself (their `tasks`
        // files arrive open with Placed), and the init is cloned straight into
        // the cgroup2 directory (CLONE_INTO_CGROUP); the parent migrates
        // nothing.
        if !self.opts.systemd_cgroup {
            for f in self.cgroup.v1_task_files() {
                plan.cgroup_tasks.push(cstring(&f.to_string_lossy())?);
            }
            if let Some(dir) = &self.cgroup.unified {
                let c = cstring(&dir.to_string_lossy())?;
                let fd = sys::open(&c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(|e| Error::sys(format!("opening {}", dir.display()), e))?;
                cleanup.fds.push(fd);
                plan.init_cgroup = Some(fd);
            }
        }
        self.plan = Some(plan);
        Ok(())
    }

    /// Fork the child: the init itself (a direct clone) or stage 1. The
    /// child never returns from here.
    fn spawn(&mut self) -> Result<libc::pid_t> {
        let (parent_sock, child_sock) =
            sys::seqpacket_pair().map_err(|e| Error::sys("creating the init socketpair", e))?;
        // Raw from here: the cleanup closes the parent's end, the child
        // takes its own across the fork.
        let (parent_sock, child_sock) = (parent_sock.into_raw_fd(), child_sock.into_raw_fd());
        self.cleanup.fds.push(parent_sock);
        self.sock = parent_sock;
        let plan = self.plan()?;
        plan.direct = plan.ns.direct_clone();
        let pid = if plan.direct {
            clone_init(plan)?
        } else {
            sys::fork().map_err(|e| Error::sys("forking the container process", e))?
        };
        if pid == 0 {
            sys::close(parent_sock);
            if plan.direct {
                init::direct(plan, child_sock);
            }
            init::stage1(plan, child_sock);
        }
        sys::close(child_sock);
        if plan.direct {
            self.cleanup.init = Some(pid);
        } else {
            self.cleanup.stage1 = Some(pid);
        }
        Ok(pid)
    }

    /// Placed (with the systemd driver: the scope started around it; with
    /// cgroupfs: the v1 directories made, limits applied) before the child
    /// may go on. It creates its namespaces meanwhile.
    fn place(&mut self, pid: libc::pid_t) -> Result<()> {
        let res = &self.input.resources;
        let rules = device_rules(self.opts, &self.rules);
        let placed = if self.opts.systemd_cgroup {
            self.cgroup.place_first(pid)
        } else {
            self.cgroup
                .make_dirs(false)
                .and_then(|()| self.cgroup.apply(res, rules))
        };
        if let Err(e) = placed {
            // The child may have failed on its own (it creates namespaces
            // meanwhile): its report says more than "no such process".
            let mut buf = [0u8; HEADER + 16];
            if sys::poll_one(self.sock, libc::POLLIN, 0).unwrap_or(false) {
                if let Ok((msg, _, _)) = channel::recv(self.sock, &mut buf) {
                    if msg.kind == Kind::Fail {
                        return Err(self.failure(msg));
                    }
                }
            }
            return Err(e);
        }
        self.cleanup.cgroup = Some(self.cgroup.clone());
        // The v1 `tasks` files go along open: the child need not look them up.
        let mut tasks = Vec::new();
        for path in &self.plan()?.cgroup_tasks {
            let fd = sys::open_owned(path, libc::O_WRONLY, 0)
                .map_err(|e| Error::sys(format!("opening {}", path.to_string_lossy()), e))?;
            tasks.push(fd);
        }
        let raw: Vec<RawFd> = tasks.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        channel::send_fds(self.sock, Msg::new(Kind::Placed), &raw)
            .map_err(|e| Error::sys("talking to the container process", e))
    }

    /// The state as it will be recorded, before the init's pid is known.
    fn initial_state(&self) -> Result<ContainerState> {
        let spec = &self.input.spec;
        let hooks = spec.hooks().clone().unwrap_or_default();
        let own_pid_ns = self
            .plan
            .as_ref()
            .is_some_and(|p| p.ns.unshare_flags & libc::CLONE_NEWPID != 0);
        Ok(ContainerState {
            id: self.opts.id.clone(),
            pid: 0,
            pid_start: 0,
            bundle: self.input.bundle.clone(),
            rootfs: self.input.rootfs.clone(),
            created: crate::timefmt::now(true),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup: self.cgroup.clone(),
            hooks: LaterHooks {
                poststart: hooks.poststart().clone().unwrap_or_default(),
                poststop: hooks.poststop().clone().unwrap_or_default(),
            },
            own_pid_ns,
            started: false,
        })
    }

    /// Drive the child through the rest of the protocol (id maps, Go with
    /// the state, hooks, pty, seccomp listener) until it is Ready.
    fn handshake(&mut self, pid: libc::pid_t) -> Result<()> {
        let mut st = self.initial_state()?;
        let sock = self.sock;
        if self.plan()?.direct {
            go(self.store, self.plan()?, &mut st, sock, pid)?;
        }
        let id = self.opts.id.clone();
        let mut rbuf = vec![0u8; HEADER + 16];
        loop {
            let (msg, _, fd) = channel::recv(sock, &mut rbuf).map_err(|e| Error::Init {
                id: id.clone(),
                msg: format!("the container process exited during setup ({e})"),
            })?;
            match msg.kind {
                Kind::UsernsReady => {
                    namespaces::write_id_maps(pid, &self.plan()?.ns)?;
                    send(sock, Msg::new(Kind::MapsDone))?;
                }
                Kind::InitPid => {
                    let init_pid = msg.a;
                    self.cleanup.init = Some(init_pid);
                    let _ = sys::waitpid(pid, 0);
                    self.cleanup.stage1 = None;
                    go(self.store, self.plan()?, &mut st, sock, init_pid)?;
                }
                Kind::MountsReady => {
                    self.run_create_hooks(&st)?;
                    send(sock, Msg::new(Kind::Continue))?;
                }
                Kind::PtyMaster => {
                    let master = fd.ok_or_else(|| Error::Init {
                        id: id.clone(),
                        msg: "the pty master did not arrive".into(),
                    })?;
                    if let Some(sock) = &self.opts.console_socket {
                        crate::terminal::send_to_socket(
                            sock,
                            std::os::fd::AsRawFd::as_raw_fd(&master),
                        )?;
                    } else {
                        self.pty = Some(master);
                    }
                }
                Kind::SeccompFd => {
                    let listener = fd.ok_or_else(|| Error::Init {
                        id: id.clone(),
                        msg: "the seccomp listener fd did not arrive".into(),
                    })?;
                    send_seccomp_fd(self.plan()?, &st, &listener)?;
                }
                Kind::Ready => {
                    if self.plan()?.autostart {
                        // The init execs now; its end of the socket closes
                        // with the exec (or its death): then it has started.
                        while channel::recv(sock, &mut rbuf).is_ok() {}
                    }
                    break;
                }
                Kind::Fail => return Err(self.failure(msg)),
                _ => {
                    return Err(Error::Init {
                        id,
                        msg: format!(
                            "unexpected message {:?} from the container process",
                            msg.kind
                        ),
                    })
                }
            }
        }
        self.st = Some(st);
        Ok(())
    }

    /// prestart, createRuntime and createContainer hooks, while the init
    /// waits with its mounts made.
    fn run_create_hooks(&self, st: &ContainerState) -> Result<()> {
        let hooks = self.input.spec.hooks().clone().unwrap_or_default();
        let json = state_json(st, Status::Creating);
        let id = st.id.as_str();
        let run = |kind, list: &Option<Vec<oci_spec::runtime::Hook>>, ns| {
            hooks::run_all(id, kind, list.as_deref().unwrap_or(&[]), &json, ns)
        };
        run(hooks::PRESTART, hooks.prestart(), None)?;
        run(hooks::CREATE_RUNTIME, hooks.create_runtime(), None)?;
        let has_mount_ns = self.plan.as_ref().is_some_and(|p| p.ns.has_mount_ns);
        run(
            hooks::CREATE_CONTAINER,
            hooks.create_container(),
            has_mount_ns.then_some(st.pid),
        )
    }

    /// The child's failure report as an error naming what failed.
    fn failure(&self, msg: Msg) -> Error {
        let msg = match &self.plan {
            Some(plan) => describe_failure(&self.input.spec, plan, msg),
            None => "container setup failed".to_string(),
        };
        Error::Init {
            id: self.opts.id.clone(),
            msg,
        }
    }

    /// The pid file; keep what was made.
    fn finish(mut self) -> Result<Created> {
        let st = self
            .st
            .take()
            .ok_or_else(|| Error::Usage("create: finished before the handshake".into()))?;
        if let Some(p) = &self.opts.pid_file {
            state::write_pid_file(p, st.pid)?;
        }
        self.cleanup.armed = false;
        let started = self.plan.as_ref().is_some_and(|p| p.autostart);
        Ok(Created {
            container: Container {
                store: self.store.clone(),
                state: st,
            },
            pty: self.pty.take(),
            started,
        })
    }
}

/// Clone the init with its new PID namespace (and into the cgroup2
/// directory if there is one; if the kernel refuses that, the init joins
/// it itself). Returns 0 in the child.
fn clone_init(plan: &mut InitPlan) -> Result<libc::pid_t> {
    let flags = plan.ns.unshare_flags & libc::CLONE_NEWPID;
    let err = |e| Error::sys("cloning the container init", e);
    if let Some(cg) = plan.init_cgroup {
        plan.init_in_cgroup = true;
        if let Ok(pid) = sys::clone_child(flags, Some(cg)) {
            return Ok(pid);
        }
        plan.init_in_cgroup = false;
    }
    sys::clone_child(flags, None).map_err(err)
}

/// The init's pid is known: record it and send `Go` (with the state for
/// startContainer hooks), then save state.json while the init builds the
/// rootfs (before any hook could ask for the state).
fn go(
    store: &StateStore,
    plan: &InitPlan,
    st: &mut ContainerState,
    sock: RawFd,
    init_pid: libc::pid_t,
) -> Result<()> {
    st.pid = init_pid;
    st.pid_start = state::proc_stat(init_pid).map(|s| s.1).unwrap_or(0);
    let mut go = Msg::new(Kind::Go).encode().to_vec();
    if !plan.start_hooks.is_empty() {
        let json = state_json(st, Status::Created);
        if json.len() + HEADER > plan.state_buf.len() {
            return Err(Error::config("annotations", "too large for hooks' state"));
        }
        go.extend_from_slice(&json);
    }
    sys::send_with_fd(sock, &go, None)
        .map_err(|e| Error::sys("talking to the container process", e))?;
    store.save(st)
}

/// SCMP_ACT_NOTIFY: hand the listener fd and the container's process state
/// to the seccomp agent at `linux.seccomp.listenerPath`.
fn send_seccomp_fd(plan: &InitPlan, st: &ContainerState, fd: &OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    let Some(s) = &plan.process.seccomp else {
        return Ok(());
    };
    let Some(path) = &s.listener_path else {
        return Ok(());
    };
    let state = serde_json::to_value(st.oci(Status::Creating)).unwrap_or_default();
    let msg = crate::seccomp::notify::process_state(st.pid, &s.listener_metadata, state);
    crate::seccomp::notify::send(path, fd.as_raw_fd(), &msg)
}

fn send(sock: RawFd, msg: Msg) -> Result<()> {
    channel::send(sock, msg).map_err(|e| Error::sys("talking to the container process", e))
}

pub(crate) fn state_json(st: &ContainerState, status: Status) -> Vec<u8> {
    serde_json::to_vec(&st.oci(status)).unwrap_or_default()
}

fn build_plan(inp: &Input, cgroup: &Cgroup, opts: &CreateOptions) -> Result<InitPlan> {
    let (spec, bundle, rootfs) = (&inp.spec, &inp.bundle, &inp.rootfs);
    let (extra_env, preserve) = (&inp.extra_env, inp.preserve);
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux", "required"))?;
    let ns = NsPlan::build(spec)?;
    let rootfs_plan = RootfsPlan::build(
        spec,
        &ns,
        &RootfsInputs {
            bundle,
            rootfs,
            cgroup,
            no_pivot: opts.no_pivot,
        },
    )?;
    let mut warn = |m: String| crate::logging::warn(&m);
    let process = ProcessPlan::build(spec, rootfs, &ns, extra_env, preserve, true, &mut warn)?;
    let mut sysctls = Vec::new();
    let mut keys: Vec<_> = linux.sysctl().iter().flatten().collect();
    keys.sort();
    for (k, v) in keys {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        sysctls.push((cstring(&path)?, cstring(v)?));
    }
    let start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .map(|l| l.iter().map(ChildHook::prepare).collect::<Result<Vec<_>>>())
        .transpose()?
        .unwrap_or_default();
    let state_buf = vec![0u8; HEADER + if start_hooks.is_empty() { 0 } else { 1 << 16 }];
    let hooks_before_pivot = spec.hooks().as_ref().is_some_and(|h| {
        [h.prestart(), h.create_runtime(), h.create_container()]
            .iter()
            .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()))
    });
    let opt_c = |s: &Option<String>| -> Result<Option<CString>> {
        s.as_deref()
            .filter(|s| !s.is_empty())
            .map(cstring)
            .transpose()
    };
    Ok(InitPlan {
        hostname: opt_c(spec.hostname())?,
        domainname: opt_c(spec.domainname())?,
        ns,
        rootfs: rootfs_plan,
        process,
        sysctls,
        fifo: CString::default(),
        keyring: if opts.no_new_keyring {
            None
        } else {
            Some(cstring(&format!("_ses.{}", opts.id))?)
        },
        start_hooks,
        hooks_before_pivot,
        init_cgroup: None,
        init_in_cgroup: false,
        cgroup_tasks: Vec::new(),
        direct: false,
        autostart: false,
        ignored_signals: u64::MAX,
        state_buf,
        parent_fds: Vec::new(),
    })
}

/// Turn a child's (step, errno, index) into a sentence naming what failed.
fn describe_failure(spec: &Spec, plan: &InitPlan, msg: Msg) -> String {
    let errno = sys::Errno(msg.b);
    let idx = msg.c as usize;
    let Some(step) = Step::from_u32(msg.a as u32) else {
        return format!("container setup failed: {errno}");
    };
    if let Some(s) = plan.process.describe_failure(step, idx, errno) {
        return s;
    }
    if let Some(s) = plan.rootfs.describe_failure(&plan.ns, step, idx, errno) {
        return s;
    }
    let mount = |i: usize| -> String {
        match plan.rootfs.mounts.get(i) {
            Some(m) => {
                let what = match &m.kind {
                    MountKind::Bind { source, .. } => {
                        format!("bind mount of {}", source.to_string_lossy())
                    }
                    MountKind::Fs { fstype, .. } => format!("{} mount", fstype.to_string_lossy()),
                    MountKind::Remount { .. } => "remount".to_string(),
                };
                format!(
                    "mounts[{}]: {what} on {}",
                    m.index,
                    m.dest.to_string_lossy()
                )
            }
            None => format!("mount #{i}"),
        }
    };
    let list = |v: &[CString], i: usize| {
        v.get(i)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let what = match step {
        Step::Protocol => "talking to the runtime".to_string(),
        Step::JoinUserns => "joining the user namespace (linux.namespaces)".into(),
        Step::UnshareUserns => "creating a user namespace".into(),
        Step::BecomeNsRoot => {
            "becoming root in the user namespace (check linux.uidMappings/gidMappings)".into()
        }
        Step::JoinNamespace => namespaces::describe_join(spec, idx),
        Step::Unshare => "creating namespaces (linux.namespaces)".into(),
        Step::ForkInit => "forking the container init".into(),
        Step::RootPropagation => "setting the propagation of / (linux.rootfsPropagation)".into(),
        Step::ParentPrivate => format!(
            "making the rootfs's parent mount {} private",
            plan.rootfs.parent_mount.to_string_lossy()
        ),
        Step::BindRootfs => format!(
            "bind-mounting the rootfs {}",
            plan.rootfs.rootfs.to_string_lossy()
        ),
        Step::OpenRootfs => format!(
            "opening the rootfs {}",
            plan.rootfs.rootfs.to_string_lossy()
        ),
        Step::Mountpoint => format!("{}: creating the mount point inside the rootfs", mount(idx)),
        Step::Mount => mount(idx),
        Step::Remount => format!("{}: remounting with its options", mount(idx)),
        Step::MountPropagation => format!("{}: setting propagation", mount(idx)),
        Step::Device => format!(
            "creating device {}",
            plan.rootfs
                .devices
                .get(idx)
                .map(|d| d.path.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        Step::DevSymlink => format!(
            "creating symlink {}",
            plan.rootfs
                .dev_links
                .get(idx)
                .map(|d| d.1.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        Step::CwdCreate => format!(
            "process.cwd: creating {}",
            plan.process.cwd.to_string_lossy()
        ),
        Step::PivotRoot => "pivot_root into the rootfs".into(),
        Step::MoveRoot => "moving the rootfs to / (--no-pivot)".into(),
        Step::MaskPath => format!(
            "linux.maskedPaths: masking {}",
            list(&plan.rootfs.masked, idx)
        ),
        Step::ReadonlyPath => format!(
            "linux.readonlyPaths: making {} read-only",
            list(&plan.rootfs.readonly_paths, idx)
        ),
        Step::ReadonlyRoot => "root.readonly: remounting the rootfs read-only".into(),
        Step::RootfsPropagation => "linux.rootfsPropagation".into(),
        Step::Hostname => "hostname: setting it".into(),
        Step::Domainname => "domainname: setting it".into(),
        Step::Sysctl => format!(
            "linux.sysctl: writing {}",
            plan.sysctls
                .get(idx)
                .map(|s| s.0.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        Step::Keyring => "joining a new session keyring".into(),
        Step::TimeOffsets => "linux.timeOffsets: writing /proc/self/timens_offsets".into(),
        Step::CgroupJoin => format!(
            "joining the container's cgroup ({})",
            cgroup_task_file(plan, idx)
        ),
        // The process steps are shared with exec.
        _ => format!("{step:?}"),
    };
    if errno.0 == libc::EXDEV && step == Step::Sysctl {
        return format!("{what}: /proc in the container is not a procfs mount (refused)");
    }
    format!("{what}: {errno}")
}

/// The idx-th v1 `tasks` file the child writes, for messages.
fn cgroup_task_file(plan: &InitPlan, idx: usize) -> String {
    if idx == init::CGROUP2_JOIN {
        return "its cgroup2 directory's cgroup.procs".to_string();
    }
    plan.cgroup_tasks
        .get(idx)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("v1 hierarchy #{idx}"))
}
