//! The container's root filesystem: the plan (built by the parent from the
//! config, before the fork) and the child-side steps that carry it out —
//! mounts, devices, pivot_root, masked and read-only paths.
//!
//! Order, as runc: make `/` a slave (or the configured propagation), bind the
//! rootfs onto itself, mount `mounts[]` in order, create devices and /dev
//! links, [hooks], pivot_root, console, masked paths, read-only paths,
//! read-only root, rootfs propagation.

pub mod copyup;
pub mod devices;
pub mod idmap;
pub mod mount;
pub mod options;
pub mod paths;
pub mod pivot;
pub mod resolve;

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libc::c_ulong;
use oci_spec::runtime::{LinuxDeviceType, Spec};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::namespaces::{cstring, NsPlan};

/// What one mount step does.
#[derive(Debug)]
pub enum MountKind {
    /// Bind `source` onto the target; then remount with `remount` flags.
    Bind {
        source: CString,
        recursive: bool,
        dir: bool,
        remount: Option<c_ulong>,
        /// An idmapped mount: the detached, idmapped copy of `source`
        /// (made by the runtime, see [`idmap`]) to attach instead.
        idmapped: Option<OwnedFd>,
    },
    /// Mount a filesystem (proc, tmpfs, sysfs, devpts, mqueue, cgroup2...).
    Fs {
        source: CString,
        fstype: CString,
        flags: c_ulong,
        data: Option<CString>,
        /// `tmpcopyup`: copy what the image has at the destination into
        /// the new tmpfs (see [`copyup`]).
        copyup: bool,
    },
    /// Remount an earlier mount at the same destination with these flags.
    Remount { flags: c_ulong },
}

/// One step of the mount list.
#[derive(Debug)]
pub struct MountOp {
    /// Absolute path inside the container.
    pub dest: CString,
    pub kind: MountKind,
    /// Recursive attributes (rro, rnoexec, ...): mount_setattr's (set,
    /// clear) bits, applied with AT_RECURSIVE to the whole tree mounted.
    pub attrs: Option<(u64, u64)>,
    pub propagation: Vec<c_ulong>,
    /// Index in the config's mounts[], for error messages.
    pub index: usize,
}

/// A device node to create (or, in a user namespace, bind from the host).
#[derive(Debug)]
pub struct DeviceOp {
    pub path: CString,
    pub mode: libc::mode_t,
    pub dev: libc::dev_t,
    pub uid: u32,
    pub gid: u32,
    pub host: CString,
}

/// Everything the init needs to build the root filesystem.
#[derive(Debug)]
pub struct RootfsPlan {
    pub rootfs: CString,
    /// Propagation applied to `/` first (default MS_SLAVE|MS_REC).
    pub root_propagation: c_ulong,
    /// linux.rootfsPropagation, applied to the new root at the end.
    pub final_propagation: Option<c_ulong>,
    /// The mount point holding the rootfs (made private so pivot_root works).
    pub parent_mount: CString,
    pub mounts: Vec<MountOp>,
    pub setup_dev: bool,
    pub bind_devices: bool,
    pub devices: Vec<DeviceOp>,
    /// (target, link path) pairs created in /dev.
    pub dev_links: Vec<(CString, CString)>,
    pub no_pivot: bool,
    pub readonly: bool,
    pub masked: Vec<CString>,
    pub readonly_paths: Vec<CString>,
    /// process.cwd, created if missing.
    pub cwd: CString,
    pub console: bool,
}

fn path_cstring(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Usage(format!("{} contains a NUL byte", p.display())))
}

/// Inputs that do not come from config.json.
pub struct RootfsInputs<'a> {
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    pub no_pivot: bool,
}

impl RootfsPlan {
    pub fn build(spec: &Spec, ns: &NsPlan, inp: &RootfsInputs) -> Result<RootfsPlan> {
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::config("linux", "required"))?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::config("process", "required"))?;
        let (root_propagation, final_propagation) = match linux.rootfs_propagation() {
            None => (libc::MS_SLAVE | libc::MS_REC, None),
            Some(v) if v.is_empty() => (libc::MS_SLAVE | libc::MS_REC, None),
            Some(v) => {
                let f = options::rootfs_propagation(v).ok_or_else(|| {
                    Error::config(
                        "linux.rootfsPropagation",
                        format!("unknown propagation {v:?} (shared, slave, private, unbindable and their r-forms)"),
                    )
                })?;
                (f | libc::MS_REC, Some(f))
            }
        };
        let mut mounts = Vec::new();
        let mut setup_dev = true;
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let opts = options::parse(m.options().as_deref().unwrap_or(&[]));
            let typ = m.typ().as_deref().unwrap_or("");
            let bind = opts.bind || typ == "bind";
            if m.destination() == Path::new("/dev") && bind {
                setup_dev = false;
            }
            let first = mounts.len();
            if bind {
                mounts.push(bind_mount(m, &opts, i, ns, inp.bundle)?);
            } else {
                refuse_idmap(m, &opts, i)?;
                if typ == "cgroup" {
                    cgroup_mounts(&mut mounts, m.destination(), &opts, ns, inp.cgroup, i)?;
                } else {
                    mounts.push(fs_mount(m, &opts, typ, i)?);
                }
            }
            // The recursive attributes go on after everything this entry
            // mounts (a v1 cgroup mount is a tmpfs with binds below it),
            // over the whole tree at its destination.
            if opts.has_attrs() && mounts.len() > first {
                let attrs = Some((opts.attr_set, opts.attr_clr));
                let dest = path_cstring(m.destination())?;
                match mounts.last_mut() {
                    Some(last) if last.dest == dest => last.attrs = attrs,
                    _ => mounts.push(MountOp {
                        dest,
                        kind: MountKind::Remount { flags: 0 },
                        attrs,
                        propagation: Vec::new(),
                        index: i,
                    }),
                }
            }
        }
        // mknod is refused in any user namespace but the initial one: a new
        // one, or the one hull itself runs in (rootless podman's), as runc.
        let bind_devices = ns.in_userns() || crate::rootless::running_in_userns();
        let devices = if setup_dev {
            device_list(linux.devices().as_deref().unwrap_or(&[]))?
        } else {
            Vec::new()
        };
        let mut dev_links = Vec::new();
        if setup_dev {
            for (target, link) in [
                ("/proc/self/fd", "/dev/fd"),
                ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"),
                ("/proc/self/fd/2", "/dev/stderr"),
                ("pts/ptmx", "/dev/ptmx"),
            ] {
                dev_links.push((cstring(target)?, cstring(link)?));
            }
            if Path::new("/proc/kcore").exists() {
                dev_links.push((cstring("/proc/kcore")?, cstring("/dev/core")?));
            }
        }
        let list = |v: &Option<Vec<String>>| -> Result<Vec<CString>> {
            v.iter().flatten().map(|p| cstring(p)).collect()
        };
        Ok(RootfsPlan {
            rootfs: path_cstring(inp.rootfs)?,
            root_propagation,
            final_propagation,
            parent_mount: path_cstring(&parent_mount(inp.rootfs))?,
            mounts,
            setup_dev,
            bind_devices,
            devices,
            dev_links,
            no_pivot: inp.no_pivot,
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            masked: list(linux.masked_paths())?,
            readonly_paths: list(linux.readonly_paths())?,
            cwd: path_cstring(process.cwd())?,
            console: process.terminal().unwrap_or(false),
        })
    }
}

impl RootfsPlan {
    /// The sentence for a failed mount step where a generic "mounts[i]:
    /// ... on DEST: errno" would not say why; None for the others.
    pub fn describe_failure(
        &self,
        ns: &NsPlan,
        step: crate::init::fail::Step,
        idx: usize,
        errno: crate::sys::Errno,
    ) -> Option<String> {
        use crate::init::fail::Step;
        let op = self.mounts.get(idx)?;
        let (i, dest) = (op.index, op.dest.to_string_lossy());
        match (step, &op.kind) {
            (Step::MountAttr, _) => {
                // The kernel locks what a less privileged mount namespace
                // got from the host: its access-time mode and restrictions.
                let hint = if errno.0 == libc::EPERM && ns.in_userns() {
                    " (in a user namespace the access-time mode (rnoatime, rrelatime, ...) of mounts from the host is locked, and so are their ro, nosuid, nodev, noexec, nosymfollow: only restricting options apply)"
                } else {
                    ""
                };
                Some(format!(
                    "mounts[{i}] on {dest}: applying its recursive options (rro, rnosuid, rnoexec, ...) with mount_setattr: {errno}{hint}"
                ))
            }
            (Step::TmpCopyUp, _) => Some(format!(
                "mounts[{i}] on {dest}: tmpcopyup: copying the image's files into the tmpfs: {errno}"
            )),
            (Step::Mount, MountKind::Fs { fstype, data, .. }) => {
                let fs = fstype.to_string_lossy();
                let hint = match (fs.as_ref(), errno.0) {
                    // The kernel ties sysfs to the network namespace and
                    // mqueue to the IPC one: a user namespace may mount
                    // them only over namespaces of its own (runc refuses
                    // these configs the same way).
                    ("sysfs", libc::EPERM) if ns.in_userns() && !ns.new_net => {
                        " (a user namespace can mount sysfs only with a network namespace of its own: add one, or bind /sys with \"rbind\" as `hull spec --rootless` does)".to_string()
                    }
                    ("mqueue", libc::EPERM)
                        if ns.in_userns() && ns.unshare_flags & libc::CLONE_NEWIPC == 0 =>
                    {
                        " (a user namespace can mount mqueue only with an IPC namespace of its own)".to_string()
                    }
                    (_, libc::EINVAL) => match data {
                        Some(d) => format!(
                            " (filesystem data {:?}: option words hull does not know go to {fs}, as runc passes them)",
                            d.to_string_lossy()
                        ),
                        None => String::new(),
                    },
                    _ => String::new(),
                };
                Some(format!("mounts[{i}]: {fs} mount on {dest}: {errno}{hint}"))
            }
            _ => None,
        }
    }
}

/// A bind mount (`bind`/`rbind`, or type `bind`): idmapped if it asks to be.
fn bind_mount(
    m: &oci_spec::runtime::Mount,
    opts: &options::MountOptions,
    i: usize,
    ns: &NsPlan,
    bundle: &Path,
) -> Result<MountOp> {
    // The kernel takes no filesystem data with MS_BIND: an option hull does
    // not know would be dropped without a word (runc 1.1.5 does that).
    if let Some((word, j)) = opts.data.iter().zip(&opts.data_index).next() {
        return Err(Error::config(
            format!("mounts[{i}].options[{j}]"),
            format!(
                "{word:?} is not a mount option hull knows, and a bind mount takes no filesystem data (see `hull features` for the options)"
            ),
        ));
    }
    let src = m.source().clone().unwrap_or_default();
    let src = if src.is_absolute() {
        src
    } else {
        bundle.join(src)
    };
    let meta = std::fs::metadata(&src).map_err(|e| {
        Error::config(
            format!("mounts[{i}].source"),
            format!("{}: {e}", src.display()),
        )
    })?;
    let source = path_cstring(&src)?;
    let idmapped = idmapped_tree(m, opts, i, ns, &source)?;
    let extra = opts.flags & !(libc::MS_REMOUNT);
    Ok(MountOp {
        dest: path_cstring(m.destination())?,
        kind: MountKind::Bind {
            source,
            recursive: opts.recursive,
            dir: meta.is_dir(),
            remount: (extra != 0).then_some(extra),
            idmapped,
        },
        attrs: None,
        propagation: opts.propagation.clone(),
        index: i,
    })
}

/// The detached idmapped copy of a bind mount's source, if the entry has
/// `uidMappings`/`gidMappings` or the `idmap`/`ridmap` option (without
/// mappings: the container's user namespace's, runtime-spec 1.2).
fn idmapped_tree(
    m: &oci_spec::runtime::Mount,
    opts: &options::MountOptions,
    i: usize,
    ns: &NsPlan,
    source: &CString,
) -> Result<Option<OwnedFd>> {
    let (uids, gids) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    if uids.is_none() && gids.is_none() && opts.idmap.is_none() {
        return Ok(None);
    }
    let what = format!(
        "mounts[{i}]: bind mount of {} on {}",
        source.to_string_lossy(),
        m.destination().display()
    );
    let ridmap = opts.idmap.is_some_and(|(r, _)| r);
    let (uid_text, gid_text);
    let mapping = match (uids, gids) {
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
            uid_text = crate::namespaces::id_map_text(u);
            gid_text = crate::namespaces::id_map_text(g);
            idmap::Mapping::Maps {
                uid: &uid_text,
                gid: &gid_text,
            }
        }
        (None, None) => match ns.user {
            crate::namespaces::UserNs::Join(fd) => idmap::Mapping::Userns(fd),
            crate::namespaces::UserNs::New if !ns.uid_map.is_empty() && !ns.gid_map.is_empty() => {
                idmap::Mapping::Maps {
                    uid: &ns.uid_map,
                    gid: &ns.gid_map,
                }
            }
            _ => {
                let j = opts.idmap.map_or(0, |(_, j)| j);
                return Err(Error::config(
                    format!("mounts[{i}].options[{j}]"),
                    "idmap without the mount's uidMappings/gidMappings takes the container's user namespace mappings, and it has none",
                ));
            }
        },
        (Some([]), _) => return Err(Error::config(format!("mounts[{i}].uidMappings"), "empty")),
        (_, Some([])) => return Err(Error::config(format!("mounts[{i}].gidMappings"), "empty")),
        (Some(_), None) => {
            return Err(Error::config(
                format!("mounts[{i}].gidMappings"),
                "required with uidMappings",
            ))
        }
        (None, Some(_)) | (Some(_), Some(_)) => {
            return Err(Error::config(
                format!("mounts[{i}].uidMappings"),
                "required with gidMappings",
            ))
        }
    };
    idmap::detached_tree(&what, source, opts.recursive, ridmap, mapping).map(Some)
}

/// Idmapping is for bind mounts only (runc 1.2 and the kernel alike).
fn refuse_idmap(
    m: &oci_spec::runtime::Mount,
    opts: &options::MountOptions,
    i: usize,
) -> Result<()> {
    if let Some((_, j)) = opts.idmap {
        return Err(Error::config(
            format!("mounts[{i}].options[{j}]"),
            "idmap and ridmap are for bind mounts only",
        ));
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(Error::config(
            format!("mounts[{i}].uidMappings"),
            "idmapped mounts are bind mounts only (add \"rbind\" or \"bind\")",
        ));
    }
    Ok(())
}

/// A filesystem mount (proc, tmpfs, sysfs, mqueue...): the words hull does
/// not know go to the filesystem as data, as runc passes them, and the
/// filesystem refuses what it does not know.
fn fs_mount(
    m: &oci_spec::runtime::Mount,
    opts: &options::MountOptions,
    typ: &str,
    i: usize,
) -> Result<MountOp> {
    if typ.is_empty() {
        return Err(Error::config(
            format!("mounts[{i}].type"),
            "required for a non-bind mount",
        ));
    }
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let copyup = opts.tmpcopyup.is_some() && typ == "tmpfs";
    if let Some(j) = opts.tmpcopyup.filter(|_| !copyup) {
        // As runc: the extension is for tmpfs; said, not dropped silently.
        crate::logging::warn(&format!(
            "mounts[{i}].options[{j}]: tmpcopyup applies to tmpfs only, not to this {typ} mount: ignored"
        ));
    }
    Ok(MountOp {
        dest: path_cstring(m.destination())?,
        kind: MountKind::Fs {
            source: cstring(&source)?,
            fstype: cstring(typ)?,
            flags: opts.flags,
            data: if opts.data.is_empty() {
                None
            } else {
                Some(cstring(&opts.data.join(","))?)
            },
            copyup,
        },
        attrs: None,
        propagation: opts.propagation.clone(),
        index: i,
    })
}

/// A `cgroup` mount: on v1 a tmpfs with each hierarchy's container cgroup
/// bound under it (so the container sees only its own cgroup); on v2 a
/// cgroup2 mount inside a new cgroup namespace, else a bind of the cgroup.
fn cgroup_mounts(
    out: &mut Vec<MountOp>,
    dest: &Path,
    opts: &options::MountOptions,
    ns: &NsPlan,
    cg: &Cgroup,
    index: usize,
) -> Result<()> {
    let ro = opts.flags & libc::MS_RDONLY;
    let base = opts.flags & !libc::MS_RDONLY;
    // From the layout, not from the directory: it may not exist yet (the v1
    // ones are made after the fork, systemd makes its scope later still).
    if cg.v2 {
        // Unprivileged, a fresh cgroup2 mount can be refused (EBUSY under a
        // host mount with nsdelegate, EPERM), where runc then binds the
        // cgroup: hull binds it from the start. It is the subtree the new
        // cgroup namespace would show: the container's cgroup, or the
        // caller's where rootless left it out.
        let rootless = crate::rootless::euid() != 0;
        let bind_source = cg
            .paths
            .first()
            .cloned()
            .or_else(|| rootless.then(crate::cgroups::own_v2_dir).flatten());
        if ns.new_cgroup && !rootless {
            out.push(MountOp {
                dest: path_cstring(dest)?,
                kind: MountKind::Fs {
                    source: cstring("cgroup2")?,
                    fstype: cstring("cgroup2")?,
                    flags: opts.flags,
                    data: None,
                    copyup: false,
                },
                attrs: None,
                propagation: opts.propagation.clone(),
                index,
            });
        } else if let Some(p) = &bind_source {
            out.push(MountOp {
                dest: path_cstring(dest)?,
                kind: MountKind::Bind {
                    source: path_cstring(p)?,
                    recursive: false,
                    dir: true,
                    remount: Some(opts.flags),
                    idmapped: None,
                },
                attrs: None,
                propagation: opts.propagation.clone(),
                index,
            });
        }
        return Ok(());
    }
    out.push(MountOp {
        dest: path_cstring(dest)?,
        kind: MountKind::Fs {
            source: cstring("tmpfs")?,
            fstype: cstring("tmpfs")?,
            flags: base,
            data: Some(cstring("mode=755")?),
            copyup: false,
        },
        attrs: None,
        propagation: Vec::new(),
        index,
    });
    // The v1 hierarchies only: like runc, a hybrid host's cgroup2 mount is
    // not shown to the container.
    for p in cg
        .paths
        .iter()
        .filter(|p| cg.unified.as_deref() != Some(p.as_path()))
    {
        // The hierarchy's mount directory name: cpu, memory, systemd, ...
        let Some(name) = p.ancestors().find_map(|a| {
            let parent = a.parent()?;
            (parent == Path::new("/sys/fs/cgroup")).then(|| a.file_name())?
        }) else {
            continue;
        };
        out.push(MountOp {
            dest: path_cstring(&dest.join(name))?,
            kind: MountKind::Bind {
                source: path_cstring(p)?,
                recursive: false,
                dir: true,
                remount: Some(opts.flags),
                idmapped: None,
            },
            attrs: None,
            propagation: Vec::new(),
            index,
        });
    }
    if ro != 0 {
        out.push(MountOp {
            dest: path_cstring(dest)?,
            kind: MountKind::Remount {
                flags: base | libc::MS_RDONLY,
            },
            attrs: None,
            propagation: Vec::new(),
            index,
        });
    }
    if !opts.propagation.is_empty() {
        out.push(MountOp {
            dest: path_cstring(dest)?,
            kind: MountKind::Remount { flags: 0 },
            attrs: None,
            propagation: opts.propagation.clone(),
            index,
        });
    }
    Ok(())
}

/// The default devices every container gets, plus linux.devices.
fn device_list(extra: &[oci_spec::runtime::LinuxDevice]) -> Result<Vec<DeviceOp>> {
    let mut out = Vec::new();
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let path = format!("/dev/{name}");
        out.push(DeviceOp {
            path: cstring(&path)?,
            mode: libc::S_IFCHR | 0o666,
            dev: libc::makedev(major, minor),
            uid: 0,
            gid: 0,
            host: cstring(&path)?,
        });
    }
    for (i, d) in extra.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let p = d.path();
        if !p.is_absolute() || !p.starts_with("/dev") {
            return Err(Error::config(
                format!("{field}.path"),
                format!("{} must be an absolute path under /dev", p.display()),
            ));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::config(
                    format!("{field}.type"),
                    "must be one of c, b, u, p",
                ))
            }
        };
        let (major, minor) = (d.major(), d.minor());
        if kind != libc::S_IFIFO && (major < 0 || minor < 0) {
            return Err(Error::config(
                format!("{field}.major"),
                "major and minor must be >= 0",
            ));
        }
        let op = DeviceOp {
            path: path_cstring(p)?,
            mode: kind | (d.file_mode().unwrap_or(0o666) & 0o7777),
            dev: libc::makedev(major.max(0) as u32, minor.max(0) as u32),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            host: path_cstring(p)?,
        };
        out.retain(|o: &DeviceOp| o.path != op.path);
        out.push(op);
    }
    Ok(out)
}

/// The mount point that holds `path` (canonical): the topmost ancestor
/// still on the same mount (statx mount ids: no mountinfo to read and
/// format), else the longest matching mount in mountinfo.
fn parent_mount(path: &Path) -> PathBuf {
    let id = |p: &Path| {
        cstring(&p.to_string_lossy())
            .ok()
            .and_then(|c| crate::sys::mount_id(&c))
    };
    if let Some(mine) = id(path) {
        let mut top = path;
        for a in path.ancestors().skip(1) {
            match id(a) {
                Some(m) if m == mine => top = a,
                Some(_) => return top.to_path_buf(),
                None => break,
            }
        }
        if top == Path::new("/") {
            return top.to_path_buf();
        }
    }
    parent_mount_from_mountinfo(path)
}

fn parent_mount_from_mountinfo(path: &Path) -> PathBuf {
    let text = crate::sys::read_text("/proc/self/mountinfo").unwrap_or_default();
    let mut best = PathBuf::from("/");
    for line in text.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = Path::new(mp);
        if path.starts_with(mp) && mp.as_os_str().len() > best.as_os_str().len() {
            best = mp.to_path_buf();
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statx walk finds the same mount point as mountinfo.
    #[test]
    fn parent_mount_matches_mountinfo() {
        for p in [
            "/",
            "/tmp",
            "/proc/self",
            "/proc/sys/kernel",
            "/dev/shm",
            "/sys/fs/cgroup",
        ] {
            let p = Path::new(p);
            let Ok(p) = p.canonicalize() else { continue };
            assert_eq!(
                parent_mount(&p),
                parent_mount_from_mountinfo(&p),
                "{}",
                p.display()
            );
        }
    }

    /// Recursive attributes on a v1 `cgroup` mount come after the binds of
    /// its hierarchies (so they get them too), on its destination.
    #[test]
    fn recursive_attributes_follow_the_whole_v1_cgroup_mount() {
        let mut v = crate::config::default_spec(false);
        for m in v["mounts"].as_array_mut().unwrap() {
            if m["type"] == "cgroup" {
                m["options"] = serde_json::json!(["nosuid", "rnoexec"]);
            }
        }
        let spec = crate::config::parse(&v.to_string()).unwrap();
        let ns = NsPlan::build(&spec).unwrap();
        let mut cgroup = Cgroup::default();
        cgroup.paths = vec![
            PathBuf::from("/sys/fs/cgroup/memory/c1"),
            PathBuf::from("/sys/fs/cgroup/pids/c1"),
        ];
        let tmp = std::env::temp_dir();
        let plan = RootfsPlan::build(
            &spec,
            &ns,
            &RootfsInputs {
                bundle: &tmp,
                rootfs: &tmp,
                cgroup: &cgroup,
                no_pivot: false,
            },
        )
        .unwrap();
        let ops: Vec<_> = plan
            .mounts
            .iter()
            .filter(|m| m.dest.as_bytes().starts_with(b"/sys/fs/cgroup"))
            .collect();
        assert_eq!(ops.len(), 4, "{ops:?}");
        let last = ops.last().unwrap();
        assert_eq!(last.dest.as_bytes(), b"/sys/fs/cgroup");
        assert_eq!(last.attrs, Some((crate::sys::MOUNT_ATTR_NOEXEC, 0)));
        assert!(ops[..3].iter().all(|o| o.attrs.is_none()));
    }

    /// The `cgroup` mount follows the host's layout even when the
    /// container's directories do not exist yet (systemd makes its scope
    /// after the plan is built): on a v2 host with a cgroup namespace it is
    /// a cgroup2 mount, never the v1 tmpfs of binds.
    #[test]
    fn cgroup_mount_on_v2_needs_no_directory() {
        let mut v = crate::config::default_spec(false);
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "cgroup"}));
        let spec = crate::config::parse(&v.to_string()).unwrap();
        let ns = NsPlan::build(&spec).unwrap();
        let dir = PathBuf::from("/nonexistent/hull-test/c1");
        let mut cgroup = Cgroup::default();
        cgroup.paths = vec![dir.clone()];
        cgroup.controllers = vec![Vec::new()];
        cgroup.unified = Some(dir);
        cgroup.v2 = true;
        let tmp = std::env::temp_dir();
        let plan = RootfsPlan::build(
            &spec,
            &ns,
            &RootfsInputs {
                bundle: &tmp,
                rootfs: &tmp,
                cgroup: &cgroup,
                no_pivot: false,
            },
        )
        .unwrap();
        let at_cgroup: Vec<_> = plan
            .mounts
            .iter()
            .filter(|m| m.dest.as_bytes() == b"/sys/fs/cgroup")
            .collect();
        assert!(
            matches!(&at_cgroup[0].kind, MountKind::Fs { fstype, .. } if fstype.as_bytes() == b"cgroup2"),
            "{at_cgroup:?}"
        );
    }
}
