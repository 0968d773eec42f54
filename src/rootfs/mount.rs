//! Child side: the mount steps of the plan, each onto a target opened
//! safely inside the rootfs and addressed as /proc/self/fd/N.

use std::os::fd::{AsRawFd, RawFd};

use super::{resolve, MountKind, MountOp, RootfsPlan};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys;

/// Set `/`'s propagation, make the rootfs's parent mount private and bind
/// the rootfs onto itself, so it is a mount point pivot_root can use.
pub fn prepare_root(plan: &RootfsPlan) -> ChildResult<()> {
    sys::mount(None, c"/", None, plan.root_propagation, None).step(Step::RootPropagation)?;
    sys::mount(None, &plan.parent_mount, None, libc::MS_PRIVATE, None).step(Step::ParentPrivate)?;
    sys::mount(
        Some(&plan.rootfs),
        &plan.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .step(Step::BindRootfs)
}

/// Mount every entry of the plan, in order.
pub fn mount_all(plan: &RootfsPlan, root: RawFd) -> ChildResult<()> {
    let mut res = resolve::Resolver::new(root);
    for (i, op) in plan.mounts.iter().enumerate() {
        mount_one(&mut res, op).map_err(|mut f| {
            f.idx = i as u32;
            f
        })?;
    }
    Ok(())
}

/// Run `f` on the target of `op` (resolved inside the root, created if
/// missing) as /proc/self/fd/N. `covers`: `f` mounts something on it.
fn on_target<T>(
    res: &mut resolve::Resolver,
    op: &MountOp,
    dir: bool,
    covers: bool,
    f: impl FnOnce(&std::ffi::CStr) -> sys::SysResult<T>,
    step: Step,
) -> ChildResult<T> {
    let dest = op.dest.to_bytes();
    let fd = res.ensure(dest, dir).step(Step::Mountpoint)?;
    let mut buf = [0u8; 64];
    let r = f(sys::proc_fd_path(&mut buf, fd)).step(step);
    sys::close(fd);
    if covers && r.is_ok() {
        res.mounted_on(dest);
    }
    r
}

fn mount_one(res: &mut resolve::Resolver, op: &MountOp) -> ChildResult<()> {
    match &op.kind {
        MountKind::Bind {
            source,
            recursive,
            dir,
            remount,
            idmapped,
        } => {
            let rec = if *recursive { libc::MS_REC } else { 0 };
            on_target(
                res,
                op,
                *dir,
                true,
                |t| match idmapped {
                    // Made and idmapped by the runtime: attach it.
                    Some(tree) => sys::move_mount_to(tree.as_raw_fd(), t),
                    None => sys::mount(Some(source), t, None, libc::MS_BIND | rec, None),
                },
                Step::Mount,
            )?;
            if let Some(flags) = remount {
                // Reopen: the old fd points below the new mount.
                on_target(
                    res,
                    op,
                    *dir,
                    false,
                    |t| {
                        sys::mount(
                            None,
                            t,
                            None,
                            flags | libc::MS_BIND | libc::MS_REMOUNT | rec,
                            None,
                        )
                    },
                    Step::Remount,
                )?;
            }
        }
        MountKind::Fs {
            source,
            fstype,
            flags,
            data,
            copyup,
        } => {
            // tmpcopyup: the image's directory, still reachable by this fd
            // once the tmpfs covers it.
            let under = if *copyup {
                Some(
                    res.ensure(op.dest.to_bytes(), true)
                        .step(Step::Mountpoint)?,
                )
            } else {
                None
            };
            let r = on_target(
                res,
                op,
                true,
                true,
                |t| sys::mount(Some(source), t, Some(fstype), *flags, data.as_deref()),
                Step::Mount,
            )
            .and_then(|()| match under {
                Some(fd) => copy_up(res, op, fd),
                None => Ok(()),
            });
            if let Some(fd) = under {
                sys::close(fd);
            }
            r?;
        }
        MountKind::Remount { flags } => {
            if *flags != 0 {
                on_target(
                    res,
                    op,
                    true,
                    false,
                    |t| sys::mount(None, t, None, flags | libc::MS_REMOUNT, None),
                    Step::Remount,
                )?;
            }
        }
    }
    if let Some((set, clr)) = op.attrs {
        // Over the whole tree now at the target: the submounts of an rbind
        // (or those under a v1 cgroup tmpfs) get them too.
        on_target(
            res,
            op,
            op_is_dir(op),
            false,
            |t| sys::mount_setattr_recursive(t, set, clr),
            Step::MountAttr,
        )?;
    }
    for &p in &op.propagation {
        on_target(
            res,
            op,
            true,
            false,
            |t| sys::mount(None, t, None, p, None),
            Step::MountPropagation,
        )?;
    }
    Ok(())
}

/// Whether the target of `op` is a directory (a bind of a file is not).
fn op_is_dir(op: &MountOp) -> bool {
    match &op.kind {
        MountKind::Bind { dir, .. } => *dir,
        _ => true,
    }
}

/// Copy the image's directory `under` (O_PATH, below the new mount) into
/// the tmpfs now mounted at the target.
fn copy_up(res: &mut resolve::Resolver, op: &MountOp, under: RawFd) -> ChildResult<()> {
    let dir = libc::O_RDONLY | libc::O_DIRECTORY;
    let src = sys::openat(under, c".", dir, 0).step(Step::TmpCopyUp)?;
    let r = on_target(
        res,
        op,
        true,
        false,
        |t| {
            let dst = sys::open(t, dir, 0)?;
            let r = super::copyup::copy_dir(src, dst);
            sys::close(dst);
            r
        },
        Step::TmpCopyUp,
    );
    sys::close(src);
    r
}
