//! `checkpoint` and `restore` through CRIU's command line, with the options
//! runc maps onto CRIU: the container's bind mounts (and masked files) are
//! external mounts, cgroups are managed by CRIU, stdio is recorded in
//! descriptors.json and re-attached on restore.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::Spec;

use super::{Container, CreateOptions};
use crate::error::{Error, Result};
use crate::state::{self, ContainerState, LaterHooks, StateStore, Status};
use crate::sys;

/// `checkpoint` flags.
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: Option<String>,
}

/// `restore` flags.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub create: CreateOptions,
    pub criu: PathBuf,
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub detach: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<String>,
}

/// CRIU's version as (major, minor), or an error saying it is missing.
pub fn criu_version(criu: &Path) -> Result<(u32, u32)> {
    let out = Command::new(criu)
        .arg("--version")
        .output()
        .map_err(|e| Error::Sys {
            what: format!(
            "checkpoint/restore needs CRIU, but {} cannot be run (install Debian's criu package)",
            criu.display()
        ),
            source: e,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .map(str::trim)
        .unwrap_or("");
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let ver = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    if ver < (3, 11) {
        return Err(Error::Usage(format!(
            "CRIU {v:?} at {} is too old: hull needs 3.11 or newer",
            criu.display()
        )));
    }
    Ok(ver)
}

fn manage_mode(m: &Option<String>) -> Result<&str> {
    match m.as_deref().unwrap_or("soft") {
        m @ ("soft" | "full" | "strict" | "ignore") => Ok(m),
        other => Err(Error::Usage(format!(
            "--manage-cgroups-mode {other:?}: expected soft, full, strict or ignore"
        ))),
    }
}

/// External mounts: every bind mount and every masked file, by destination;
/// on a v2 host without a cgroup namespace also the `cgroup` mount, which
/// hull makes a bind of `cgroup_dir`, the container's own cgroup (see
/// rootfs::cgroup_mounts; CRIU cannot dump a bind of a host mount it cannot
/// see: "has unreachable sharing").
fn external_mounts(spec: &Spec, cgroup_dir: Option<&Path>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let cgroupns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup)
        });
    for m in spec.mounts().iter().flatten() {
        if let Some(dir) = cgroup_dir.filter(|_| !cgroupns) {
            if m.typ().as_deref() == Some("cgroup") {
                out.push((
                    m.destination().display().to_string(),
                    dir.display().to_string(),
                ));
                continue;
            }
        }
        let opts = m.options().clone().unwrap_or_default();
        let bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if bind {
            let dest = m.destination().display().to_string();
            let src = m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default();
            out.push((dest, src));
        }
    }
    out
}

/// Run CRIU; on failure the error carries CRIU's own error lines.
fn run_criu(criu: &Path, args: &[String], log: &Path, what: &str) -> Result<()> {
    crate::logging::debug(&format!("{} {}", criu.display(), args.join(" ")));
    let out = Command::new(criu)
        .args(args)
        .output()
        .map_err(|e| Error::Sys {
            what: format!("running {}", criu.display()),
            source: e,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let logtext = std::fs::read_to_string(log).unwrap_or_default();
    let mut errors: Vec<&str> = logtext.lines().filter(|l| l.contains("Error")).collect();
    let stderr = String::from_utf8_lossy(&out.stderr);
    errors.extend(stderr.lines().filter(|l| !l.trim().is_empty()));
    errors.dedup();
    let tail: Vec<&str> = errors.iter().rev().take(4).rev().copied().collect();
    Err(Error::Usage(format!(
        "criu {what} failed ({}): {} (log: {})",
        out.status,
        if tail.is_empty() {
            "no error output".to_string()
        } else {
            tail.join(" | ")
        },
        log.display()
    )))
}

impl Container {
    pub fn checkpoint(self, o: &CheckpointOptions) -> Result<()> {
        let id = self.state.id.clone();
        criu_version(&o.criu)?;
        let mode = manage_mode(&o.manage_cgroups_mode)?;
        match self.status() {
            Status::Running | Status::Paused => {}
            s => {
                return Err(Error::bad_state(
                    &id,
                    format!("cannot checkpoint a {s} container"),
                ))
            }
        }
        let spec = crate::config::load(&self.state.bundle)?;
        std::fs::create_dir_all(&o.image_path).map_err(|e| Error::io(&o.image_path, e))?;
        let work = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
        std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        let verb = if o.pre_dump { "pre-dump" } else { "dump" };
        let log = format!("{verb}.log");
        let mut args: Vec<String> = vec![
            verb.into(),
            "--tree".into(),
            self.state.pid.to_string(),
            "--images-dir".into(),
            o.image_path.display().to_string(),
            "--work-dir".into(),
            work.display().to_string(),
            "--root".into(),
            self.state.rootfs.display().to_string(),
            "--log-file".into(),
            log.clone(),
            "-v4".into(),
            format!("--manage-cgroups={mode}"),
        ];
        let cgroup_dir = self
            .state
            .cgroup
            .unified
            .as_deref()
            .filter(|_| self.state.cgroup.v2);
        for (dest, _) in external_mounts(&spec, cgroup_dir) {
            args.push("--ext-mount-map".into());
            args.push(format!("{dest}:{dest}"));
        }
        for (flag, on) in [
            ("--leave-running", o.leave_running || o.pre_dump),
            ("--tcp-established", o.tcp_established),
            ("--ext-unix-sk", o.ext_unix_sk),
            ("--shell-job", o.shell_job),
            ("--file-locks", o.file_locks),
            ("--track-mem", o.pre_dump),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        // A paused container (containerd pauses every task it
        // checkpoints): CRIU cannot seize frozen tasks one by one; told
        // the freezer cgroup, it uses it (as runc does), and leaves the
        // container as it found it.
        if self.status() == Status::Paused {
            let cg = &self.state.cgroup;
            let freezer = if cg.v2 {
                cg.unified.as_deref()
            } else {
                cg.v1_dir("freezer")
            };
            if let Some(dir) = freezer {
                args.push("--freeze-cgroup".into());
                args.push(dir.display().to_string());
            }
        }
        if let Some(p) = &o.parent_path {
            args.push("--prev-images-dir".into());
            args.push(p.display().to_string());
        }
        // Where stdio pointed, for restore (runc's descriptors.json); a
        // file outside the container's mounts (a shim's FIFO or log file)
        // is external to CRIU, which cannot dump it, and restored from the
        // fd the restoring caller gives.
        let fds: Vec<String> = (0..3).map(|fd| stdio_entry(self.state.pid, fd)).collect();
        for key in fds.iter().filter(|k| k.starts_with("file[")) {
            args.push("--external".into());
            args.push(key.clone());
        }
        let desc = o.image_path.join("descriptors.json");
        std::fs::write(&desc, serde_json::to_vec(&fds).unwrap_or_default())
            .map_err(|e| Error::io(&desc, e))?;
        run_criu(&o.criu, &args, &work.join(&log), verb)?;
        if !o.leave_running && !o.pre_dump {
            // The processes are gone; so is the container.
            return self.delete(true);
        }
        Ok(())
    }
}

/// Restore a checkpointed container from `image_path` into a new container
/// with the given id and bundle. Returns hull's exit code (0 if detached,
/// else the restored init's status).
pub fn restore(store: &StateStore, o: &RestoreOptions) -> Result<i32> {
    let id = o.create.id.as_str();
    state::validate_id(id)?;
    criu_version(&o.criu)?;
    let mode = manage_mode(&o.manage_cgroups_mode)?;
    let bundle =
        std::fs::canonicalize(&o.create.bundle).map_err(|e| Error::io(&o.create.bundle, e))?;
    let spec = crate::config::load(&bundle)?;
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return Err(Error::Usage(
            "restoring a container with process.terminal is not supported yet".into(),
        ));
    }
    let rootfs = std::fs::canonicalize(crate::config::rootfs_path(&bundle, &spec))
        .map_err(|e| Error::config("root.path", e.to_string()))?;
    let resources = crate::cgroups::Resources::from_spec(&spec)?;
    crate::cgroups::resources::validate(&resources, &crate::cgroups::host_info(&resources)?)?;
    let (dir, lock) = store.create(id)?;
    let cleanup = |e: Error| {
        let _ = std::fs::remove_dir_all(&dir);
        e
    };
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux", "required"))?;
    let cg_path =
        crate::cgroups::resolve_path(linux.cgroups_path().as_deref(), id).map_err(cleanup)?;
    let mut cgroup = crate::cgroups::Cgroup::create(&cg_path).map_err(cleanup)?;
    // The restored processes land in a cgroup that already has its limits.
    if let Err(e) = cgroup.apply(&resources, Some(&crate::cgroups::device_rules(&resources))) {
        let _ = cgroup.remove();
        return Err(cleanup(e));
    }
    let work = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
    std::fs::create_dir_all(&work).map_err(|e| cleanup(Error::io(&work, e)))?;
    let pidfile = work.join("restore.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--images-dir".into(),
        o.image_path.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--root".into(),
        rootfs.display().to_string(),
        "--log-file".into(),
        "restore.log".into(),
        "-v4".into(),
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pidfile.display().to_string(),
        format!("--manage-cgroups={mode}"),
        "--cgroup-root".into(),
        cg_path.clone(),
    ];
    let cgroup_dir = cgroup.unified.clone().filter(|_| cgroup.v2);
    for (dest, src) in external_mounts(&spec, cgroup_dir.as_deref()) {
        let src = if Path::new(&src).is_absolute() {
            src
        } else {
            bundle.join(&src).display().to_string()
        };
        args.push("--ext-mount-map".into());
        args.push(format!("{dest}:{src}"));
    }
    // Re-attach the recorded stdio to ours, or to the caller's fds.
    let desc: Vec<String> = std::fs::read(o.image_path.join("descriptors.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    args.extend(inherit_fd_args(&desc, o.create.stdio));
    for (flag, on) in [
        ("--tcp-established", o.tcp_established),
        ("--ext-unix-sk", o.ext_unix_sk),
        ("--shell-job", o.shell_job),
        ("--file-locks", o.file_locks),
    ] {
        if on {
            args.push(flag.into());
        }
    }
    let sfd = if o.detach {
        None
    } else {
        Some(super::run::foreground()?)
    };
    // CRIU needs the rootfs as a mount point; do that in a private mount
    // namespace of our own so nothing shows on the host.
    let prepared = prepare_root(&rootfs);
    let r = prepared.and_then(|_| run_criu(&o.criu, &args, &work.join("restore.log"), "restore"));
    if let Err(e) = r {
        let _ = cgroup.remove();
        return Err(cleanup(e));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            cleanup(Error::Usage(format!(
                "criu restore wrote no pid to {}",
                pidfile.display()
            )))
        })?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    let st = ContainerState {
        id: id.to_string(),
        pid,
        pid_start: state::proc_stat(pid).map(|s| s.1).unwrap_or(0),
        bundle,
        rootfs,
        created: crate::timefmt::now(true),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup,
        hooks: LaterHooks {
            poststart: hooks.poststart().clone().unwrap_or_default(),
            poststop: hooks.poststop().clone().unwrap_or_default(),
        },
        own_pid_ns: true,
        started: true,
    };
    store.save(&st)?;
    if let Some(p) = &o.create.pid_file {
        state::write_pid_file(p, pid)?;
    }
    drop(lock);
    let Some(sfd) = sfd else {
        return Ok(0);
    };
    let forward = |sig| {
        let _ = sys::kill(pid, sig);
    };
    let code = super::run::wait_for(pid, &forward, &sfd, None);
    if let Ok(c) = Container::load(store, id) {
        let _ = c.delete(true);
    }
    Ok(code)
}

/// What fd `fd` of `pid` is, for descriptors.json: its link (`pipe:[N]`,
/// `socket:[N]`, a path), or CRIU's external-file key `file[MNT:INODE]`
/// (hex) for a file on a mount the process's mount namespace does not
/// have (CRIU: "Can't lookup mount").
fn stdio_entry(pid: i32, fd: i32) -> String {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if !link.starts_with('/') {
        return link;
    }
    let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
    let mnt_id = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let internal = |id: u64| {
        mounts
            .lines()
            .any(|l| l.split_whitespace().next() == Some(id.to_string().as_str()))
    };
    match mnt_id {
        Some(id) if !internal(id) => {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(format!("/proc/{pid}/fd/{fd}")) {
                Ok(m) => format!("file[{id:x}:{:x}]", m.ino()),
                Err(_) => link,
            }
        }
        _ => link,
    }
}

/// CRIU's `--inherit-fd` arguments for the recorded stdio (`desc`, one
/// entry per fd 0..2). Without `stdio`, the pipes, sockets and external
/// files are our own 0..2 (the CLI); with it, every recorded pipe, socket
/// or file is the caller's fd in its place (the shim's: containerd's new
/// FIFOs). CRIU names a file by its path without the leading slash, an
/// external one by its `file[...]` key.
fn inherit_fd_args(desc: &[String], stdio: Option<[RawFd; 3]>) -> Vec<String> {
    let mut args = Vec::new();
    for (i, what) in desc.iter().enumerate().take(3) {
        let key = if what.starts_with("pipe:")
            || what.starts_with("socket:")
            || what.starts_with("file[")
        {
            what.as_str()
        } else if let (Some(_), Some(path)) = (stdio, what.strip_prefix('/')) {
            path
        } else {
            continue;
        };
        let fd = stdio.map_or(i as RawFd, |s| s[i]);
        args.push("--inherit-fd".into());
        args.push(format!("fd[{fd}]:{key}"));
    }
    args
}

fn prepare_root(rootfs: &Path) -> Result<()> {
    let c = crate::namespaces::cstring(&rootfs.display().to_string())?;
    sys::unshare(libc::CLONE_NEWNS)
        .map_err(|e| Error::sys("unshare(CLONE_NEWNS) for restore", e))?;
    sys::mount(None, c"/", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(|e| Error::sys("making / a slave mount for restore", e))?;
    sys::mount(Some(&c), &c, None, libc::MS_BIND | libc::MS_REC, None)
        .map_err(|e| Error::sys(format!("bind-mounting {}", rootfs.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cgroupns: bool) -> Spec {
        let mut v = crate::config::default_spec(false);
        if cgroupns {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "cgroup"}));
        }
        crate::config::parse(&v.to_string()).unwrap()
    }

    #[test]
    fn stdio_is_inherited_from_our_fds_or_the_callers() {
        let ext = ["/dev/null", "file[1f:a2]", "file[1f:a3]"].map(String::from);
        assert_eq!(
            inherit_fd_args(&ext, None),
            [
                "--inherit-fd",
                "fd[1]:file[1f:a2]",
                "--inherit-fd",
                "fd[2]:file[1f:a3]"
            ]
        );
        let desc: Vec<String> = ["pipe:[7]", "/run/fifo/x-stdout", "socket:[9]"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            inherit_fd_args(&desc, None),
            [
                "--inherit-fd",
                "fd[0]:pipe:[7]",
                "--inherit-fd",
                "fd[2]:socket:[9]"
            ]
        );
        assert_eq!(
            inherit_fd_args(&desc, Some([40, 41, 42])),
            [
                "--inherit-fd",
                "fd[40]:pipe:[7]",
                "--inherit-fd",
                "fd[41]:run/fifo/x-stdout",
                "--inherit-fd",
                "fd[42]:socket:[9]"
            ]
        );
    }

    /// The v2 `cgroup` bind (no cgroup namespace) is external to CRIU and
    /// restored from the new cgroup (the guest's dump failed: "has
    /// unreachable sharing"); a cgroup2 mount of its own, or a v1 host, is not.
    #[test]
    fn the_v2_cgroup_bind_is_an_external_mount() {
        let dir = Path::new("/sys/fs/cgroup/hulltest/c1");
        let cg = |s: &Spec, d| -> Vec<(String, String)> {
            external_mounts(s, d)
                .into_iter()
                .filter(|(dest, _)| dest == "/sys/fs/cgroup")
                .collect()
        };
        assert_eq!(
            cg(&spec(false), Some(dir)),
            [("/sys/fs/cgroup".to_string(), dir.display().to_string())]
        );
        assert!(cg(&spec(true), Some(dir)).is_empty());
        assert!(cg(&spec(false), None).is_empty());
    }
}
