//! Cgroups: the container's cgroup and the driver that makes it.
//!
//! - [`layout`]: the hierarchies, from /proc/self/mountinfo (v1, v2, hybrid)
//! - [`resources`]: `linux.resources` → validated → per-version file writes
//! - [`v1`], [`v2`]: the backends (apply, freeze, stats)
//! - [`devices`] (+ [`bpf`]): v1 devices.allow/deny, the v2 eBPF filter
//! - [`systemd`]: the `--systemd-cgroup` driver (transient scope over D-Bus)
//! - [`stats`]: runc's stats JSON for `events`
//!
//! The parent creates the cgroup and applies the limits while the init
//! (or stage 1) creates its namespaces; the child joins the cgroup before
//! it does anything else, so nothing in the container ever runs outside
//! its limits.

pub mod bpf;
pub mod devices;
pub mod layout;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

pub use layout::{discover, parse_mountinfo, Hierarchy, Layout};
pub use resources::Resources;

use crate::error::{Error, IoContext, Result};

/// The cgroup (path inside every hierarchy) for linux.cgroupsPath: absolute
/// paths as given, relative ones under the runtime's own cgroup, and
/// `/<id>` when empty (runc's cgroupfs behaviour).
pub fn resolve_path(cgroups_path: Option<&Path>, id: &str) -> Result<String> {
    let p = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => format!("/{id}"),
    };
    if p.split('/').any(|c| c == "..") {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!("{p:?} must not contain \"..\""),
        ));
    }
    Ok(p)
}

/// Whether the cgroup is frozen (v1 freezer.state, v2 cgroup.freeze).
pub fn is_frozen(cg: &Cgroup) -> bool {
    cg.is_frozen()
}

/// What validation of `res` needs to know about this host's cgroups (the
/// cpusets, huge page sizes and v2 controllers are read only when `res`
/// asks for them).
pub fn host_info(res: &Resources) -> Result<resources::Host> {
    let (layout, hier) = discover()?;
    Ok(host_info_from(layout, &hier, res))
}

fn host_info_from(layout: Layout, hier: &[Hierarchy], res: &Resources) -> resources::Host {
    let cpuset = res
        .cpu
        .as_ref()
        .is_some_and(|c| c.cpus.is_some() || c.mems.is_some());
    let hugepages = !res.hugepage_limits.is_empty();
    let controllers = !res.unified.is_empty();
    let read = |p: PathBuf| crate::sys::read_text(p).unwrap_or_default();
    let list = |s: String| resources::parse_list(&s).unwrap_or_default();
    let mut host = resources::Host {
        v2: layout == Layout::V2,
        ..Default::default()
    };
    for h in hier {
        if h.v2 {
            if controllers {
                let ctrls = read(h.mount.join("cgroup.controllers"));
                host.v2_controllers = ctrls.split_whitespace().map(str::to_string).collect();
            }
            if layout == Layout::V2 && cpuset {
                host.cpus = list(read(h.mount.join("cpuset.cpus.effective")));
                host.mems = list(read(h.mount.join("cpuset.mems.effective")));
            }
        } else if cpuset && h.controllers.iter().any(|c| c == "cpuset") {
            host.cpus = list(read(h.mount.join("cpuset.cpus")));
            host.mems = list(read(h.mount.join("cpuset.mems")));
        }
    }
    if cpuset && host.cpus.is_empty() {
        host.cpus = list(read("/sys/devices/system/cpu/online".into()));
    }
    if cpuset && host.mems.is_empty() {
        host.mems = list(read("/sys/devices/system/node/online".into()));
    }
    let rd = hugepages
        .then(|| std::fs::read_dir("/sys/kernel/mm/hugepages").ok())
        .flatten();
    if let Some(rd) = rd {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(kb) = name
                .strip_prefix("hugepages-")
                .and_then(|s| s.strip_suffix("kB"))
                .and_then(|s| s.parse().ok())
            {
                host.hugepage_sizes.push(resources::hugepage_name(kb));
            }
        }
    }
    host
}

/// The directories making up one container's cgroup (one per hierarchy),
/// as recorded in state.json.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    /// Every directory (v1 ones and the cgroup2 one), for placement,
    /// listing and removal.
    pub paths: Vec<PathBuf>,
    /// The v1 controllers of each entry of `paths` (empty for cgroup2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<Vec<String>>,
    /// The cgroup2 directory among `paths` (pure v2, or hybrid's unified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    /// Pure v2 host: limits, freezing and stats use `unified`.
    #[serde(default)]
    pub v2: bool,
    /// systemd driver: the transient scope unit holding the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// systemd driver: the unit's parent slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_slice: Option<String>,
    /// systemd driver: what to apply once the unit exists (it is started
    /// with the first process, in [`Cgroup::place_first`]).
    #[serde(skip)]
    pending: Option<(Resources, Option<Vec<devices::DeviceRule>>)>,
    /// The resources applied (`update` changes and re-applies them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

impl Cgroup {
    /// Create the container's cgroup directories (cgroupfs driver). If
    /// anything fails, what was created is removed again.
    pub fn create(cgroup: &str) -> Result<Cgroup> {
        let (layout, hier) = discover()?;
        let own = crate::sys::read_text("/proc/self/cgroup").at("/proc/self/cgroup")?;
        Cgroup::create_in(layout, &hier, &own, cgroup)
    }

    /// The directories `cgroup` would have, without creating them (the
    /// systemd driver lets systemd create them).
    pub fn paths_for(cgroup: &str) -> Result<Cgroup> {
        let (layout, hier) = discover()?;
        let own = crate::sys::read_text("/proc/self/cgroup").at("/proc/self/cgroup")?;
        Cgroup::build(layout, &hier, &own, cgroup, false)
    }

    /// Create the directories of a cgroup from [`Cgroup::paths_for`]: the
    /// cgroup2 one (`v2`: it must exist before the init is cloned into it)
    /// or the v1 ones (made while the init creates its namespaces). On
    /// failure the caller removes the cgroup.
    pub fn make_dirs(&self, v2: bool) -> Result<()> {
        let (layout, hier) = discover()?;
        // By mount point, not position: rootless may have left some out.
        for dir in &self.paths {
            let h = hier
                .iter()
                .filter(|h| under(dir, &h.mount))
                .max_by_key(|h| h.mount.as_os_str().len());
            if let Some(h) = h.filter(|h| h.v2 == v2) {
                make_dir(layout, h, dir)?;
            }
        }
        Ok(())
    }

    /// Create `cgroup` in the given hierarchies (`own`: /proc/self/cgroup
    /// text, for relative paths). Tests pass a cgroup2-shaped temp tree.
    pub fn create_in(
        layout: Layout,
        hier: &[Hierarchy],
        own: &str,
        cgroup: &str,
    ) -> Result<Cgroup> {
        Cgroup::build(layout, hier, own, cgroup, true)
    }

    fn build(
        layout: Layout,
        hier: &[Hierarchy],
        own: &str,
        cgroup: &str,
        mkdir: bool,
    ) -> Result<Cgroup> {
        let mut cg = Cgroup {
            v2: layout == Layout::V2,
            ..Default::default()
        };
        for h in hier {
            let inner = if cgroup.starts_with('/') {
                cgroup.to_string()
            } else {
                format!(
                    "{}/{}",
                    layout::own_cgroup(own, h).trim_end_matches('/'),
                    cgroup
                )
            };
            // The mount may show only a subtree (e.g. inside a cgroup namespace).
            let rel = inner
                .strip_prefix(h.mount_root.trim_end_matches('/'))
                .unwrap_or(&inner)
                .trim_start_matches('/');
            let dir = h.mount.join(rel);
            if mkdir {
                if let Err(e) = make_dir(layout, h, &dir) {
                    let _ = cg.remove();
                    return Err(e);
                }
            }
            if h.v2 {
                cg.unified = Some(dir.clone());
            }
            cg.paths.push(dir);
            cg.controllers.push(h.controllers.clone());
        }
        Ok(cg)
    }

    /// The v1 directory of `controller`, if that controller is mounted.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.paths
            .iter()
            .zip(&self.controllers)
            .find(|(_, c)| c.iter().any(|c| c == controller))
            .map(|(p, _)| p.as_path())
    }

    /// Apply the resources (and the device rules) to the cgroup. Called
    /// after `create` and before any process joins; `update` calls it on a
    /// live cgroup with `rules` None (devices are not changed then).
    pub fn apply(&mut self, res: &Resources, rules: Option<&[devices::DeviceRule]>) -> Result<()> {
        if self.unit.is_some() && !self.paths.iter().any(|p| p.exists()) {
            // systemd driver, unit not started yet: applied in `place_first`.
            self.pending = Some((res.clone(), rules.map(<[_]>::to_vec)));
            self.resources = Some(res.clone());
            return Ok(());
        }
        if self.paths.is_empty() {
            // Rootless with every hierarchy left out: nothing to apply
            // (make_dirs_rootless refused limits that would need one).
            self.resources = Some(res.clone());
            return Ok(());
        }
        if self.v2 {
            v2::apply(self, res, rules)?;
        } else {
            v1::apply(self, res, rules)?;
        }
        self.resources = Some(res.clone());
        Ok(())
    }

    /// Place the container's first process. With the systemd driver this
    /// starts the unit with `pid` in it, then creates the directories
    /// systemd does not manage and applies the limits; otherwise `add`.
    pub fn place_first(&mut self, pid: libc::pid_t) -> Result<()> {
        if let Some((res, rules)) = self.pending.take() {
            systemd::start(self, pid as u32, &res, rules.as_deref())?;
            let (layout, hier) = discover()?;
            for h in &hier {
                if let Some(dir) = self.paths.iter().find(|p| p.starts_with(&h.mount)) {
                    make_dir(layout, h, dir)?;
                }
            }
            self.apply(&res, rules.as_deref())?;
        }
        self.add(pid)
    }

    /// The v1 `tasks` files the child joins by writing "0" to each: a thread
    /// moving itself skips the cgroup threadgroup lock, whose first writer
    /// waits for an RCU grace period (about 10 ms per container start).
    pub fn v1_task_files(&self) -> Vec<PathBuf> {
        self.paths
            .iter()
            .filter(|d| self.unified.as_deref() != Some(d.as_path()))
            .map(|d| d.join("tasks"))
            .collect()
    }

    /// Move `pid` into the cgroup in every hierarchy.
    pub fn add(&self, pid: libc::pid_t) -> Result<()> {
        for dir in &self.paths {
            let f = dir.join("cgroup.procs");
            std::fs::write(&f, pid.to_string()).map_err(|e| Error::Sys {
                what: format!("adding pid {pid} to {}", f.display()),
                source: e,
            })?;
        }
        Ok(())
    }

    /// The directory processes are listed from: the v2 one on v2 hosts,
    /// else the first v1 one.
    fn main_dir(&self) -> Option<&Path> {
        if self.v2 {
            return self.unified.as_deref();
        }
        self.paths.first().map(PathBuf::as_path)
    }

    /// Pids in the container's cgroup.
    pub fn procs(&self) -> Vec<libc::pid_t> {
        let Some(dir) = self.main_dir() else {
            return Vec::new();
        };
        crate::sys::read_text(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Send `sig` to every process in the cgroup.
    pub fn signal_all(&self, sig: libc::c_int) {
        for pid in self.procs() {
            let _ = crate::sys::kill(pid, sig);
        }
    }

    /// Signal every process with the cgroup frozen, so none can fork a
    /// child that escapes the signal (runc's signalAllProcesses). A paused
    /// container stays paused, except for SIGKILL (a frozen process cannot
    /// die).
    pub fn kill_all(&self, sig: libc::c_int) {
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.freeze(true).is_ok();
        self.signal_all(sig);
        if froze || (was_frozen && sig == libc::SIGKILL) {
            let _ = self.freeze(false);
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        if self.v2 {
            return self.unified.as_ref().is_some_and(|d| {
                crate::sys::read_text(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            });
        }
        match self.v1_dir("freezer") {
            Some(d) => {
                crate::sys::read_text(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }
            // State written before the controllers were recorded.
            None => self.paths.iter().any(|p| {
                crate::sys::read_text(p.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }),
        }
    }

    /// Freeze (`true`) or thaw every process, waiting until the kernel
    /// reports the new state.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if self.v2 {
            let dir = self
                .unified
                .as_deref()
                .ok_or_else(|| no_controller("cgroup.freeze"))?;
            v2::freeze(dir, frozen)
        } else {
            let dir = self
                .v1_dir("freezer")
                .ok_or_else(|| no_controller("freezer"))?;
            v1::freeze(dir, frozen)
        }
    }

    /// Resource usage, in runc's `events` shape.
    pub fn stats(&self) -> stats::Stats {
        if self.v2 {
            self.unified.as_deref().map(stats::v2).unwrap_or_default()
        } else {
            stats::v1(self)
        }
    }

    /// The OOM-kill count so far (v1 memory.oom_control, v2 memory.events).
    /// The file whose changes announce an OOM kill (cgroup2 only; v1's
    /// memory.oom_control does not notify through inotify).
    pub fn oom_notify_file(&self) -> Option<PathBuf> {
        if self.v2 {
            self.unified.as_ref().map(|d| d.join("memory.events"))
        } else {
            None
        }
    }

    pub fn oom_kills(&self) -> Option<u64> {
        let (dir, file) = if self.v2 {
            (self.unified.as_deref()?, "memory.events")
        } else {
            (self.v1_dir("memory")?, "memory.oom_control")
        };
        let text = crate::sys::read_text(dir.join(file)).ok()?;
        stats::keyed(&text).get("oom_kill").copied()
    }

    /// Remove the cgroup directories, waiting briefly for exiting
    /// processes; with the systemd driver, stop the scope too.
    pub fn remove(&self) -> Result<()> {
        if let Some(unit) = &self.unit {
            if let Err(e) = systemd::stop_unit(unit) {
                crate::logging::warn(&format!("stopping systemd unit {unit}: {e}"));
            }
        }
        let mut last = None;
        // Deepest first does not matter (one directory per hierarchy), but
        // a frozen cgroup must be thawed or its processes never exit.
        if self.is_frozen() {
            let _ = self.freeze(false);
        }
        for dir in &self.paths {
            for attempt in 0..100 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if attempt < 99 && e.raw_os_error() == Some(libc::EBUSY) => {
                        crate::sys::nanosleep_ms(10)
                    }
                    Err(e) => {
                        last = Some(Error::Sys {
                            what: format!("removing cgroup {}", dir.display()),
                            source: e,
                        });
                        break;
                    }
                }
            }
        }
        last.map_or(Ok(()), Err)
    }
}

/// Rootless, no `linux.cgroupsPath`: where runc's cgroupfs driver puts
/// the container. v1 (and hybrid): under the caller's own cgroup in each
/// hierarchy (`id`, relative); pure v2: next to it, in its parent, which is
/// where a delegated subtree (a systemd user service) lets the user write.
pub fn rootless_default_path(id: &str) -> Result<String> {
    let (layout, hier) = discover()?;
    let Some(h) = hier.first().filter(|_| layout == Layout::V2) else {
        return Ok(id.to_string());
    };
    let own = crate::sys::read_text("/proc/self/cgroup").at("/proc/self/cgroup")?;
    let mine = layout::own_cgroup(&own, h);
    let parent = Path::new(&mine).parent().unwrap_or(Path::new("/"));
    Ok(format!(
        "{}/{id}",
        parent.to_string_lossy().trim_end_matches('/')
    ))
}

/// This process's own cgroup2 directory, if there is a cgroup2 mount.
pub fn own_v2_dir() -> Option<PathBuf> {
    let (_, hier) = discover().ok()?;
    let h = hier.iter().find(|h| h.v2)?;
    let own = crate::sys::read_text("/proc/self/cgroup").ok()?;
    Some(own_dir(h, &own))
}

/// The directory of hierarchy `h` that `own` (/proc/self/cgroup text) names.
fn own_dir(h: &Hierarchy, own: &str) -> PathBuf {
    h.mount.join(
        layout::own_cgroup(own, h)
            .strip_prefix(h.mount_root.trim_end_matches('/'))
            .unwrap_or("")
            .trim_start_matches('/'),
    )
}

/// cgroup2 lets a process move between cgroups only with write access to
/// the `cgroup.procs` of their common ancestor (delegation containment):
/// opened for writing, nothing written.
fn can_migrate(h: &Hierarchy, own: &str, dir: &Path) -> std::result::Result<(), String> {
    let mine = own_dir(h, own);
    let common = dir
        .ancestors()
        .find(|a| mine.starts_with(a))
        .unwrap_or(&h.mount);
    let procs = common.join("cgroup.procs");
    match std::fs::OpenOptions::new().write(true).open(&procs) {
        Err(e) if denied(&e) => Err(format!(
            "moving into {} needs write access to {}: {e}",
            dir.display(),
            procs.display()
        )),
        _ => Ok(()),
    }
}

/// Whether a cgroup directory could not be made for lack of permission
/// (runc's isIgnorableError for rootless).
fn denied(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

impl Cgroup {
    /// Rootless (cgroupfs driver): make the directories now, in every
    /// hierarchy where this user may. Where it may not, as runc: with an
    /// explicit `linux.cgroupsPath`, or limits for that hierarchy's
    /// controllers, the create fails naming the field; otherwise the
    /// hierarchy is left out (the container stays in the caller's cgroup
    /// there) with a warning.
    pub fn make_dirs_rootless(&mut self, res: &Resources, explicit: bool) -> Result<()> {
        let (layout, hier) = discover()?;
        let own = crate::sys::read_text("/proc/self/cgroup").at("/proc/self/cgroup")?;
        // (index into paths, why this user cannot have its directory)
        let mut left_out: Vec<(usize, String)> = Vec::new();
        let mut made = Vec::new();
        for (i, (dir, h)) in self.paths.iter().zip(hier.iter()).enumerate() {
            let r = match std::fs::create_dir_all(dir) {
                Err(e) if denied(&e) => {
                    left_out.push((i, format!("creating {}: {e}", dir.display())));
                    continue;
                }
                Err(e) => Err(Error::Sys {
                    what: format!("creating cgroup {}", dir.display()),
                    source: e,
                }),
                Ok(()) => make_dir(layout, h, dir),
            };
            if let Err(e) = r {
                self.remove_made(&made);
                return Err(e);
            }
            made.push(i);
            if h.v2 {
                if let Err(why) = can_migrate(h, &own, dir) {
                    let _ = std::fs::remove_dir(dir);
                    made.pop();
                    left_out.push((i, why));
                }
            }
        }
        let fail = |field: &str, msg: String| {
            self.remove_made(&made);
            Err(Error::config(field, msg))
        };
        for (i, e) in &left_out {
            let dir = self.paths[*i].display();
            // A hybrid host's cgroup2 side holds no v1 controller: runc
            // 1.1 ignores it there even for an explicit path.
            let hybrid_v2 = hier[*i].v2 && layout != Layout::V2;
            if explicit && !hybrid_v2 {
                return fail(
                    "linux.cgroupsPath",
                    format!(
                        "cannot use cgroup {dir}: {e} (running rootless: the path must be in \
                         a cgroup delegated to this user)"
                    ),
                );
            }
            let usable = |c: &str| {
                hier.iter().enumerate().any(|(j, h)| {
                    !h.v2 && h.controllers.iter().any(|x| x == c) && made.contains(&j)
                })
            };
            if let Some(w) = rootless_needs(layout, &hier[*i], res, usable) {
                return fail(
                    &w.field,
                    format!(
                        "cannot set {} limit: container could not join or create cgroup \
                         (running rootless: {e}; limits need a cgroup delegated to this user)",
                        w.controller
                    ),
                );
            }
        }
        if !left_out.is_empty() {
            let dirs: Vec<String> = left_out
                .iter()
                .map(|(i, _)| self.paths[*i].display().to_string())
                .collect();
            crate::logging::warn(&format!(
                "running rootless: no permission to use cgroup {}; the container stays \
                 in the caller's cgroup there (no limits were asked for)",
                dirs.join(", ")
            ));
            for (i, _) in left_out.iter().rev() {
                let dir = self.paths.remove(*i);
                self.controllers.remove(*i);
                if self.unified.as_ref() == Some(&dir) {
                    self.unified = None;
                }
            }
        }
        Ok(())
    }

    /// Remove the directories of `made` (indexes into `paths`).
    fn remove_made(&self, made: &[usize]) {
        for &i in made {
            let _ = std::fs::remove_dir(&self.paths[i]);
        }
    }
}

/// The first write `res` needs in hierarchy `h` (`usable`: whether a v1
/// controller has a directory elsewhere, for hugetlb on a hybrid host's
/// cgroup2 side), if any.
fn rootless_needs(
    layout: Layout,
    h: &Hierarchy,
    res: &Resources,
    usable: impl Fn(&str) -> bool,
) -> Option<resources::Write> {
    if h.v2 && layout == Layout::V2 {
        return match resources::v2_writes(res, false) {
            Ok(w) => w.into_iter().next(),
            // The same error comes again from apply; here it means "needed".
            Err(_) => Some(resources::Write {
                controller: "cgroup",
                file: String::new(),
                value: String::new(),
                field: "linux.resources".into(),
            }),
        };
    }
    let writes = resources::v1_writes(res, resources::V1Facts::default());
    if h.v2 {
        // Hybrid: only hugetlb may live on the cgroup2 side.
        return writes
            .into_iter()
            .find(|w| w.controller == "hugetlb" && !usable("hugetlb"));
    }
    writes
        .into_iter()
        .find(|w| h.controllers.iter().any(|c| c == w.controller))
}

/// mkdir -p one hierarchy's directory, then what a new cgroup needs:
/// cpuset.cpus/mems inherited on v1, controllers enabled on v2.
fn make_dir(layout: Layout, h: &Hierarchy, dir: &Path) -> Result<()> {
    // A parent that another tool removes as it empties (hullctl's
    // /hullctl) can vanish between creating it and the child: try again.
    let mut made = std::fs::create_dir_all(dir);
    for _ in 0..4 {
        match &made {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                made = std::fs::create_dir_all(dir);
            }
            _ => break,
        }
    }
    made.map_err(|e| Error::Sys {
        what: format!("creating cgroup {}", dir.display()),
        source: e,
    })?;
    if h.v2 && layout == Layout::V2 {
        v2::enable_controllers(&h.mount, dir, None);
    } else if h.controllers.iter().any(|c| c == "cpuset") {
        v1::init_cpuset(&h.mount, dir);
    }
    Ok(())
}

fn no_controller(what: &str) -> Error {
    Error::Usage(format!(
        "the {what} cgroup controller is not available on this host"
    ))
}

/// The rules the device controller enforces: the config's
/// linux.resources.devices, then runc's default allow list. (Like runc,
/// devices in linux.devices are created but not allowed implicitly.)
pub fn device_rules(res: &Resources) -> Vec<devices::DeviceRule> {
    devices::container_rules(&res.devices)
}

/// `dir` is `mount` or below it. A byte comparison: `Path::starts_with`
/// compares component by component, and this runs for every hierarchy
/// pair on the start path (about 270,000 instructions of a `hull run`).
fn under(dir: &Path, mount: &Path) -> bool {
    let (d, m) = (
        dir.as_os_str().as_encoded_bytes(),
        mount.as_os_str().as_encoded_bytes(),
    );
    let m = match m {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        _ => m,
    };
    d.starts_with(m) && (d.len() == m.len() || d[m.len()] == b'/' || m == b"/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_matches_whole_components_as_path_starts_with() {
        let cases = [
            ("/sys/fs/cgroup/cpu/x", "/sys/fs/cgroup/cpu"),
            ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu"),
            ("/sys/fs/cgroup/cpuset/x", "/sys/fs/cgroup/cpu"),
            ("/sys/fs/cgroup/cpu,cpuacct/x", "/sys/fs/cgroup/cpu"),
            ("/sys/fs/cgroup/cpu/x", "/sys/fs/cgroup/cpu/"),
            ("/sys/fs/cgroup/x", "/"),
            ("/sys/fs/cgroupx", "/sys/fs/cgroup"),
            ("/a", "/a/b"),
        ];
        for (d, m) in cases {
            let (d, m) = (Path::new(d), Path::new(m));
            assert_eq!(under(d, m), d.starts_with(m), "{d:?} under {m:?}");
        }
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn detects_hybrid_and_uses_v1_hierarchies_plus_unified() {
        let (layout, h) = parse_mountinfo(HYBRID);
        assert_eq!(layout, Layout::Hybrid);
        let names: Vec<_> = h.iter().map(|h| h.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "memory", "name=systemd", ""]);
        assert!(h[3].v2);
        assert_eq!(h[3].mount, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn detects_pure_v2() {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let (layout, h) = parse_mountinfo(text);
        assert_eq!(layout, Layout::V2);
        assert_eq!(h.len(), 1);
        assert!(h[0].v2);
        assert_eq!(h[0].mount, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn detects_comounted_v1() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let (layout, h) = parse_mountinfo(text);
        assert_eq!(layout, Layout::V1);
        assert_eq!(h[0].controllers, ["cpu", "cpuacct"]);
    }

    #[test]
    fn relative_paths_go_under_own_cgroup() {
        let h = Hierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            mount_root: "/".into(),
            controllers: vec!["memory".into()],
            v2: false,
        };
        let own = "5:memory:/user.slice\n0::/x\n";
        assert_eq!(layout::own_cgroup(own, &h), "/user.slice");
        assert_eq!(resolve_path(None, "abc").unwrap(), "/abc");
        assert!(resolve_path(Some(Path::new("/a/../b")), "x").is_err());
    }

    /// Rootless: which hierarchy a config's limits need (a hierarchy that
    /// is needed and cannot be made fails the create; others are left out).
    #[test]
    fn rootless_needs_only_the_limited_hierarchies() {
        let h = |ctrl: &str, v2: bool| Hierarchy {
            mount: format!("/sys/fs/cgroup/{ctrl}").into(),
            mount_root: "/".into(),
            controllers: if v2 { Vec::new() } else { vec![ctrl.into()] },
            v2,
        };
        let res = |v: serde_json::Value| Resources::from_value(v, "linux.resources").unwrap();
        let mem = res(serde_json::json!({"memory": {"limit": 67108864}}));
        let none = res(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}));
        let huge =
            res(serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}));
        let no_v1 = |_: &str| false;
        let need =
            |l, h: &Hierarchy, r: &Resources| rootless_needs(l, h, r, no_v1).map(|w| w.field);
        assert_eq!(
            need(Layout::V1, &h("memory", false), &mem).as_deref(),
            Some("linux.resources.memory.limit")
        );
        assert_eq!(need(Layout::V1, &h("pids", false), &mem), None);
        // Device rules are not set rootless: they need no hierarchy.
        assert_eq!(need(Layout::V1, &h("devices", false), &none), None);
        assert!(need(Layout::V2, &h("unified", true), &mem).is_some());
        assert_eq!(need(Layout::V2, &h("unified", true), &none), None);
        // Hybrid: the cgroup2 side only for hugetlb without a v1 hugetlb.
        assert_eq!(need(Layout::Hybrid, &h("unified", true), &mem), None);
        assert!(need(Layout::Hybrid, &h("unified", true), &huge).is_some());
        let v1_hugetlb = |c: &str| c == "hugetlb";
        assert!(rootless_needs(Layout::Hybrid, &h("unified", true), &huge, v1_hugetlb).is_none());
    }

    #[test]
    fn old_state_json_still_loads() {
        let cg: Cgroup = serde_json::from_str(r#"{"paths":["/sys/fs/cgroup/memory/x"]}"#).unwrap();
        assert_eq!(cg.paths.len(), 1);
        assert!(!cg.v2 && cg.unit.is_none() && cg.resources.is_none());
    }
}
