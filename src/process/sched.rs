//! `process.ioPriority`, `process.scheduler` and `linux.personality`:
//! checked and turned into numbers in the parent, applied by the init.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

use crate::error::{Error, Result};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys;

/// ioprio value: (class << 13) | level.
pub fn io_priority(p: &LinuxIOPriority) -> Result<libc::c_int> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(Error::config(
            "process.ioPriority.priority",
            format!("must be from 0 to 7, got {level}"),
        ));
    }
    Ok((class << 13) | level as libc::c_int)
}

/// sched_setattr(2) parameters, plain numbers (no libc struct: Debug).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedPlan {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

pub fn scheduler(s: &Scheduler) -> Result<SchedPlan> {
    use LinuxSchedulerPolicy::*;
    let f = "process.scheduler";
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::config(
            format!("{f}.nice"),
            format!("must be from -20 to 19, got {nice}"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(s.policy(), SchedFifo | SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::config(
            format!("{f}.priority"),
            format!(
                "{} needs a priority from 1 to 99, got {priority}",
                policy_name(*s.policy())
            ),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::config(
            format!("{f}.priority"),
            format!("must be 0 for {}", policy_name(*s.policy())),
        ));
    }
    let mut flags = 0u64;
    for fl in s.flags().iter().flatten() {
        flags |= match fl {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(SchedPlan {
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

fn policy_name(p: LinuxSchedulerPolicy) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// personality(2) value for `linux.personality` (flags are not part of the
/// runtime-spec's defined set yet and are ignored with a warning).
pub fn personality(p: &LinuxPersonality, warn: &mut dyn FnMut(String)) -> libc::c_ulong {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        warn("linux.personality.flags: not supported; ignored".into());
    }
    match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }
}

/// Child side.
pub fn apply_sched(s: &SchedPlan) -> ChildResult<()> {
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: s.policy,
        sched_flags: s.flags,
        sched_nice: s.nice,
        sched_priority: s.priority,
        sched_runtime: s.runtime,
        sched_deadline: s.deadline,
        sched_period: s.period,
    };
    sys::sched_setattr_self(&attr).step(Step::Scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn io_priority_numbers() {
        let p: LinuxIOPriority =
            serde_json::from_value(json!({"class": "IOPRIO_CLASS_IDLE", "priority": 7})).unwrap();
        assert_eq!(io_priority(&p).unwrap(), (3 << 13) | 7);
        let p: LinuxIOPriority =
            serde_json::from_value(json!({"class": "IOPRIO_CLASS_BE", "priority": 8})).unwrap();
        assert!(io_priority(&p)
            .unwrap_err()
            .to_string()
            .contains("ioPriority.priority"));
    }

    #[test]
    fn scheduler_checks() {
        let s: Scheduler =
            serde_json::from_value(json!({"policy": "SCHED_FIFO", "priority": 0})).unwrap();
        assert!(scheduler(&s)
            .unwrap_err()
            .to_string()
            .contains("scheduler.priority"));
        let s: Scheduler =
            serde_json::from_value(json!({"policy": "SCHED_BATCH", "nice": 5})).unwrap();
        assert_eq!(scheduler(&s).unwrap().policy, 3);
    }
}
