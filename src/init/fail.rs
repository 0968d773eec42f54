//! Child-side failures: which step failed, on which item, with which errno.
//! The child sends these three numbers; the parent turns them into a
//! sentence using the config it still has (so the child never formats).

use crate::sys::Errno;

/// Declares [`Step`] and its decoder from one list, so a new step cannot be
/// left out of `from_u32` (the parent would report it as a protocol error).
macro_rules! steps {
    ($($(#[$doc:meta])* $name:ident $(= $val:literal)?,)+) => {
        /// One step of building the container. The index (`Fail::idx`) says which
        /// item of a list (mount, device, path, rlimit...) the step was working on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub enum Step {
            $($(#[$doc])* $name $(= $val)?,)+
        }

        impl Step {
            pub fn from_u32(v: u32) -> Option<Step> {
                [$(Step::$name),+].into_iter().find(|s| *s as u32 == v)
            }
        }
    };
}

steps! {
    Protocol = 1,
    JoinUserns,
    UnshareUserns,
    BecomeNsRoot,
    JoinNamespace,
    Unshare,
    ForkInit,
    RootPropagation,
    ParentPrivate,
    BindRootfs,
    OpenRootfs,
    Mountpoint,
    Mount,
    Remount,
    MountPropagation,
    Device,
    DevSymlink,
    CwdCreate,
    PivotRoot,
    MoveRoot,
    Pty,
    Console,
    MaskPath,
    ReadonlyPath,
    ReadonlyRoot,
    RootfsPropagation,
    Hostname,
    Domainname,
    Sysctl,
    OomScoreAdj,
    Rlimit,
    Keyring,
    Bounding,
    KeepCaps,
    Setgroups,
    Setgid,
    Setuid,
    Capset,
    Ambient,
    NoNewPrivs,
    Chdir,
    FindExecutable,
    PreserveFds,
    Setsid,
    Seccomp,
    IoPriority,
    Scheduler,
    Personality,
    CwdOutsideRoot,
    Lsm,
    CgroupJoin,
    /// RLIMIT_NOFILE leaves no fd for the exec fifo.
    FdRoom,
    /// mount_setattr of a mount's recursive attributes.
    MountAttr,
    /// Writing linux.timeOffsets to /proc/self/timens_offsets.
    TimeOffsets,
    /// Copying the image's files into a `tmpcopyup` tmpfs.
    TmpCopyUp,
}

/// A failed step in a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fail {
    pub step: Step,
    pub idx: u32,
    pub errno: Errno,
}

pub type ChildResult<T> = Result<T, Fail>;

/// Tag a syscall result with the step (and item index) it belongs to.
pub trait StepContext<T> {
    fn step(self, step: Step) -> ChildResult<T>;
    fn step_at(self, step: Step, idx: usize) -> ChildResult<T>;
}

impl<T> StepContext<T> for Result<T, Errno> {
    fn step(self, step: Step) -> ChildResult<T> {
        self.step_at(step, 0)
    }
    fn step_at(self, step: Step, idx: usize) -> ChildResult<T> {
        self.map_err(|errno| Fail {
            step,
            idx: idx as u32,
            errno,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_round_trips() {
        for v in 1..=55 {
            let s = Step::from_u32(v).unwrap();
            assert_eq!(s as u32, v);
        }
        assert!(Step::from_u32(56).is_none());
    }
}
