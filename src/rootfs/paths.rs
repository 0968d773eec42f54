//! Child side, after pivot_root: masked paths, read-only paths, the
//! read-only root and the final rootfs propagation.

use super::RootfsPlan;
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys::{self, Errno};

/// Hide each masked path: /dev/null over files, an empty read-only tmpfs
/// over directories; paths that do not exist are skipped.
pub fn mask(plan: &RootfsPlan) -> ChildResult<()> {
    for (i, p) in plan.masked.iter().enumerate() {
        match sys::mount(Some(c"/dev/null"), p, None, libc::MS_BIND, None) {
            Ok(()) | Err(Errno(libc::ENOENT)) => {}
            Err(Errno(libc::ENOTDIR)) => {
                sys::mount(Some(c"tmpfs"), p, Some(c"tmpfs"), libc::MS_RDONLY, None)
                    .step_at(Step::MaskPath, i)?
            }
            Err(e) => return Err(e).step_at(Step::MaskPath, i),
        }
    }
    Ok(())
}

/// Make each read-only path a read-only bind mount of itself.
pub fn readonly(plan: &RootfsPlan) -> ChildResult<()> {
    for (i, p) in plan.readonly_paths.iter().enumerate() {
        match sys::mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None) {
            Ok(()) => {}
            Err(Errno(libc::ENOENT)) => continue,
            Err(e) => return Err(e).step_at(Step::ReadonlyPath, i),
        }
        let flags = sys::mount_flags_of(p).step_at(Step::ReadonlyPath, i)?;
        sys::mount(
            None,
            p,
            None,
            flags | libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )
        .step_at(Step::ReadonlyPath, i)?;
    }
    Ok(())
}

/// root.readonly and linux.rootfsPropagation.
pub fn finish_root(plan: &RootfsPlan) -> ChildResult<()> {
    if plan.readonly {
        let flags = sys::mount_flags_of(c"/").step(Step::ReadonlyRoot)?;
        sys::mount(
            None,
            c"/",
            None,
            flags | libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )
        .step(Step::ReadonlyRoot)?;
    }
    if let Some(p) = plan.final_propagation {
        sys::mount(None, c"/", None, p, None).step(Step::RootfsPropagation)?;
    }
    Ok(())
}
