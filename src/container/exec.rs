//! `exec`: run another process in a running container. The process joins
//! every namespace of the container's init and its cgroup, and gets the
//! container's confinement (the bundle's `process`, as runc does) unless the
//! options override it.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::run::{foreground, wait_for};
use super::Container;
use crate::error::{Error, Result};
use crate::init::channel::{self, Kind, Msg, HEADER};
use crate::init::fail::Step;
use crate::init::setns::{self, SetnsPlan};
use crate::namespaces::{Join, NsPlan, UserNs};
use crate::process::ProcessPlan;
use crate::state::{self, StateStore, Status};
use crate::sys;
use crate::terminal::{self, RawMode, Relay};

/// The `exec` flags.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    /// A full OCI process object (JSON file), instead of the bundle's.
    pub process: Option<PathBuf>,
    /// The command; required unless `process` is given.
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// The process's stdin, stdout and stderr (default: the caller's).
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
}

/// Namespace types in the order they are joined (user first, mount last).
const NAMESPACES: [(&str, libc::c_int); 8] = [
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

/// The process spec for exec: the bundle's (or `--process`), with the
/// command-line overrides applied the way runc applies them.
pub fn process_spec(bundle_config: &Value, o: &ExecOptions) -> Result<Value> {
    let mut p = match &o.process {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            serde_json::from_str(&text).map_err(|e| Error::ConfigParse {
                path: path.clone(),
                msg: format!("malformed process JSON: {e}"),
            })?
        }
        None => {
            let mut p = bundle_config["process"].clone();
            if o.args.is_empty() {
                return Err(Error::Usage(
                    "exec: a command is required (or --process)".into(),
                ));
            }
            p["args"] = json!(o.args);
            p["terminal"] = json!(o.tty);
            p
        }
    };
    if !p.is_object() {
        return Err(Error::config("process", "must be an object"));
    }
    // A --process file that names no LSM label gets the container's: an
    // exec never leaves the container's AppArmor profile by omission. runc
    // does this for selinuxLabel (its libcontainer config carries it) but
    // not for apparmorProfile (specconv leaves config.AppArmorProfile
    // empty, so runc 1.1's `exec --process` runs unconfined); hull is
    // stricter there on purpose (tests/vm/apparmor-guest.sh shows both).
    if o.process.is_some() {
        for key in ["apparmorProfile", "selinuxLabel"] {
            let theirs = &bundle_config["process"][key];
            let unset = p.get(key).and_then(Value::as_str).unwrap_or("").is_empty();
            if unset && theirs.as_str().is_some_and(|s| !s.is_empty()) {
                p[key] = theirs.clone();
            }
        }
    }
    if o.tty {
        p["terminal"] = json!(true);
    }
    if let Some(cwd) = &o.cwd {
        p["cwd"] = json!(cwd);
    }
    if p.get("cwd").is_none() {
        p["cwd"] = json!("/");
    }
    if let Some(a) = &o.apparmor {
        p["apparmorProfile"] = json!(a);
    }
    if let Some(l) = &o.process_label {
        p["selinuxLabel"] = json!(l);
    }
    if !o.caps.is_empty() {
        for set in ["bounding", "effective", "permitted", "ambient"] {
            let list = &mut p["capabilities"][set];
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(arr) = list.as_array_mut() {
                for c in &o.caps {
                    arr.push(json!(c));
                }
            }
        }
    }
    if !o.env.is_empty() {
        let env = &mut p["env"];
        if !env.is_array() {
            *env = json!([]);
        }
        if let Some(arr) = env.as_array_mut() {
            arr.extend(o.env.iter().map(|e| json!(e)));
        }
    }
    if o.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let num = |s: &str| -> Result<u32> {
            s.parse()
                .map_err(|_| Error::Usage(format!("--user {u:?}: expected uid[:gid] as numbers")))
        };
        p["user"]["uid"] = json!(num(uid)?);
        if let Some(g) = gid {
            p["user"]["gid"] = json!(num(g)?);
        } else if p["user"].get("gid").is_none() {
            p["user"]["gid"] = json!(0);
        }
    }
    if !o.additional_gids.is_empty() {
        let g = &mut p["user"]["additionalGids"];
        if !g.is_array() {
            *g = json!([]);
        }
        if let Some(arr) = g.as_array_mut() {
            arr.extend(o.additional_gids.iter().map(|g| json!(g)));
        }
    }
    Ok(p)
}

fn ns_id(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The init's namespaces that differ from ours, opened for setns.
fn join_plan(pid: i32) -> Result<NsPlan> {
    let mut plan = NsPlan {
        user: UserNs::Host,
        joins: Vec::new(),
        unshare_flags: 0,
        uid_map: String::new(),
        gid_map: String::new(),
        has_mount_ns: false,
        new_net: false,
        new_cgroup: false,
        uid_helper: false,
        gid_helper: false,
        time_offsets: None,
    };
    for (i, (name, flag)) in NAMESPACES.iter().enumerate() {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let Some(their_id) = ns_id(&theirs) else {
            continue;
        };
        if ns_id(&format!("/proc/self/ns/{name}")) == Some(their_id) {
            continue;
        }
        let fd = std::fs::File::open(&theirs)
            .map_err(|e| Error::io(&theirs, e))?
            .into_raw_fd();
        if *flag == libc::CLONE_NEWUSER {
            plan.user = UserNs::Join(fd);
        } else {
            plan.has_mount_ns |= *flag == libc::CLONE_NEWNS;
            plan.joins.push(Join {
                fd,
                nstype: *flag,
                index: i,
            });
        }
    }
    Ok(plan)
}

/// Run a process in the container. Returns hull's exit code: 0 when
/// detached, else the process's exit status (128 + signal if killed).
pub fn exec(store: &StateStore, o: &ExecOptions) -> Result<i32> {
    if o.detach && o.tty && o.console_socket.is_none() {
        return Err(Error::Usage(
            "exec --detach --tty needs --console-socket to receive the pty".into(),
        ));
    }
    let sfd = if o.detach { None } else { Some(foreground()?) };
    let (pid, pty) = exec_spawn(store, o)?;
    let Some(sfd) = sfd else {
        return Ok(0);
    };
    let mut relay = pty.map(Relay::new);
    let _raw = relay.as_ref().and_then(|r| {
        terminal::copy_winsize(0, std::os::fd::AsRawFd::as_raw_fd(&r.master));
        RawMode::enter(0)
    });
    let forward = |sig| {
        let _ = sys::kill(pid, sig);
    };
    let code = wait_for(pid, &forward, &sfd, relay.as_mut());
    if let Some(r) = relay.as_mut() {
        r.drain();
    }
    Ok(code)
}

/// Start a process in the container and return once it has exec'd: its
/// pid, and its pty master if it has a terminal and no console socket.
/// The caller reaps it (it is re-parented to the nearest child subreaper).
pub fn exec_spawn(store: &StateStore, o: &ExecOptions) -> Result<(libc::pid_t, Option<OwnedFd>)> {
    let c = Container::load(store, &o.id)?;
    let id = o.id.as_str();
    match c.status() {
        Status::Stopped => return Err(Error::bad_state(id, "cannot exec in a stopped container")),
        Status::Creating => {
            return Err(Error::bad_state(
                id,
                "cannot exec in a container that is being created",
            ))
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::bad_state(
                id,
                "cannot exec in a paused container (resume it first, or use --ignore-paused)",
            ))
        }
        _ => {}
    }
    if o.console_socket.is_some() && !o.tty && o.process.is_none() {
        return Err(Error::Usage("--console-socket needs --tty".into()));
    }
    crate::process::check_preserved_fds(o.preserve_fds, o.preserve_fds)?;
    let cfg_path = c.state.bundle.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let mut spec_v: Value = serde_json::from_str(&text).map_err(|e| Error::ConfigParse {
        path: cfg_path.clone(),
        msg: format!("malformed JSON: {e}"),
    })?;
    // The container's own processes may hold CAP_SYS_PTRACE even when
    // this one does not (see exeseal::reason).
    let container_ptrace = crate::exeseal::process_grants_ptrace(&spec_v["process"]);
    spec_v["process"] = process_spec(&spec_v, o)?;
    let spec = crate::config::parse(&spec_v.to_string()).map_err(|msg| Error::ConfigParse {
        path: o.process.clone().unwrap_or(cfg_path.clone()),
        msg,
    })?;
    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "required"))?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config("process.args", "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::config("process.cwd", "must be an absolute path"));
    }
    crate::config::check_user(p.user())?;
    // CVE-2019-5736: the exec process is visible in the container until its
    // execve; re-exec from a sealed image first where that matters.
    crate::exeseal::ensure(&spec, container_ptrace)?;
    // ... and one given CAP_SYS_PTRACE here must not find a waiting init
    // that still runs hull's plain image (created from a config that did
    // not need the sealed one).
    if c.status() == Status::Created
        && crate::exeseal::reason(&spec, false).is_some()
        && !crate::exeseal::exe_is_sealed(&format!("/proc/{}/exe", c.state.pid))
    {
        return Err(Error::bad_state(
            id,
            "cannot exec a process that may hold CAP_SYS_PTRACE into a created container whose init \
             runs hull's unsealed image (CVE-2019-5736); start it first",
        ));
    }

    let ns = join_plan(c.state.pid)?;
    let mut warn = |m: String| crate::logging::warn(&m);
    let process = ProcessPlan::build(
        &spec,
        &c.state.rootfs,
        &ns,
        &[],
        o.preserve_fds,
        true,
        &mut warn,
    );
    let process = match process {
        Ok(mut p) => {
            p.stdio = o.stdio;
            p
        }
        Err(e) => {
            ns.close_fds();
            return Err(e);
        }
    };
    let cgroup = match CgroupFiles::open(&c) {
        Ok(cg) => cg,
        Err(e) => {
            ns.close_fds();
            return Err(e);
        }
    };
    let plan = SetnsPlan {
        ns,
        process,
        parent_fds: Vec::new(),
        cgroup_tasks: cgroup.tasks.iter().map(|t| t.1.as_raw_fd()).collect(),
        cgroup2: cgroup.cgroup2.as_ref().map(|d| d.1.as_raw_fd()),
    };
    let result = spawn(&c, &plan, &cgroup, o);
    drop(cgroup);
    plan.ns.close_fds();
    let (pid, pty) = result?;
    if let Some(f) = &o.pid_file {
        state::write_pid_file(f, pid)?;
    }
    Ok((pid, pty))
}

/// The container's cgroup files, opened before the fork for stage 1 to
/// inherit: each v1 hierarchy's `tasks` file and the cgroup2 directory
/// (from the state, so systemd-driver containers are found alike).
struct CgroupFiles {
    tasks: Vec<(PathBuf, OwnedFd)>,
    cgroup2: Option<(PathBuf, OwnedFd)>,
}

impl CgroupFiles {
    fn open(c: &Container) -> Result<CgroupFiles> {
        let cg = &c.state.cgroup;
        let mut tasks = Vec::new();
        for f in cg.v1_task_files() {
            let fd = std::fs::OpenOptions::new()
                .write(true)
                .open(&f)
                .map_err(|e| open_error(c.id(), &f, e))?;
            tasks.push((f, fd.into()));
        }
        let cgroup2 = match &cg.unified {
            Some(dir) => {
                let fd = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(dir)
                    .map_err(|e| open_error(c.id(), dir, e))?;
                Some((dir.clone(), fd.into()))
            }
            None => None,
        };
        Ok(CgroupFiles { tasks, cgroup2 })
    }

    /// The file a `Step::CgroupJoin` failure at `idx` is about.
    fn describe(&self, idx: usize) -> String {
        if idx == crate::init::CGROUP2_JOIN {
            if let Some((dir, _)) = &self.cgroup2 {
                return dir.join("cgroup.procs").display().to_string();
            }
        }
        self.tasks
            .get(idx)
            .map(|t| t.0.display().to_string())
            .unwrap_or_else(|| format!("v1 hierarchy #{idx}"))
    }
}

/// A cgroup file that cannot be opened; ENOENT means the container's cgroup
/// was removed under it (it cannot be joined; its limits no longer hold).
fn open_error(id: &str, path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let dir = if path.ends_with("tasks") {
            path.parent().unwrap_or(path)
        } else {
            path
        };
        return cgroup_gone(id, dir);
    }
    Error::io(path, e)
}

fn cgroup_gone(id: &str, dir: &Path) -> Error {
    Error::bad_state(
        id,
        format!(
            "cannot exec: the container's cgroup {} no longer exists",
            dir.display()
        ),
    )
}

/// Fork stage 1: with clone3(CLONE_INTO_CGROUP) straight into the cgroup2
/// directory where there is one. Returns its pid (0 in the child) and
/// whether it was cloned into the cgroup2 directory.
fn fork_stage1(id: &str, cgroup: &CgroupFiles) -> Result<(libc::pid_t, bool)> {
    if let Some((dir, fd)) = &cgroup.cgroup2 {
        match sys::clone_child(0, Some(fd.as_raw_fd())) {
            Ok(pid) => return Ok((pid, true)),
            // No clone3 (before Linux 5.3, or a seccomp filter: ENOSYS or
            // EPERM), or one without the cgroup field (5.3-5.6: E2BIG or
            // EINVAL): stage 1 writes cgroup.procs itself, which reports
            // any real permission problem.
            Err(sys::Errno(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EPERM)) => {}
            // The directory was removed after it was opened.
            Err(sys::Errno(libc::ENODEV | libc::ENOENT)) => return Err(cgroup_gone(id, dir)),
            Err(e) => {
                return Err(Error::Init {
                    id: id.to_string(),
                    msg: format!("cloning the exec process into {}: {e}", dir.display()),
                })
            }
        }
    }
    let pid = sys::fork().map_err(|e| Error::Init {
        id: id.to_string(),
        msg: format!("forking the exec process: {e}"),
    })?;
    Ok((pid, false))
}

/// Fork the two stages and drive them until the exec happened.
fn spawn(
    c: &Container,
    plan: &SetnsPlan,
    cgroup: &CgroupFiles,
    o: &ExecOptions,
) -> Result<(libc::pid_t, Option<OwnedFd>)> {
    let id = c.id();
    let (parent, child_sock) =
        sys::seqpacket_pair().map_err(|e| Error::sys("creating the exec socketpair", e))?;
    let parent_sock = parent.as_raw_fd();
    // Raw: the child takes it across the fork.
    let child_sock = child_sock.into_raw_fd();
    let (stage1, in_cgroup2) = match fork_stage1(id, cgroup) {
        Ok(r) => r,
        Err(e) => {
            sys::close(child_sock);
            return Err(e);
        }
    };
    if stage1 == 0 {
        sys::close(parent_sock);
        setns::stage1(plan, child_sock, in_cgroup2);
    }
    sys::close(child_sock);
    let mut target: Option<libc::pid_t> = None;
    let fail = |target: Option<libc::pid_t>, msg: String| {
        let _ = sys::kill(stage1, libc::SIGKILL);
        let _ = sys::waitpid(stage1, 0);
        if let Some(p) = target {
            let _ = sys::kill(p, libc::SIGKILL);
            super::wait_gone(p, 2000);
        }
        Error::Init {
            id: id.to_string(),
            msg,
        }
    };
    let mut pty = None;
    let mut buf = [0u8; HEADER + 16];
    loop {
        let (msg, _, fd) = match channel::recv(parent_sock, &mut buf) {
            Ok(m) => m,
            // EOF: the socket closed on exec (close-on-exec). Done.
            Err(sys::Errno(libc::EPIPE)) if target.is_some() => break,
            Err(e) => {
                return Err(fail(
                    target,
                    format!("the exec process exited during setup ({e})"),
                ))
            }
        };
        match msg.kind {
            Kind::InitPid => {
                target = Some(msg.a);
                let _ = sys::waitpid(stage1, 0);
                if channel::send(parent_sock, Msg::new(Kind::Go)).is_err() {
                    return Err(fail(target, "the exec process exited during setup".into()));
                }
            }
            Kind::PtyMaster => {
                let Some(master) = fd else {
                    return Err(fail(target, "the pty master did not arrive".into()));
                };
                match &o.console_socket {
                    Some(sock) => {
                        if let Err(e) = terminal::send_to_socket(sock, master.as_raw_fd()) {
                            return Err(fail(target, e.to_string()));
                        }
                    }
                    None => pty = Some(master),
                }
            }
            Kind::SeccompFd => {
                // SCMP_ACT_NOTIFY: the exec'd process's listener goes to the
                // agent too, with the container's state and this pid.
                let Some(listener) = fd else {
                    return Err(fail(
                        target,
                        "the seccomp listener fd did not arrive".into(),
                    ));
                };
                if let (Some(s), Some(pid)) = (&plan.process.seccomp, target) {
                    if let Some(path) = &s.listener_path {
                        let state =
                            serde_json::to_value(c.state.oci(Status::Running)).unwrap_or_default();
                        let m =
                            crate::seccomp::notify::process_state(pid, &s.listener_metadata, state);
                        if let Err(e) = crate::seccomp::notify::send(
                            path,
                            std::os::fd::AsRawFd::as_raw_fd(&listener),
                            &m,
                        ) {
                            return Err(fail(target, e.to_string()));
                        }
                    }
                }
            }
            Kind::Fail => {
                let msg_text = describe(plan, cgroup, msg);
                return Err(fail(target, msg_text));
            }
            _ => return Err(fail(target, format!("unexpected message {:?}", msg.kind))),
        }
    }
    drop(parent);
    target
        .map(|t| (t, pty))
        .ok_or_else(|| fail(None, "the exec process did not start".into()))
}

fn describe(plan: &SetnsPlan, cgroup: &CgroupFiles, msg: Msg) -> String {
    let errno = sys::Errno(msg.b);
    let idx = msg.c as usize;
    let Some(step) = Step::from_u32(msg.a as u32) else {
        return format!("exec setup failed: {errno}");
    };
    if let Some(s) = plan.process.describe_failure(step, idx, errno) {
        return s;
    }
    match step {
        Step::JoinNamespace => format!(
            "joining the container's {} namespace: {errno}",
            NAMESPACES.get(idx).map(|n| n.0).unwrap_or("?")
        ),
        Step::CgroupJoin => format!(
            "joining the container's cgroup ({}): {errno}",
            cgroup.describe(idx)
        ),
        step => format!("{step:?}: {errno}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Value {
        json!({"process": {"args": ["sleep", "1"], "cwd": "/",
            "apparmorProfile": "ctr-profile", "selinuxLabel": "ctr_t"}})
    }

    #[test]
    fn exec_inherits_the_containers_labels() {
        let o = ExecOptions {
            args: vec!["true".into()],
            ..Default::default()
        };
        let p = process_spec(&bundle(), &o).unwrap();
        assert_eq!(p["apparmorProfile"], "ctr-profile");
        assert_eq!(p["selinuxLabel"], "ctr_t");
        let o = ExecOptions {
            apparmor: Some("other".into()),
            ..o
        };
        assert_eq!(
            process_spec(&bundle(), &o).unwrap()["apparmorProfile"],
            "other"
        );
    }

    #[test]
    fn a_process_file_without_labels_gets_the_containers() {
        let dir = std::env::temp_dir().join(format!("hull-exec-lsm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bare = dir.join("bare.json");
        std::fs::write(&bare, r#"{"args": ["true"], "cwd": "/"}"#).unwrap();
        let own = dir.join("own.json");
        std::fs::write(
            &own,
            r#"{"args": ["true"], "cwd": "/", "apparmorProfile": "mine"}"#,
        )
        .unwrap();
        let o = |f: &Path, apparmor: Option<&str>| ExecOptions {
            process: Some(f.to_path_buf()),
            apparmor: apparmor.map(String::from),
            ..Default::default()
        };
        let p = process_spec(&bundle(), &o(&bare, None)).unwrap();
        assert_eq!(p["apparmorProfile"], "ctr-profile");
        assert_eq!(p["selinuxLabel"], "ctr_t");
        let p = process_spec(&bundle(), &o(&own, None)).unwrap();
        assert_eq!(p["apparmorProfile"], "mine");
        let p = process_spec(&bundle(), &o(&bare, Some("flag"))).unwrap();
        assert_eq!(p["apparmorProfile"], "flag");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
