//! The systemd cgroup driver (`--systemd-cgroup`), as runc does it: the
//! container's cgroup is a transient scope unit that systemd creates over
//! D-Bus (`StartTransientUnit` on org.freedesktop.systemd1.Manager) with
//! the container's first process and its resource limits as properties;
//! the cgroupfs writes then fill in what systemd has no property for.
//!
//! `linux.cgroupsPath` is `slice:prefix:name` → unit `prefix-name.scope`
//! in `slice` (default system.slice), cgroup
//! `/<expanded slice>/prefix-name.scope` in every hierarchy. A `name`
//! ending in `.slice` makes a slice instead.
//!
//! D-Bus is spoken directly (a small client for the few calls needed:
//! SASL EXTERNAL, Hello, StartTransientUnit, SetUnitProperties, StopUnit),
//! so no D-Bus crate is needed: over the system bus, or as root systemd's
//! private socket when there is no bus daemon, like runc.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::resources::{self, Resources};
use super::{devices::DeviceRule, Cgroup};
use crate::error::{Error, Result};

const DEFAULT_SLICE: &str = "system.slice";

/// The slice a container goes to without `linux.cgroupsPath`: as runc,
/// `user.slice` of the user's own manager (systemd --user) when not root.
fn default_slice() -> &'static str {
    if crate::rootless::euid() != 0 {
        "user.slice"
    } else {
        DEFAULT_SLICE
    }
}

/// The scope (or slice) for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The parent slice, e.g. "system.slice" or "machine-pod1.slice".
    pub slice: String,
    /// The unit name, e.g. "hull-abc.scope".
    pub name: String,
    /// The cgroup path inside every hierarchy.
    pub cgroup: String,
}

/// "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice" (systemd's slice
/// nesting); "-.slice" is the root.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::config(
            "linux.cgroupsPath",
            format!("invalid slice {slice:?}: {why}"),
        )
    };
    let Some(name) = slice.strip_suffix(".slice") else {
        return Err(bad("must end in .slice"));
    };
    if slice.contains('/') {
        return Err(bad("must not contain /"));
    }
    if name == "-" {
        return Ok("/".to_string());
    }
    if name.is_empty() || name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(bad("empty component"));
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(comp);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// Parse linux.cgroupsPath for the systemd driver (empty: system.slice,
/// prefix "hull", the container id).
pub fn parse_path(cgroups_path: Option<&Path>, id: &str) -> Result<Unit> {
    let p = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (slice, prefix, name) = if p.is_empty() {
        (
            default_slice().to_string(),
            "hull".to_string(),
            id.to_string(),
        )
    } else {
        let parts: Vec<&str> = p.split(':').collect();
        if parts.len() != 3 {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!("{p:?}: with --systemd-cgroup it must be \"slice:prefix:name\""),
            ));
        }
        let slice = if parts[0].is_empty() {
            default_slice()
        } else {
            parts[0]
        };
        (
            slice.to_string(),
            parts[1].to_string(),
            parts[2].to_string(),
        )
    };
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(Error::config(
            "linux.cgroupsPath",
            format!("{p:?}: invalid unit name"),
        ));
    }
    let unit = if name.ends_with(".slice") {
        name
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let base = expand_slice(&slice)?;
    let cgroup = if unit.ends_with(".slice") {
        // A slice nests by name, under the expanded parent.
        let own = expand_slice(&unit)?;
        let leaf = own.rsplit('/').next().unwrap_or_default();
        format!("{}/{leaf}", base.trim_end_matches('/'))
    } else {
        format!("{}/{unit}", base.trim_end_matches('/'))
    };
    Ok(Unit {
        slice,
        name: unit,
        cgroup,
    })
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// A D-Bus variant value of a unit property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    U64(u64),
    U32s(Vec<u32>),
    Bytes(Vec<u8>),
    StrPairs(Vec<(String, String)>),
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U64(_) => "t",
            Value::U32s(_) => "au",
            Value::Bytes(_) => "ay",
            Value::StrPairs(_) => "a(ss)",
        }
    }
}

/// A cpuset list as systemd's AllowedCPUs bitmask bytes.
fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    let cpus = resources::parse_list(list)?;
    let mut mask = vec![0u8; cpus.iter().max().map_or(0, |m| *m as usize / 8 + 1)];
    for c in cpus {
        mask[c as usize / 8] |= 1 << (c % 8);
    }
    Some(mask)
}

/// systemd's CPUQuotaPerSecUSec from quota/period, rounded up to 10ms as
/// runc does (systemd's own granularity).
pub fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return u64::MAX;
    }
    let period = if period == 0 { 100_000 } else { period };
    let mut v = (quota as u64).saturating_mul(1_000_000) / period;
    if !v.is_multiple_of(10_000) {
        v = (v / 10_000 + 1) * 10_000;
    }
    v
}

/// The device rules as DevicePolicy/DeviceAllow, like runc: "strict" plus
/// an allow list when the default is deny; nothing when it is allow.
pub fn device_properties(rules: &[DeviceRule]) -> Vec<(String, Value)> {
    let Some(pos) = rules
        .iter()
        .rposition(|r| r.kind() == 'a' && r.major.is_none_or(|m| m < 0) && !r.allow)
    else {
        return vec![("DevicePolicy".into(), Value::Str("auto".into()))];
    };
    let mut allow = Vec::new();
    for r in &rules[pos + 1..] {
        if !r.allow {
            continue;
        }
        let kind = if r.kind() == 'b' { "block" } else { "char" };
        let major = r.major.filter(|&m| m >= 0);
        let minor = r.minor.filter(|&m| m >= 0);
        let entry = match (major, minor) {
            (None, _) => format!("{kind}-*"),
            (Some(ma), None) => match proc_devices_name(kind, ma) {
                Some(n) => format!("{kind}-{n}"),
                None => continue,
            },
            (Some(ma), Some(mi)) => format!("/dev/{kind}/{ma}:{mi}"),
        };
        allow.push((entry, r.access().to_string()));
    }
    vec![
        ("DevicePolicy".into(), Value::Str("strict".into())),
        ("DeviceAllow".into(), Value::StrPairs(allow)),
    ]
}

/// The driver name of a major number in /proc/devices ("pts" for 136).
fn proc_devices_name(kind: &str, major: i64) -> Option<String> {
    let text = std::fs::read_to_string("/proc/devices").ok()?;
    let section = if kind == "block" {
        "Block devices:"
    } else {
        "Character devices:"
    };
    text.split("\n\n")
        .find(|s| s.trim_start().starts_with(section))?
        .lines()
        .skip(1)
        .find_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            (n.parse::<i64>().ok()? == major).then(|| name.trim().to_string())
        })
}

/// The StartTransientUnit properties for the container's unit: identity,
/// delegation, the first process, and the resources systemd manages
/// (v1 names on v1/hybrid hosts, v2 names on v2, like runc).
pub fn properties(
    unit: &Unit,
    pid: u32,
    res: &Resources,
    rules: Option<&[DeviceRule]>,
    v2: bool,
) -> Vec<(String, Value)> {
    let mut p: Vec<(String, Value)> = vec![
        (
            "Description".into(),
            Value::Str(format!("hull container {}", unit.name)),
        ),
        ("Delegate".into(), Value::Bool(true)),
        ("DefaultDependencies".into(), Value::Bool(false)),
    ];
    if unit.name.ends_with(".scope") {
        p.push(("Slice".into(), Value::Str(unit.slice.clone())));
        p.push(("PIDs".into(), Value::U32s(vec![pid])));
    } else {
        p.push(("Wants".into(), Value::Str(unit.slice.clone())));
    }
    p.extend(resource_properties(res, rules, v2));
    p
}

/// The resource properties alone (what `update` changes on a running
/// unit with SetUnitProperties, so systemd keeps them on daemon-reload).
pub fn resource_properties(
    res: &Resources,
    rules: Option<&[DeviceRule]>,
    v2: bool,
) -> Vec<(String, Value)> {
    let mut p: Vec<(String, Value)> = Vec::new();
    let mut t = |k: &str, v: u64| p.push((k.to_string(), Value::U64(v)));
    let lim = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(m) = &res.memory {
        if let Some(l) = m.limit.filter(|&l| l != 0) {
            t(if v2 { "MemoryMax" } else { "MemoryLimit" }, lim(l));
        }
        if v2 {
            if let Some(r) = m.reservation.filter(|&r| r != 0) {
                t("MemoryLow", lim(r));
            }
            if let Ok(s) = resources::swap_to_v2(m.swap.unwrap_or(0), m.limit.unwrap_or(0)) {
                if s != 0 {
                    t("MemorySwapMax", lim(s));
                }
            }
        }
    }
    if let Some(c) = &res.cpu {
        if let Some(s) = c.shares.filter(|&s| s != 0) {
            if v2 {
                t("CPUWeight", resources::shares_to_weight(s));
            } else {
                t("CPUShares", s);
            }
        }
        let quota = c.quota.unwrap_or(0);
        let period = c.period.unwrap_or(0);
        if period != 0 {
            t("CPUQuotaPeriodUSec", period);
        }
        if quota != 0 {
            t("CPUQuotaPerSecUSec", quota_per_sec(quota, period));
        }
    }
    if let Some(pl) = &res.pids {
        if pl.limit != 0 {
            t("TasksMax", lim(pl.limit));
        }
    }
    if let Some(w) = res
        .block_io
        .as_ref()
        .and_then(|b| b.weight)
        .filter(|&w| w != 0)
    {
        if v2 {
            t("IOWeight", resources::blkio_weight_to_io_weight(w));
        } else {
            t("BlockIOWeight", u64::from(w));
        }
    }
    if let Some(c) = &res.cpu {
        if let Some(mask) = c
            .cpus
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(cpu_mask)
        {
            p.push(("AllowedCPUs".into(), Value::Bytes(mask)));
        }
        if let Some(mask) = c
            .mems
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(cpu_mask)
        {
            p.push(("AllowedMemoryNodes".into(), Value::Bytes(mask)));
        }
    }
    if let Some(rules) = rules {
        p.extend(device_properties(rules));
    }
    p
}

// ---------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------

/// Prepare the container's cgroup with the systemd driver: check that
/// systemd is reachable (a clear error if not, before anything is made)
/// and compute the paths. The unit itself is started when the first
/// process is added ([`start`]), since a scope cannot exist empty.
pub fn create(cgroups_path: Option<&Path>, id: &str, _res: &Resources) -> Result<Cgroup> {
    let unit = parse_path(cgroups_path, id)?;
    Bus::connect()?;
    let euid = crate::rootless::euid();
    let path = if euid == 0 {
        unit.cgroup.clone()
    } else {
        // systemd --user nests its units below its own service, which
        // systemd names user@UID.service in user-UID.slice. The mounts are
        // planned with this path; once the scope runs, the process says
        // where it really is (follow_into_scope).
        format!(
            "/user.slice/user-{euid}.slice/user@{euid}.service{}",
            unit.cgroup
        )
    };
    let mut cg = super::Cgroup::paths_for(&path)?;
    if euid != 0 && !cg.v2 {
        // systemd --user can delegate a subtree only on a unified host.
        return Err(Error::Usage(
            "--systemd-cgroup as an unprivileged user needs a pure cgroup v2 host \
             (systemd --user delegates only there); use the default cgroupfs driver"
                .into(),
        ));
    }
    cg.unit = Some(unit.name.clone());
    cg.systemd_slice = Some(unit.slice.clone());
    Ok(cg)
}

/// Start the transient unit holding `pid`, with the resources as
/// properties, and wait until its cgroup exists.
pub fn start(
    cg: &mut Cgroup,
    pid: u32,
    res: &Resources,
    rules: Option<&[DeviceRule]>,
) -> Result<()> {
    let name = cg.unit.clone().unwrap_or_default();
    let unit = Unit {
        slice: cg
            .systemd_slice
            .clone()
            .unwrap_or_else(|| DEFAULT_SLICE.into()),
        name: name.clone(),
        cgroup: String::new(),
    };
    let props = properties(&unit, pid, res, rules, cg.v2);
    let mut bus = Bus::connect()?;
    bus.start_transient_unit(&name, &props)?;
    if crate::rootless::euid() != 0 {
        return follow_into_scope(cg, pid, &name);
    }
    // The job runs asynchronously: wait for the cgroup to appear (in the
    // hierarchy systemd always manages: name=systemd on v1, else v2).
    let managed = cg
        .paths
        .iter()
        .zip(&cg.controllers)
        .find(|(_, c)| c.iter().any(|c| c == "name=systemd"))
        .map(|(p, _)| p.clone())
        .or_else(|| cg.unified.clone());
    for _ in 0..500 {
        if managed.as_ref().is_none_or(|p| p.exists()) {
            return Ok(());
        }
        crate::sys::nanosleep_ms(10);
    }
    Err(Error::Usage(format!(
        "systemd unit {name} started but its cgroup never appeared"
    )))
}

/// Rootless: systemd --user makes the scope below its own cgroup
/// (`.../user@UID.service/user.slice/...`), which the path computed from
/// the slice does not know; the process itself says where it landed.
fn follow_into_scope(cg: &mut Cgroup, pid: u32, name: &str) -> Result<()> {
    let (_, hier) = super::discover()?;
    let Some(h) = hier.iter().find(|h| h.v2) else {
        return Err(Error::Usage("no cgroup2 hierarchy for the scope".into()));
    };
    let file = format!("/proc/{pid}/cgroup");
    for _ in 0..500 {
        let text = crate::sys::read_text(&file).unwrap_or_default();
        let path = super::layout::own_cgroup(&text, h);
        if path.ends_with(&format!("/{name}")) {
            let rel = path
                .strip_prefix(h.mount_root.trim_end_matches('/'))
                .unwrap_or(&path)
                .trim_start_matches('/');
            let dir = h.mount.join(rel);
            cg.paths = vec![dir.clone()];
            cg.controllers = vec![Vec::new()];
            cg.unified = Some(dir);
            return Ok(());
        }
        crate::sys::nanosleep_ms(10);
    }
    Err(Error::Usage(format!(
        "systemd unit {name} started but process {pid} never appeared in it"
    )))
}

/// Change a running unit's resource properties (runtime only, like runc).
pub fn set_unit_properties(unit: &str, res: &Resources, v2: bool) -> Result<()> {
    let props = resource_properties(res, None, v2);
    if props.is_empty() {
        return Ok(());
    }
    Bus::connect()?.call_systemd(
        "SetUnitProperties",
        "sba(sv)",
        &[Arg::Str(unit), Arg::Bool(true), Arg::Props(&props)],
    )
}

/// Stop a transient unit (on delete).
pub fn stop_unit(unit: &str) -> Result<()> {
    match Bus::connect()?.call_systemd("StopUnit", "ss", &[Arg::Str(unit), Arg::Str("replace")]) {
        // A scope goes away by itself once its last process has exited.
        Err(e)
            if e.to_string()
                .contains("org.freedesktop.systemd1.NoSuchUnit") =>
        {
            Ok(())
        }
        r => r,
    }
}

// ---------------------------------------------------------------------------
// A minimal D-Bus client
// ---------------------------------------------------------------------------

const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's own socket (root only), answered by PID 1 itself: there even
/// on hosts without a D-Bus daemon.
const SYSTEMD_PRIVATE: &str = "/run/systemd/private";
const DBUS: &str = "org.freedesktop.DBus";
const SYSTEMD: &str = "org.freedesktop.systemd1";
/// How long a socket read or write may block (systemd answers at once).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// One way to reach systemd's manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A message bus (dbus-daemon, dbus-broker) in front of systemd: the
    /// bus serves nothing before our Hello.
    Bus(PathBuf),
    /// systemd's private socket: peer-to-peer with systemd itself. There
    /// is no org.freedesktop.DBus on it, so no Hello (the destination on
    /// calls is ignored); systemd sends its signals on it unasked, which
    /// [`Bus::call`] skips like any message that is not its reply.
    Private(PathBuf),
}

impl Endpoint {
    pub fn path(&self) -> &Path {
        match self {
            Endpoint::Bus(p) | Endpoint::Private(p) => p,
        }
    }
}

/// Where to look for systemd, in order, as runc does (go-systemd): as
/// root the system bus, then systemd's private socket (a host without a
/// D-Bus daemon); rootless, the user's bus, where systemd --user is.
pub fn endpoints(uid: u32, env: impl Fn(&str) -> Option<String>) -> Vec<Endpoint> {
    if uid == 0 {
        let system = env("DBUS_SYSTEM_BUS_ADDRESS")
            .and_then(|a| unix_path(&a))
            .unwrap_or_else(|| SYSTEM_BUS.into());
        return vec![
            Endpoint::Bus(system),
            Endpoint::Private(SYSTEMD_PRIVATE.into()),
        ];
    }
    let user = env("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|a| unix_path(&a))
        .or_else(|| {
            env("XDG_RUNTIME_DIR")
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(&d).join("bus"))
        })
        .unwrap_or_else(|| format!("/run/user/{uid}/bus").into());
    vec![Endpoint::Bus(user)]
}

/// The socket of the first `unix:...,path=...` in a D-Bus address list.
fn unix_path(address: &str) -> Option<PathBuf> {
    address.split(';').find_map(|transport| {
        transport
            .strip_prefix("unix:")?
            .split(',')
            .find_map(|kv| kv.strip_prefix("path="))
            .map(PathBuf::from)
    })
}

/// Our effective uid, which the peer checks SASL EXTERNAL against: the
/// owner of /proc/self.
fn effective_uid() -> Result<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| Error::io("/proc/self", e))
}

/// A connection to systemd's manager, over a bus or its private socket.
pub struct Bus {
    sock: UnixStream,
    serial: u32,
}

/// Method arguments.
enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    Props(&'a [(String, Value)]),
    EmptyAux,
}

impl Bus {
    /// The first of [`endpoints`] that answers.
    pub fn connect() -> Result<Bus> {
        let uid = effective_uid()?;
        Bus::connect_first(&endpoints(uid, |k| std::env::var(k).ok()), uid)
    }

    /// Try each endpoint in order; the error names every one and why.
    fn connect_first(endpoints: &[Endpoint], uid: u32) -> Result<Bus> {
        let mut tried = Vec::new();
        for ep in endpoints {
            match Bus::open(ep, uid) {
                Ok(bus) => return Ok(bus),
                Err(e) => tried.push((ep.path().to_path_buf(), e)),
            }
        }
        Err(Error::SystemdUnreachable { tried })
    }

    /// Connect and authenticate (SASL EXTERNAL as `uid`, hex-encoded);
    /// on a bus, say Hello.
    pub fn open(ep: &Endpoint, uid: u32) -> std::io::Result<Bus> {
        let mut sock = UnixStream::connect(ep.path())?;
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.set_write_timeout(Some(IO_TIMEOUT))?;
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        sock.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = read_line(&mut sock)?;
        if !line.starts_with("OK ") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("D-Bus authentication refused: {line}"),
            ));
        }
        sock.write_all(b"BEGIN\r\n")?;
        let mut bus = Bus { sock, serial: 0 };
        if let Endpoint::Bus(_) = ep {
            bus.call(DBUS, "/org/freedesktop/DBus", DBUS, "Hello", "", &[])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(bus)
    }

    fn start_transient_unit(&mut self, name: &str, props: &[(String, Value)]) -> Result<()> {
        self.call_systemd(
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            &[
                Arg::Str(name),
                Arg::Str("replace"),
                Arg::Props(props),
                Arg::EmptyAux,
            ],
        )
    }

    fn call_systemd(&mut self, member: &str, sig: &str, args: &[Arg]) -> Result<()> {
        self.call(
            SYSTEMD,
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            member,
            sig,
            args,
        )
    }

    /// A method call and its reply; anything else that arrives meanwhile
    /// (signals) is skipped.
    fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        sig: &str,
        args: &[Arg],
    ) -> Result<()> {
        self.serial += 1;
        let msg = method_call(self.serial, dest, path, iface, member, sig, args);
        let io = |e: std::io::Error| Error::Usage(format!("D-Bus {member}: {e}"));
        self.sock.write_all(&msg).map_err(io)?;
        loop {
            let reply = read_message(&mut self.sock).map_err(io)?;
            if reply.reply_serial != Some(self.serial) {
                continue;
            }
            let peer = if dest == SYSTEMD { "systemd" } else { "D-Bus" };
            return match reply.typ {
                2 => Ok(()),
                3 => Err(Error::Usage(format!(
                    "{peer} {member}: {}: {}",
                    reply.error_name.unwrap_or_default(),
                    reply.error_message.unwrap_or_default()
                ))),
                t => Err(Error::Usage(format!(
                    "D-Bus {member}: unexpected reply type {t}"
                ))),
            };
        }
    }
}

fn read_line(sock: &mut UnixStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        if sock.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Marshalling with D-Bus alignment (offsets from the message start).
#[derive(Default)]
pub struct Enc {
    pub buf: Vec<u8>,
}

impl Enc {
    fn pad(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.pad(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array: length placeholder, padding to the element alignment,
    /// elements, then the length (excluding that padding) filled in.
    fn array(&mut self, elem_align: usize, f: impl FnOnce(&mut Enc)) {
        self.u32(0);
        let len_at = self.buf.len() - 4;
        self.pad(elem_align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn value(&mut self, v: &Value) {
        self.sig(v.signature());
        match v {
            Value::Str(s) => self.str(s),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U64(n) => self.u64(*n),
            Value::U32s(l) => self.array(4, |e| l.iter().for_each(|n| e.u32(*n))),
            Value::Bytes(b) => self.array(1, |e| e.buf.extend_from_slice(b)),
            Value::StrPairs(l) => self.array(8, |e| {
                for (a, b) in l {
                    e.pad(8);
                    e.str(a);
                    e.str(b);
                }
            }),
        }
    }
}

/// A complete little-endian METHOD_CALL message.
fn method_call(
    serial: u32,
    dest: &str,
    path: &str,
    iface: &str,
    member: &str,
    sig: &str,
    args: &[Arg],
) -> Vec<u8> {
    let mut body = Enc::default();
    for a in args {
        match a {
            Arg::Str(s) => body.str(s),
            Arg::Bool(b) => body.u32(u32::from(*b)),
            Arg::Props(props) => body.array(8, |e| {
                for (k, v) in props.iter() {
                    e.pad(8);
                    e.str(k);
                    e.value(v);
                }
            }),
            Arg::EmptyAux => body.array(8, |_| {}),
        }
    }
    let mut m = Enc::default();
    // Little-endian, METHOD_CALL, NO_AUTO_START (never activate a
    // service: systemd is there or it is not), protocol version 1.
    m.buf.extend_from_slice(&[b'l', 1, 2, 1]);
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.array(8, |e| {
        let mut field = |code: u8, sig: &str, val: &str| {
            e.pad(8);
            e.u8(code);
            e.sig(sig);
            if sig == "g" {
                e.sig(val);
            } else {
                e.str(val);
            }
        };
        field(1, "o", path);
        field(2, "s", iface);
        field(3, "s", member);
        field(6, "s", dest);
        if !sig.is_empty() {
            field(8, "g", sig);
        }
    });
    m.pad(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

/// The parts of a received message the client needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub typ: u8,
    pub serial: u32,
    /// MEMBER (method calls and signals).
    pub member: Option<String>,
    pub reply_serial: Option<u32>,
    pub error_name: Option<String>,
    pub error_message: Option<String>,
}

fn read_message(sock: &mut impl Read) -> std::io::Result<Reply> {
    let mut fixed = [0u8; 16];
    sock.read_exact(&mut fixed)?;
    let le = fixed[0] == b'l';
    let u32_at = |b: &[u8], i: usize| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let body_len = u32_at(&fixed, 4) as usize;
    let fields_len = u32_at(&fixed, 12) as usize;
    let padded = (16 + fields_len).div_ceil(8) * 8;
    if body_len + padded > 1 << 26 {
        return Err(std::io::Error::other("D-Bus message too large"));
    }
    let mut rest = vec![0u8; padded - 16 + body_len];
    sock.read_exact(&mut rest)?;
    let mut msg = fixed.to_vec();
    msg.extend_from_slice(&rest);
    Ok(parse_reply(&msg, le))
}

/// Parse the header fields (MEMBER, REPLY_SERIAL, ERROR_NAME, SIGNATURE)
/// and, for errors, the message string of the body.
pub fn parse_reply(msg: &[u8], le: bool) -> Reply {
    let u32_at = |i: usize| -> Option<u32> {
        let a: [u8; 4] = msg.get(i..i + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    };
    let mut r = Reply {
        typ: msg.get(1).copied().unwrap_or(0),
        serial: u32_at(8).unwrap_or(0),
        ..Default::default()
    };
    let fields_len = u32_at(12).unwrap_or(0) as usize;
    let end = 16 + fields_len;
    let mut i = 16;
    let mut body_sig = String::new();
    while i < end && i < msg.len() {
        i = i.div_ceil(8) * 8;
        let Some(&code) = msg.get(i) else { break };
        let Some(&slen) = msg.get(i + 1) else { break };
        let sig =
            String::from_utf8_lossy(msg.get(i + 2..i + 2 + slen as usize).unwrap_or_default())
                .into_owned();
        i += 3 + slen as usize;
        match sig.as_str() {
            "u" => {
                i = i.div_ceil(4) * 4;
                if code == 5 {
                    r.reply_serial = u32_at(i);
                }
                i += 4;
            }
            "s" | "o" => {
                i = i.div_ceil(4) * 4;
                let n = u32_at(i).unwrap_or(0) as usize;
                let s = String::from_utf8_lossy(msg.get(i + 4..i + 4 + n).unwrap_or_default())
                    .into_owned();
                match code {
                    3 => r.member = Some(s),
                    4 => r.error_name = Some(s),
                    _ => {}
                }
                i += 5 + n;
            }
            "g" => {
                let n = msg.get(i).copied().unwrap_or(0) as usize;
                let s = String::from_utf8_lossy(msg.get(i + 1..i + 1 + n).unwrap_or_default())
                    .into_owned();
                if code == 8 {
                    body_sig = s;
                }
                i += 2 + n;
            }
            _ => break,
        }
    }
    if r.typ == 3 && body_sig.starts_with('s') {
        let b = end.div_ceil(8) * 8;
        if let Some(n) = u32_at(b) {
            r.error_message = msg
                .get(b + 4..b + 4 + n as usize)
                .map(|s| String::from_utf8_lossy(s).into_owned());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_like_systemd() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert!(expand_slice("a--b.slice").is_err());
        assert!(expand_slice("a.scope").is_err());
        assert!(expand_slice("a/b.slice").is_err());
    }

    #[test]
    fn cgroups_path_becomes_a_scope() {
        let u = parse_path(Some(Path::new("machine-pod1.slice:cri:abc")), "id").unwrap();
        assert_eq!(u.name, "cri-abc.scope");
        assert_eq!(u.slice, "machine-pod1.slice");
        assert_eq!(u.cgroup, "/machine.slice/machine-pod1.slice/cri-abc.scope");
        let u = parse_path(None, "c1").unwrap();
        assert_eq!(
            (u.name.as_str(), u.cgroup.as_str()),
            ("hull-c1.scope", "/system.slice/hull-c1.scope")
        );
        let u = parse_path(Some(Path::new(":docker:x")), "id").unwrap();
        assert_eq!(u.cgroup, "/system.slice/docker-x.scope");
        let u = parse_path(Some(Path::new("user.slice::x")), "id").unwrap();
        assert_eq!(u.name, "x.scope");
        let u = parse_path(Some(Path::new("system.slice:p:sub.slice")), "id").unwrap();
        assert_eq!(u.name, "sub.slice");
        let e = parse_path(Some(Path::new("/abs/path")), "id").unwrap_err();
        assert!(e.to_string().contains("slice:prefix:name"), "{e}");
    }

    fn prop<'a>(p: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    #[test]
    fn resources_become_unit_properties() {
        let unit = parse_path(None, "c").unwrap();
        let res = Resources::from_value(
            serde_json::json!({
                "memory": {"limit": 1048576, "swap": 2097152},
                "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9"},
                "pids": {"limit": -1},
                "blockIO": {"weight": 500}
            }),
            "linux.resources",
        )
        .unwrap();
        let v1 = properties(&unit, 42, &res, None, false);
        assert_eq!(prop(&v1, "PIDs"), Some(&Value::U32s(vec![42])));
        assert_eq!(prop(&v1, "Slice"), Some(&Value::Str("system.slice".into())));
        assert_eq!(prop(&v1, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(prop(&v1, "MemoryLimit"), Some(&Value::U64(1048576)));
        assert_eq!(prop(&v1, "CPUShares"), Some(&Value::U64(1024)));
        assert_eq!(prop(&v1, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(prop(&v1, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(prop(&v1, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(prop(&v1, "BlockIOWeight"), Some(&Value::U64(500)));
        assert_eq!(
            prop(&v1, "AllowedCPUs"),
            Some(&Value::Bytes(vec![0b0000_0111, 0b0000_0010]))
        );
        let v2 = properties(&unit, 42, &res, None, true);
        assert_eq!(prop(&v2, "MemoryMax"), Some(&Value::U64(1048576)));
        assert_eq!(prop(&v2, "MemorySwapMax"), Some(&Value::U64(1048576)));
        assert_eq!(prop(&v2, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(prop(&v2, "IOWeight"), Some(&Value::U64(4950)));
        assert!(prop(&v2, "MemoryLimit").is_none());
        // runc rounds the quota up to systemd's 10ms granularity.
        assert_eq!(quota_per_sec(12345, 100_000), 130_000);
        assert_eq!(quota_per_sec(-1, 100_000), u64::MAX);
    }

    #[test]
    fn device_rules_become_a_strict_policy() {
        let deny = DeviceRule {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        };
        let p = device_properties(&super::super::devices::container_rules(&[deny]));
        assert_eq!(
            p[0],
            ("DevicePolicy".to_string(), Value::Str("strict".into()))
        );
        let Value::StrPairs(allow) = &p[1].1 else {
            panic!("{p:?}")
        };
        assert!(allow.contains(&("char-*".into(), "m".into())));
        assert!(allow.contains(&("/dev/char/1:3".into(), "rwm".into())));
        let p = device_properties(&[]);
        assert_eq!(
            p,
            vec![("DevicePolicy".to_string(), Value::Str("auto".into()))]
        );
    }

    #[test]
    fn hello_message_bytes_match_the_spec_layout() {
        let m = method_call(
            1,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            "",
            &[],
        );
        assert_eq!(&m[..4], &[b'l', 1, 2, 1]);
        assert_eq!(
            u32::from_le_bytes(m[4..8].try_into().unwrap()),
            0,
            "empty body"
        );
        assert_eq!(
            u32::from_le_bytes(m[8..12].try_into().unwrap()),
            1,
            "serial"
        );
        let fields = u32::from_le_bytes(m[12..16].try_into().unwrap()) as usize;
        assert_eq!(m.len(), (16 + fields).div_ceil(8) * 8);
        // First field: PATH, signature "o", the path string.
        assert_eq!(&m[16..20], &[1, 1, b'o', 0]);
        assert_eq!(u32::from_le_bytes(m[20..24].try_into().unwrap()), 21);
        assert_eq!(&m[24..45], b"/org/freedesktop/DBus");
    }

    #[test]
    fn start_transient_unit_body_is_well_formed() {
        let props = vec![
            ("Description".to_string(), Value::Str("x".into())),
            ("PIDs".to_string(), Value::U32s(vec![7])),
            ("MemoryLimit".to_string(), Value::U64(1 << 20)),
            ("Delegate".to_string(), Value::Bool(true)),
        ];
        let m = method_call(
            2,
            "d",
            "/p",
            "i",
            "StartTransientUnit",
            "ssa(sv)a(sa(sv))",
            &[
                Arg::Str("u.scope"),
                Arg::Str("replace"),
                Arg::Props(&props),
                Arg::EmptyAux,
            ],
        );
        let fields = u32::from_le_bytes(m[12..16].try_into().unwrap()) as usize;
        let body = &m[(16 + fields).div_ceil(8) * 8..];
        assert_eq!(
            body.len(),
            u32::from_le_bytes(m[4..8].try_into().unwrap()) as usize
        );
        // "u.scope", "replace", then the a(sv) whose length covers the four
        // properties, then the empty a(sa(sv)).
        assert_eq!(&body[..4], &7u32.to_le_bytes());
        assert_eq!(&body[4..12], b"u.scope\0");
        assert_eq!(&body[12..16], &7u32.to_le_bytes());
        assert_eq!(&body[16..24], b"replace\0");
        let arr_len = u32::from_le_bytes(body[24..28].try_into().unwrap()) as usize;
        // Elements start 8-aligned at 32; the aux array follows.
        let aux = (32 + arr_len).div_ceil(4) * 4;
        assert_eq!(&body[aux..aux + 4], &0u32.to_le_bytes());
        assert_eq!(
            body.len(),
            (aux + 4).div_ceil(8) * 8,
            "nothing after the empty aux array"
        );
    }

    #[test]
    fn parses_an_error_reply() {
        // ERROR reply: REPLY_SERIAL=2, ERROR_NAME, SIGNATURE "s", body "boom".
        let mut h = Enc::default();
        h.buf.extend_from_slice(&[b'l', 3, 1, 1]);
        h.u32(8);
        h.u32(9);
        h.array(8, |e| {
            e.pad(8);
            e.u8(5);
            e.sig("u");
            e.u32(2);
            e.pad(8);
            e.u8(4);
            e.sig("s");
            e.str("org.freedesktop.systemd1.UnitExists");
            e.pad(8);
            e.u8(8);
            e.sig("g");
            e.sig("s");
        });
        h.pad(8);
        h.str("boom");
        let r = parse_reply(&h.buf, true);
        assert_eq!(r.typ, 3);
        assert_eq!(r.reply_serial, Some(2));
        assert_eq!(
            r.error_name.as_deref(),
            Some("org.freedesktop.systemd1.UnitExists")
        );
        assert_eq!(r.error_message.as_deref(), Some("boom"));
        let back = read_message(&mut &h.buf[..]).unwrap();
        assert_eq!(back, r);
    }

    /// Against a real (private) dbus-daemon, which validates every message
    /// it routes: Hello works, and StartTransientUnit with properties is
    /// well-formed enough to be routed and answered with NameHasNoOwner
    /// (there is no systemd on that bus, and calls never auto-start one).
    #[test]
    fn talks_to_a_real_dbus_daemon() {
        let conf = "/usr/share/dbus-1/session.conf";
        if !Path::new("/usr/bin/dbus-daemon").exists() || !Path::new(conf).exists() {
            eprintln!("skipped: no dbus-daemon");
            return;
        }
        let sock = std::env::temp_dir().join(format!("hull-dbus-{}", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let mut daemon = std::process::Command::new("/usr/bin/dbus-daemon")
            .arg(format!("--config-file={conf}"))
            .arg(format!("--address=unix:path={}", sock.display()))
            .arg("--nofork")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let result = (|| {
            let mut bus = Bus::open(&Endpoint::Bus(sock.clone()), effective_uid()?)
                .map_err(|e| Error::io(&sock, e))?;
            let unit = parse_path(None, "t").unwrap();
            let res = Resources::from_value(
                serde_json::json!({"memory": {"limit": 1048576}, "cpu": {"cpus": "0"}}),
                "r",
            )
            .unwrap();
            let deny = DeviceRule {
                allow: false,
                access: Some("rwm".into()),
                ..Default::default()
            };
            let rules = super::super::devices::container_rules(&[deny]);
            let props = properties(&unit, 1, &res, Some(&rules), false);
            bus.start_transient_unit(&unit.name, &props)
        })();
        let _ = daemon.kill();
        let _ = daemon.wait();
        let _ = std::fs::remove_file(&sock);
        let e = result.unwrap_err().to_string();
        assert!(
            e.contains("org.freedesktop.DBus.Error.NameHasNoOwner"),
            "{e}"
        );
        assert!(e.contains("StartTransientUnit"), "{e}");
    }

    #[test]
    fn endpoints_are_the_system_bus_then_the_private_socket_as_root() {
        let none = |_: &str| None;
        assert_eq!(
            endpoints(0, none),
            vec![
                Endpoint::Bus(SYSTEM_BUS.into()),
                Endpoint::Private(SYSTEMD_PRIVATE.into())
            ]
        );
        let env = |k: &str| {
            (k == "DBUS_SYSTEM_BUS_ADDRESS").then(|| "tcp:host=x;unix:guid=1,path=/b/s".to_string())
        };
        assert_eq!(endpoints(0, env)[0], Endpoint::Bus("/b/s".into()));
        assert_eq!(
            endpoints(0, env)[1],
            Endpoint::Private(SYSTEMD_PRIVATE.into())
        );
    }

    #[test]
    fn endpoints_are_the_user_bus_when_rootless() {
        let env = |session: Option<&'static str>, xdg: Option<&'static str>| {
            move |k: &str| match k {
                "DBUS_SESSION_BUS_ADDRESS" => session.map(String::from),
                "XDG_RUNTIME_DIR" => xdg.map(String::from),
                "DBUS_SYSTEM_BUS_ADDRESS" => Some("unix:path=/sys/bus".into()),
                _ => None,
            }
        };
        let only = |p: &str| vec![Endpoint::Bus(p.into())];
        assert_eq!(
            endpoints(1000, env(Some("unix:path=/s/bus"), Some("/x"))),
            only("/s/bus")
        );
        assert_eq!(endpoints(1000, env(None, Some("/x"))), only("/x/bus"));
        assert_eq!(endpoints(1000, env(None, None)), only("/run/user/1000/bus"));
    }

    /// A method return or a signal, as a peer sends them.
    fn peer_message(typ: u8, serial: u32, reply_serial: Option<u32>) -> Vec<u8> {
        let mut m = Enc::default();
        m.buf.extend_from_slice(&[b'l', typ, 1, 1]);
        m.u32(0);
        m.u32(serial);
        m.array(8, |e| {
            let mut field = |code: u8, sig: &str, val: &str| {
                e.pad(8);
                e.u8(code);
                e.sig(sig);
                e.str(val);
            };
            if typ == 4 {
                field(1, "o", "/org/freedesktop/systemd1");
                field(2, "s", "org.freedesktop.systemd1.Manager");
                field(3, "s", "JobRemoved");
            }
            if let Some(r) = reply_serial {
                e.pad(8);
                e.u8(5);
                e.sig("u");
                e.u32(r);
            }
        });
        m.pad(8);
        m.buf
    }

    /// The peer side of a connection on `listener`: SASL (OK to any
    /// EXTERNAL), then `calls` method calls, each answered after a signal
    /// (systemd sends them unasked on its private socket). Returns the
    /// AUTH line and the members called, in order.
    fn fake_peer(
        listener: std::os::unix::net::UnixListener,
        calls: usize,
    ) -> std::thread::JoinHandle<std::io::Result<(String, Vec<String>)>> {
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept()?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let auth = read_line(&mut s)?;
            s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")?;
            let begin = read_line(&mut s)?;
            if begin != "BEGIN" {
                return Err(std::io::Error::other(format!("not BEGIN: {begin}")));
            }
            let mut members = Vec::new();
            for n in 1..=calls {
                let call = read_message(&mut s)?;
                members.push(call.member.unwrap_or_default());
                s.write_all(&peer_message(4, 2 * n as u32, None))?;
                s.write_all(&peer_message(2, 2 * n as u32 + 1, Some(call.serial)))?;
            }
            Ok((auth, members))
        })
    }

    fn temp_socket(name: &str) -> (PathBuf, std::os::unix::net::UnixListener) {
        let path = std::env::temp_dir().join(format!("hull-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        (path, listener)
    }

    fn start_a_unit(bus: &mut Bus) -> Result<()> {
        let unit = parse_path(None, "t").unwrap();
        let props = properties(&unit, 1, &Resources::default(), None, true);
        bus.start_transient_unit(&unit.name, &props)
    }

    #[test]
    fn private_socket_gets_no_hello() {
        let (path, listener) = temp_socket("private");
        let peer = fake_peer(listener, 1);
        let mut bus = Bus::open(&Endpoint::Private(path.clone()), 0).unwrap();
        let call = start_a_unit(&mut bus);
        let (auth, members) = peer.join().unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
        call.unwrap();
        assert_eq!(auth, "\0AUTH EXTERNAL 30");
        assert_eq!(members, ["StartTransientUnit"]);
    }

    #[test]
    fn a_bus_gets_hello_first() {
        let (path, listener) = temp_socket("bus");
        let peer = fake_peer(listener, 2);
        let mut bus = Bus::open(&Endpoint::Bus(path.clone()), 1000).unwrap();
        let call = start_a_unit(&mut bus);
        let (auth, members) = peer.join().unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
        call.unwrap();
        assert_eq!(auth, "\0AUTH EXTERNAL 31303030");
        assert_eq!(members, ["Hello", "StartTransientUnit"]);
    }

    #[test]
    fn falls_back_to_the_private_socket() {
        let (path, listener) = temp_socket("fallback");
        let peer = fake_peer(listener, 1);
        let eps = [
            Endpoint::Bus("/nonexistent/hull-bus".into()),
            Endpoint::Private(path.clone()),
        ];
        let call = Bus::connect_first(&eps, 0).and_then(|mut bus| start_a_unit(&mut bus));
        let (_, members) = peer.join().unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
        call.unwrap();
        assert_eq!(members, ["StartTransientUnit"]);
    }

    #[test]
    fn unreachable_systemd_names_every_socket_tried() {
        let eps = [
            Endpoint::Bus("/nonexistent/hull-bus".into()),
            Endpoint::Private("/nonexistent/hull-private".into()),
        ];
        let e = Bus::connect_first(&eps, 0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains(
                "systemd is not reachable: /nonexistent/hull-bus: No such file or directory \
                 (os error 2); /nonexistent/hull-private: No such file or directory"
            ),
            "{e}"
        );
    }
}
