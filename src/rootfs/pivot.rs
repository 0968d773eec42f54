//! Child side: switch the process's root to the container rootfs.

use super::RootfsPlan;
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys;

/// pivot_root into the rootfs (or, with --no-pivot, move it over `/` and
/// chroot), leaving the host's root unreachable.
pub fn enter_root(plan: &RootfsPlan) -> ChildResult<()> {
    sys::chdir(&plan.rootfs).step(Step::PivotRoot)?;
    if plan.no_pivot {
        sys::mount(Some(&plan.rootfs), c"/", None, libc::MS_MOVE, None).step(Step::MoveRoot)?;
        sys::chroot(c".").step(Step::MoveRoot)?;
    } else {
        // pivot_root(".", ".") stacks the old root on top of the new one;
        // make it a slave so the detach does not propagate to the host,
        // then lazily unmount it.
        sys::pivot_root(c".", c".").step(Step::PivotRoot)?;
        sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None).step(Step::PivotRoot)?;
        sys::umount2(c".", libc::MNT_DETACH).step(Step::PivotRoot)?;
    }
    sys::chdir(c"/").step(Step::PivotRoot)
}
