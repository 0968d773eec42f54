//! `create`: validate, reserve the id, build the plan, fork the two stages,
//! drive them through the handshake, record the state. Any failure undoes
//! everything (processes, cgroup, state directory).

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
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

fn check_single_threaded(threads: usize) -> Result<()> {
    if threads > 1 {
        return Err(Error::Usage(format!(
            "create must run in a single-threaded process (this one has {threads} threads)"
        )));
    }
    Ok(())
}

pub fn create(store: &StateStore, opts: &CreateOptions) -> Result<Created> {
    state::validate_id(&opts.id)?;
    let id = opts.id.as_str();
    let bundle = std::fs::canonicalize(&opts.bundle).map_err(|e| Error::io(&opts.bundle, e))?;
    let spec = config::load(&bundle)?;
    crate::rootless::validate(&spec)?;
    let rootfs = config::rootfs_path(&bundle, &spec);
    let rootfs = match std::fs::canonicalize(&rootfs) {
        // As runc: a rootfs that is (or goes through) a symlink is refused,
        // so a bundle cannot point it at a host directory such as /etc
        // (which would then get proc, dev, sys and the mount points).
        Ok(p) if p != config::clean_path(&rootfs) => {
            return Err(Error::config(
                "root.path",
                format!(
                    "{} is a symlink or goes through one (to {}): give the real path",
                    rootfs.display(),
                    p.display()
                ),
            ))
        }
        Ok(p) if p.is_dir() => p,
        Ok(p) => {
            return Err(Error::config(
                "root.path",
                format!("{} is not a directory", p.display()),
            ))
        }
        Err(e) => {
            return Err(Error::config(
                "root.path",
                format!("rootfs {}: {e}", rootfs.display()),
            ))
        }
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "required"))?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.keep_pty {
        return Err(Error::Usage(
            "process.terminal is true but no --console-socket was given to receive the pty".into(),
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
    // CVE-2019-5736: a container that could reach the init's exe gets an
    // init cloned from a sealed image of hull (this process re-execs into
    // it and starts over); every other one the plain path.
    crate::exeseal::ensure(&spec, false, store.root())?;

    // From here on, everything made is undone on failure.
    let (dir, lock) = store.create(id)?;
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        cgroup: None,
        stage1: None,
        init: None,
        fds: Vec::new(),
        armed: true,
    };
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux", "required"))?;
    let explicit_cg = linux
        .cgroups_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    let cg_path = if opts.rootless && !explicit_cg {
        cgroups::rootless_default_path(id)?
    } else {
        cgroups::resolve_path(linux.cgroups_path().as_deref(), id)?
    };
    let mut cgroup = if opts.systemd_cgroup {
        cgroups::systemd::create(linux.cgroups_path().as_deref(), id, &resources)?
    } else {
        Cgroup::paths_for(&cg_path)?
    };
    cleanup.cgroup = Some(cgroup.clone());
    // Rootless: no device rules, which an unprivileged user cannot set
    // (runc ignores their failure); the user namespace keeps mknod away.
    let rules = (!opts.rootless).then(|| cgroups::device_rules(&resources));
    if opts.systemd_cgroup {
        // Kept until the scope starts with the first process (place_first).
        cgroup.apply(&resources, rules.as_deref())?;
    } else if opts.rootless {
        // Only the hierarchies this user may write (all made now).
        cgroup.make_dirs_rootless(&resources, explicit_cg)?;
    } else {
        // The cgroup2 directory now (the init is cloned into it); the v1
        // ones and the limits once the child is busy with its namespaces.
        cgroup.make_dirs(true)?;
    }

    let mut plan = build_plan(&spec, &bundle, &rootfs, &cgroup, opts, &extra_env, preserve)?;
    plan.ignored_signals = ignored_signals;
    cleanup.fds.extend(plan.ns.joins.iter().map(|j| j.fd));
    if let namespaces::UserNs::Join(fd) = plan.ns.user {
        cleanup.fds.push(fd);
    }

    // The exec fifo: the init blocks opening it for writing until `start`.
    plan.autostart = opts.autostart && !terminal;
    if !plan.autostart {
        let fifo_path = dir.join(state::EXEC_FIFO);
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
    plan.parent_fds.push(lock.fd());
    // cgroupfs driver: the child joins the v1 cgroups itself (their `tasks`
    // files arrive open with Placed), and the init is cloned straight into
    // the cgroup2 directory (CLONE_INTO_CGROUP); the parent migrates
    // nothing.
    if !opts.systemd_cgroup {
        for f in cgroup.v1_task_files() {
            plan.cgroup_tasks.push(cstring(&f.to_string_lossy())?);
        }
        if let Some(dir) = &cgroup.unified {
            let c = cstring(&dir.to_string_lossy())?;
            let fd = sys::open(&c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| Error::sys(format!("opening {}", dir.display()), e))?;
            cleanup.fds.push(fd);
            plan.init_cgroup = Some(fd);
        }
    }

    let (parent_sock, child_sock) =
        sys::seqpacket_pair().map_err(|e| Error::sys("creating the init socketpair", e))?;
    cleanup.fds.push(parent_sock);
    plan.direct = plan.ns.direct_clone();
    let pid = if plan.direct {
        clone_init(&mut plan)?
    } else {
        sys::fork().map_err(|e| Error::sys("forking the container process", e))?
    };
    if pid == 0 {
        sys::close(parent_sock);
        if plan.direct {
            init::direct(&mut plan, child_sock);
        }
        init::stage1(&mut plan, child_sock);
    }
    sys::close(child_sock);
    if plan.direct {
        cleanup.init = Some(pid);
    } else {
        cleanup.stage1 = Some(pid);
    }
    // Placed (with the systemd driver: the scope started around it; with
    // cgroupfs: the v1 directories made, limits applied) before the child
    // may go on. It creates its namespaces meanwhile.
    let placed = if opts.systemd_cgroup {
        cgroup.place_first(pid)
    } else {
        cgroup
            .make_dirs(false)
            .and_then(|()| cgroup.apply(&resources, rules.as_deref()))
    };
    if let Err(e) = placed {
        // The child may have failed on its own (it creates namespaces
        // meanwhile): its report says more than "no such process".
        let mut buf = [0u8; HEADER + 16];
        if sys::poll_one(parent_sock, libc::POLLIN, 0).unwrap_or(false) {
            if let Ok((msg, _, _)) = channel::recv(parent_sock, &mut buf) {
                if msg.kind == Kind::Fail {
                    return Err(Error::Init {
                        id: id.to_string(),
                        msg: describe_failure(&spec, &plan, msg),
                    });
                }
            }
        }
        return Err(e);
    }
    cleanup.cgroup = Some(cgroup.clone());
    // The v1 `tasks` files go along open: the child need not look them up.
    let mut tasks = Vec::with_capacity(plan.cgroup_tasks.len());
    for path in &plan.cgroup_tasks {
        let fd = sys::open(path, libc::O_WRONLY, 0)
            .map_err(|e| Error::sys(format!("opening {}", path.to_string_lossy()), e))?;
        // SAFETY: fd was just opened and is owned here.
        tasks.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let raw: Vec<RawFd> = tasks.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    channel::send_fds(parent_sock, Msg::new(Kind::Placed), &raw)
        .map_err(|e| Error::sys("talking to the container process", e))?;
    drop(tasks);

    let hooks = spec.hooks().clone().unwrap_or_default();
    let mut st = ContainerState {
        id: id.to_string(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: crate::timefmt::now(true),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: cgroup.clone(),
        hooks: LaterHooks {
            poststart: hooks.poststart().clone().unwrap_or_default(),
            poststop: hooks.poststop().clone().unwrap_or_default(),
        },
        own_pid_ns: plan.ns.unshare_flags & libc::CLONE_NEWPID != 0,
        started: false,
    };
    if plan.direct {
        go(store, &plan, &mut st, parent_sock, pid)?;
    }
    let mut pty = None;
    let mut rbuf = vec![0u8; HEADER + 16];
    loop {
        let (msg, _, fd) = match channel::recv(parent_sock, &mut rbuf) {
            Ok(m) => m,
            Err(e) => {
                return Err(Error::Init {
                    id: id.to_string(),
                    msg: format!("the container process exited during setup ({e})"),
                })
            }
        };
        match msg.kind {
            Kind::UsernsReady => {
                namespaces::write_id_maps(pid, &plan.ns)?;
                send(parent_sock, Msg::new(Kind::MapsDone))?;
            }
            Kind::InitPid => {
                let init_pid = msg.a;
                cleanup.init = Some(init_pid);
                let _ = sys::waitpid(pid, 0);
                cleanup.stage1 = None;
                go(store, &plan, &mut st, parent_sock, init_pid)?;
            }
            Kind::MountsReady => {
                let json = state_json(&st, Status::Creating);
                let run = |kind, list: &Option<Vec<oci_spec::runtime::Hook>>, ns| {
                    hooks::run_all(id, kind, list.as_deref().unwrap_or(&[]), &json, ns)
                };
                run(hooks::PRESTART, hooks.prestart(), None)?;
                run(hooks::CREATE_RUNTIME, hooks.create_runtime(), None)?;
                let ns = plan.ns.has_mount_ns.then_some(st.pid);
                run(hooks::CREATE_CONTAINER, hooks.create_container(), ns)?;
                send(parent_sock, Msg::new(Kind::Continue))?;
            }
            Kind::PtyMaster => {
                let Some(fd) = fd else {
                    return Err(Error::Init {
                        id: id.to_string(),
                        msg: "the pty master did not arrive".into(),
                    });
                };
                // SAFETY: the fd just arrived via SCM_RIGHTS and is ours alone.
                let master = unsafe { OwnedFd::from_raw_fd(fd) };
                if let Some(sock) = &opts.console_socket {
                    crate::terminal::send_to_socket(sock, fd)?;
                } else {
                    pty = Some(master);
                }
            }
            Kind::SeccompFd => {
                let Some(fd) = fd else {
                    return Err(Error::Init {
                        id: id.to_string(),
                        msg: "the seccomp listener fd did not arrive".into(),
                    });
                };
                // SAFETY: the fd just arrived via SCM_RIGHTS and is ours alone.
                let listener = unsafe { OwnedFd::from_raw_fd(fd) };
                send_seccomp_fd(&plan, &st, &listener)?;
            }
            Kind::Ready => {
                if plan.autostart {
                    // The init execs now; its end of the socket closes
                    // with the exec (or its death): then it has started.
                    while channel::recv(parent_sock, &mut rbuf).is_ok() {}
                }
                break;
            }
            Kind::Fail => {
                return Err(Error::Init {
                    id: id.to_string(),
                    msg: describe_failure(&spec, &plan, msg),
                })
            }
            _ => {
                return Err(Error::Init {
                    id: id.to_string(),
                    msg: format!(
                        "unexpected message {:?} from the container process",
                        msg.kind
                    ),
                })
            }
        }
    }
    if let Some(p) = &opts.pid_file {
        state::write_pid_file(p, st.pid)?;
    }
    cleanup.armed = false;
    drop(lock);
    Ok(Created {
        container: Container {
            store: store.clone(),
            state: st,
        },
        pty,
        started: plan.autostart,
    })
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

fn build_plan(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    cgroup: &Cgroup,
    opts: &CreateOptions,
    extra_env: &[String],
    preserve: u32,
) -> Result<InitPlan> {
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
    let process = ProcessPlan::build(spec, rootfs, &ns, extra_env, preserve, &mut warn)?;
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
