//! Namespaces: which ones the container creates and which it joins, the
//! uid/gid maps, and the child-side code that enters them (user first).

use std::ffi::CString;
use std::os::fd::{IntoRawFd, RawFd};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::init::fail::{ChildResult, Step, StepContext};
use crate::sys;

/// The kernel's CLONE_NEW* flag for a namespace type.
pub fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The config's name for a namespace type (as in linux.namespaces[].type).
pub fn type_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNs {
    /// Stay in the runtime's user namespace.
    Host,
    /// Create one; the parent writes the id maps.
    New,
    /// Join the one open at this fd.
    Join(RawFd),
}

/// A namespace to join by path, opened before the fork.
#[derive(Debug)]
pub struct Join {
    pub fd: RawFd,
    pub nstype: libc::c_int,
    /// Index in linux.namespaces, for error messages.
    pub index: usize,
}

/// Everything the init (or stage 1) needs to enter the container's namespaces.
#[derive(Debug)]
pub struct NsPlan {
    pub user: UserNs,
    pub joins: Vec<Join>,
    /// CLONE_NEW* flags to unshare (all but user).
    pub unshare_flags: libc::c_int,
    pub uid_map: String,
    pub gid_map: String,
    /// The container has a mount namespace of its own (new or joined).
    pub has_mount_ns: bool,
    pub new_net: bool,
    pub new_cgroup: bool,
    /// Unprivileged caller: the uid (gid) map is more than its own id, so
    /// the setuid helper newuidmap (newgidmap) writes it.
    pub uid_helper: bool,
    pub gid_helper: bool,
    /// linux.timeOffsets as /proc/self/timens_offsets lines, written by
    /// stage 1 right after it creates the time namespace (before the init,
    /// the first process in it, is forked).
    pub time_offsets: Option<CString>,
}

impl NsPlan {
    pub fn build(spec: &Spec) -> Result<NsPlan> {
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::config("linux", "required"))?;
        let mut plan = NsPlan {
            user: UserNs::Host,
            joins: Vec::new(),
            unshare_flags: 0,
            uid_map: id_map_text(linux.uid_mappings().as_deref().unwrap_or(&[])),
            gid_map: id_map_text(linux.gid_mappings().as_deref().unwrap_or(&[])),
            has_mount_ns: false,
            new_net: false,
            new_cgroup: false,
            uid_helper: false,
            gid_helper: false,
            time_offsets: None,
        };
        let (euid, egid) = (crate::rootless::euid(), crate::rootless::egid());
        if euid != 0 {
            let uids = linux.uid_mappings().as_deref().unwrap_or(&[]);
            let gids = linux.gid_mappings().as_deref().unwrap_or(&[]);
            plan.uid_helper = !crate::rootless::writable_directly(uids, euid);
            plan.gid_helper = !crate::rootless::writable_directly(gids, egid);
        }
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            let t = ns.typ();
            if t == LinuxNamespaceType::Mount {
                plan.has_mount_ns = true;
            }
            match ns.path() {
                None => {
                    if t == LinuxNamespaceType::User {
                        plan.user = UserNs::New;
                    } else {
                        plan.unshare_flags |= clone_flag(t);
                    }
                    plan.new_net |= t == LinuxNamespaceType::Network;
                    plan.new_cgroup |= t == LinuxNamespaceType::Cgroup;
                }
                Some(path) => {
                    let file = std::fs::File::open(path).map_err(|e| {
                        Error::config(
                            format!("linux.namespaces[{i}].path"),
                            format!(
                                "cannot open {} namespace {}: {e}",
                                type_name(t),
                                path.display()
                            ),
                        )
                    })?;
                    let fd = file.into_raw_fd();
                    if t == LinuxNamespaceType::User {
                        plan.user = UserNs::Join(fd);
                    } else {
                        plan.joins.push(Join {
                            fd,
                            nstype: clone_flag(t),
                            index: i,
                        });
                    }
                }
            }
        }
        plan.time_offsets = time_offsets(linux, plan.unshare_flags & libc::CLONE_NEWTIME != 0)?;
        Ok(plan)
    }

    /// Whether the init can be cloned straight from the runtime, with no
    /// intermediate process: no user namespace (it must come first, with
    /// its maps written from outside) and no PID or time namespace joined or
    /// created by unshare (those apply only to a later child). The new PID
    /// namespace is then made by the clone itself.
    pub fn direct_clone(&self) -> bool {
        let later = libc::CLONE_NEWPID | libc::CLONE_NEWTIME;
        self.user == UserNs::Host
            && self.unshare_flags & libc::CLONE_NEWTIME == 0
            && !self.joins.iter().any(|j| j.nstype & later != 0)
    }

    /// Whether the container runs in a user namespace other than the host's.
    pub fn in_userns(&self) -> bool {
        self.user != UserNs::Host
    }

    /// Close the fds opened for joining (parent side, after the fork).
    pub fn close_fds(&self) {
        if let UserNs::Join(fd) = self.user {
            sys::close(fd);
        }
        for j in &self.joins {
            sys::close(j.fd);
        }
    }
}

/// linux.timeOffsets as the lines /proc/self/timens_offsets takes
/// ("monotonic SECS NANOS"). The offsets belong to a new time namespace:
/// one joined by path has its own already.
fn time_offsets(linux: &oci_spec::runtime::Linux, new_time_ns: bool) -> Result<Option<CString>> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(None);
    };
    if !new_time_ns {
        return Err(Error::config(
            "linux.timeOffsets",
            "needs a new time namespace (linux.namespaces: {\"type\": \"time\"} without a path)",
        ));
    }
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::new();
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::config(
                format!("linux.timeOffsets.{clock}"),
                "unknown clock (monotonic and boottime have offsets)",
            ));
        }
        let nanos = off.nanosecs().unwrap_or(0);
        if nanos >= 1_000_000_000 {
            return Err(Error::config(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                format!("{nanos} is not below 1000000000"),
            ));
        }
        text.push_str(&format!("{clock} {} {nanos}\n", off.secs().unwrap_or(0)));
    }
    cstring(&text).map(Some)
}

/// Child side, stage 1, right after creating the time namespace: set its
/// clock offsets (possible only while no process is in it yet).
pub fn write_time_offsets(plan: &NsPlan) -> ChildResult<()> {
    match &plan.time_offsets {
        Some(text) => sys::write_proc_file(c"/proc/self/timens_offsets", text.to_bytes())
            .step(Step::TimeOffsets),
        None => Ok(()),
    }
}

pub fn id_map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Parent side: write uid_map and gid_map of the process `pid` that just
/// created a user namespace. An unprivileged caller may write only a map
/// of its own id (with setgroups denied); more ranges go through the
/// setuid helpers, which check them against /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: libc::pid_t, plan: &NsPlan) -> Result<()> {
    let write = |name: &str, data: &str| -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let path = format!("/proc/{pid}/{name}");
        std::fs::write(&path, data).map_err(|e| Error::Sys {
            what: format!("writing {name} ({})", data.trim().replace('\n', ", ")),
            source: e,
        })
    };
    let unprivileged = crate::rootless::euid() != 0;
    if unprivileged && !plan.gid_helper {
        write("setgroups", "deny")?;
    }
    if plan.uid_helper && !plan.uid_map.is_empty() {
        crate::rootless::write_with_helper("newuidmap", pid, &plan.uid_map, "linux.uidMappings")?;
    } else {
        write("uid_map", &plan.uid_map)?;
    }
    if plan.gid_helper && !plan.gid_map.is_empty() {
        crate::rootless::write_with_helper("newgidmap", pid, &plan.gid_map, "linux.gidMappings")
    } else {
        write("gid_map", &plan.gid_map)
    }
}

/// Child side, stage 1, part one: join or create the user namespace.
/// Returns true if the parent must now write the id maps.
pub fn enter_user(plan: &NsPlan) -> ChildResult<bool> {
    match plan.user {
        UserNs::Host => Ok(false),
        UserNs::Join(fd) => {
            sys::setns(fd, libc::CLONE_NEWUSER).step(Step::JoinUserns)?;
            become_ns_root()?;
            Ok(false)
        }
        UserNs::New => {
            sys::unshare(libc::CLONE_NEWUSER).step(Step::UnshareUserns)?;
            Ok(true)
        }
    }
}

/// Child side: take uid/gid 0 inside the (new or joined) user namespace.
pub fn become_ns_root() -> ChildResult<()> {
    sys::setresgid(0).step(Step::BecomeNsRoot)?;
    sys::setresuid(0).step(Step::BecomeNsRoot)
}

/// Child side (the init, or stage 1 after the user namespace): join
/// namespaces by path, then create the
/// new ones. A new PID (or time) namespace applies to the next fork.
/// A new cgroup namespace is left out: its root is the creator's cgroup, so
/// the init creates it with [`unshare_only`] once it is in the container's.
/// `made`: namespaces the process was already cloned into (the init cloned
/// with CLONE_NEWPID).
pub fn enter_rest(plan: &NsPlan, made: libc::c_int) -> ChildResult<()> {
    for j in &plan.joins {
        sys::setns(j.fd, j.nstype).step_at(Step::JoinNamespace, j.index)?;
    }
    let now = plan.unshare_flags & !libc::CLONE_NEWCGROUP & !made;
    if now != 0 {
        sys::unshare(now).step(Step::Unshare)?;
    }
    Ok(())
}

/// Create the new namespaces of `flags` that the plan asks for.
pub fn unshare_only(plan: &NsPlan, flags: libc::c_int) -> ChildResult<()> {
    let now = plan.unshare_flags & flags;
    if now != 0 {
        sys::unshare(now).step(Step::Unshare)?;
    }
    Ok(())
}

/// For error messages: the namespace named by linux.namespaces[idx].
pub fn describe_join(spec: &Spec, idx: usize) -> String {
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|n| n.get(idx));
    match ns {
        Some(ns) => format!(
            "joining {} namespace {} (linux.namespaces[{idx}])",
            type_name(ns.typ()),
            ns.path()
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        None => format!("joining linux.namespaces[{idx}]"),
    }
}

pub fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Usage(format!("{s:?} contains a NUL byte")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_render_as_proc_lines() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .unwrap();
        assert_eq!(id_map_text(&m), "0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn plan_splits_new_and_joined() {
        let mut v = crate::config::default_spec(false);
        v["linux"]["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}
        ]);
        let spec = crate::config::parse(&v.to_string()).unwrap();
        let plan = NsPlan::build(&spec).unwrap();
        assert_eq!(plan.unshare_flags, libc::CLONE_NEWPID | libc::CLONE_NEWNS);
        assert_eq!(plan.joins.len(), 1);
        assert_eq!(plan.joins[0].nstype, libc::CLONE_NEWNET);
        assert_eq!(plan.joins[0].index, 2);
        plan.close_fds();

        v["linux"]["namespaces"] =
            serde_json::json!([{"type": "network", "path": "/nonexistent/ns"}]);
        let spec = crate::config::parse(&v.to_string()).unwrap();
        let err = NsPlan::build(&spec).unwrap_err().to_string();
        assert!(err.contains("linux.namespaces[0].path"), "{err}");
    }
}
