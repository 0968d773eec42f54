//! config.json: loading, validation (errors name the field), and the
//! default configuration `hull spec` writes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec, User};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The runtime-spec version hull implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Read and validate `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let msg = if e.kind() == std::io::ErrorKind::NotFound {
            "no config.json in the bundle (create one with `hull spec`)".to_string()
        } else {
            e.to_string()
        };
        Error::ConfigParse {
            path: path.clone(),
            msg,
        }
    })?;
    let mut spec = parse(&text).map_err(|msg| Error::ConfigParse {
        path: path.clone(),
        msg,
    })?;
    normalize(&mut spec);
    validate(&spec)?;
    Ok(spec)
}

/// Takes what runc 1.1 accepts rather than refusing it, so that bundles
/// made for runc keep working: an empty namespace path means none (Go's
/// omitempty), and a relative mount destination (with a deprecation
/// warning) is relative to the container's root.
pub fn normalize(spec: &mut Spec) {
    let namespaces = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut());
    for ns in namespaces.into_iter().flatten() {
        if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            ns.set_path(None);
        }
    }
    for (i, m) in spec.mounts_mut().iter_mut().flatten().enumerate() {
        let d = m.destination();
        if d.is_absolute() {
            continue;
        }
        let abs = Path::new("/").join(d);
        crate::logging::warn(&format!(
            "mounts[{i}].destination: {d:?} is not an absolute path; mounting it at {abs:?} \
             as runc does (the runtime-spec requires absolute destinations)"
        ));
        m.set_destination(abs);
    }
}

/// The highest uid or gid runc accepts (its user lookup refuses the rest);
/// 4294967295 would be (uid_t)-1, "leave unchanged" to setuid(2).
pub const MAX_ID: u32 = i32::MAX as u32;

/// `process.user`'s ids must be in runc's range (create and exec).
pub fn check_user(user: &User) -> Result<()> {
    let ids = [
        ("uid".to_string(), user.uid()),
        ("gid".to_string(), user.gid()),
    ];
    let extra = user.additional_gids().iter().flatten().enumerate();
    let extra = extra.map(|(i, g)| (format!("additionalGids[{i}]"), *g));
    for (field, id) in ids.into_iter().chain(extra) {
        if id > MAX_ID {
            return Err(Error::config(
                format!("process.user.{field}"),
                format!("{id} is out of range (uids and gids must be in 0-{MAX_ID})"),
            ));
        }
    }
    Ok(())
}

/// Parse config.json text; the error names the line/column or the field.
///
/// The text goes straight into the typed spec (no intermediate JSON tree),
/// with the field path tracked for errors. Only a config with a seccomp
/// profile (hull checks it on the JSON, with its own messages) or one that
/// fails (unknown capability names are dropped with a warning, then it is
/// tried again) is also read as a JSON tree.
pub fn parse(text: &str) -> std::result::Result<Spec, String> {
    // A NUL byte can only come in as the escape \u0000; no path, argument
    // or name hull hands the kernel may hold one (runc fails on them late).
    if text.contains("\\u0000") {
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            if let Some(field) = nul_field(&value, "") {
                return Err(format!("{field}: contains a NUL byte"));
            }
        }
    }
    match typed(text) {
        Ok(spec) => {
            let seccomp = spec.linux().as_ref().is_some_and(|l| l.seccomp().is_some());
            let lists = !only_spec_lists(text);
            if seccomp || lists {
                let value: Value =
                    serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
                if lists {
                    no_list_for_object(&value, &spec)?;
                }
                if seccomp {
                    crate::seccomp::profile::check_json(&value)?;
                }
            }
            Ok(spec)
        }
        Err(typed_err) => {
            let mut value: Value =
                serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
            if !value.is_object() {
                return Err("malformed config: the top level must be a JSON object".into());
            }
            let dropped = drop_unknown_capabilities(&mut value);
            let no_seccomp = drop_empty_seccomp(&mut value);
            crate::seccomp::profile::check_json(&value)?;
            if dropped || no_seccomp {
                let spec = typed(&value.to_string())?;
                no_list_for_object(&value, &spec)?;
                return Ok(spec);
            }
            Err(typed_err)
        }
    }
}

/// The first field (a value, or the object holding a key) with a NUL byte,
/// outside `annotations` (free-form, never handed to the kernel).
fn nul_field(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::String(s) => s.contains('\0').then(|| at.to_string()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, &format!("{at}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, v)| {
            if at.is_empty() && k == "annotations" {
                return None;
            }
            let field = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                return Some(format!("{field:?}"));
            }
            nul_field(v, &field)
        }),
        _ => None,
    }
}

/// A seccomp object without defaultAction (or an empty one) and without
/// syscalls is no filter at all to runc; it is removed (the typed spec
/// requires an action). Returns whether it was.
fn drop_empty_seccomp(config: &mut Value) -> bool {
    let Some(linux) = config.get_mut("linux").and_then(Value::as_object_mut) else {
        return false;
    };
    let Some(seccomp) = linux.get("seccomp").and_then(Value::as_object) else {
        return false;
    };
    let no_action = seccomp
        .get("defaultAction")
        .is_none_or(|a| a.as_str() == Some(""));
    let no_rules = seccomp
        .get("syscalls")
        .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty));
    if no_action && no_rules {
        linux.remove("seccomp");
    }
    no_action && no_rules
}

/// The runtime-spec fields whose values are JSON arrays.
const LIST_FIELDS: &[&[u8]] = &[
    b"args",
    b"env",
    b"mounts",
    b"options",
    b"namespaces",
    b"uidMappings",
    b"gidMappings",
    b"devices",
    b"maskedPaths",
    b"readonlyPaths",
    b"additionalGids",
    b"rlimits",
    b"bounding",
    b"effective",
    b"inheritable",
    b"permitted",
    b"ambient",
    b"prestart",
    b"createRuntime",
    b"createContainer",
    b"startContainer",
    b"poststart",
    b"poststop",
    b"syscalls",
    b"names",
    b"architectures",
    b"flags",
    b"weightDevice",
    b"throttleReadBpsDevice",
    b"throttleWriteBpsDevice",
    b"throttleReadIOPSDevice",
    b"throttleWriteIOPSDevice",
    b"hugepageLimits",
    b"priorities",
    b"schemata",
    b"nodes",
];

/// Whether every `"key": [` in the text has a key the spec makes a list:
/// then no array stands where an object belongs, and the JSON tree walk
/// below (a second parse on the start path) is not needed. Conservative: an
/// unknown key, or a `[` this scan cannot place, sends it to the walk.
fn only_spec_lists(text: &str) -> bool {
    let b = text.as_bytes();
    for (i, _) in b.iter().enumerate().filter(|(_, &c)| c == b'[') {
        let mut j = i;
        while j > 0 && b[j - 1].is_ascii_whitespace() {
            j -= 1;
        }
        match j.checked_sub(1).map(|k| b[k]) {
            Some(b':') => {}
            // The top level, or an array in an array (where the spec has
            // objects or strings): for the walk to judge.
            None | Some(b'[') | Some(b',') => return false,
            // Inside a string's text.
            Some(_) => continue,
        }
        j -= 1;
        while j > 0 && b[j - 1].is_ascii_whitespace() {
            j -= 1;
        }
        if j == 0 || b[j - 1] != b'"' {
            return false;
        }
        let end = j - 1;
        let Some(start) = b[..end].iter().rposition(|&c| c == b'"') else {
            return false;
        };
        if !LIST_FIELDS.contains(&&b[start + 1..end]) {
            return false;
        }
    }
    true
}

/// serde takes a JSON array for a struct (its fields in order: `[]` is a
/// struct of defaults, `[24, 80]` a consoleSize); runc (Go) refuses it, and
/// so does hull: the config as given is walked against the typed spec.
fn no_list_for_object(given: &Value, spec: &Spec) -> std::result::Result<(), String> {
    let typed = serde_json::to_value(spec).map_err(|e| format!("config: {e}"))?;
    match list_where_object(given, &typed) {
        None => Ok(()),
        Some(mut field) => {
            field.reverse();
            Err(format!(
                "{}: invalid type: sequence, expected a JSON object",
                field.concat().trim_start_matches('.')
            ))
        }
    }
}

/// The path (innermost segment first) of an array in `given` where
/// `typed` has an object.
fn list_where_object(given: &Value, typed: &Value) -> Option<Vec<String>> {
    let (mut path, segment) = match (given, typed) {
        (Value::Array(_), Value::Object(_)) => return Some(Vec::new()),
        (Value::Object(g), Value::Object(t)) => g.iter().find_map(|(k, v)| {
            let inner = list_where_object(v, t.get(k)?)?;
            Some((inner, format!(".{k}")))
        })?,
        (Value::Array(g), Value::Array(t)) => g
            .iter()
            .zip(t)
            .enumerate()
            .find_map(|(i, (v, tv))| Some((list_where_object(v, tv)?, format!("[{i}]"))))?,
        _ => return None,
    };
    path.push(segment);
    Some(path)
}

/// The typed spec from JSON text; errors are `field.path: what`.
fn typed(text: &str) -> std::result::Result<Spec, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        format!("{field}: {}", e.inner())
    })?;
    de.end().map_err(|e| format!("malformed JSON: {e}"))?;
    Ok(spec)
}

/// Capability names hull does not know (newer kernels' ones, typos) are
/// dropped from `process.capabilities.*` with a warning naming them, as runc
/// does, so that configs written for newer kernels keep working.
/// Returns whether any were dropped.
fn drop_unknown_capabilities(config: &mut Value) -> bool {
    let Some(caps) = config
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    else {
        return false;
    };
    let mut unknown: Vec<(String, Vec<&str>)> = Vec::new();
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        let Some(list) = caps.get_mut(set).and_then(Value::as_array_mut) else {
            continue;
        };
        list.retain(|c| {
            let name = c.as_str().unwrap_or_default();
            if crate::process::caps::NAMES.contains(&name) || !c.is_string() {
                return true;
            }
            match unknown.iter_mut().find(|(n, _)| n == name) {
                Some((_, sets)) => sets.push(set),
                None => unknown.push((name.to_string(), vec![set])),
            }
            false
        });
    }
    let dropped = !unknown.is_empty();
    for (name, sets) in unknown {
        crate::logging::warn(&format!(
            "ignoring unknown or unavailable capability {name:?} (process.capabilities.{})",
            sets.join(", process.capabilities.")
        ));
    }
    dropped
}

/// Check what the runtime-spec requires and what hull needs, before anything
/// is created. Every error names the offending field.
pub fn validate(spec: &Spec) -> Result<()> {
    // ociVersion is not checked: runc takes any string (or none), and
    // engines write all sorts of versions.
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::config("root", "required"))?;
    if root.path().as_os_str().is_empty() {
        return Err(Error::config("root.path", "must not be empty"));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::config("process", "required"))?;
    check_user(process.user())?;
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return Err(Error::config("process.args", "must not be empty")),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config(
            "process.cwd",
            format!("must be an absolute path, got {:?}", process.cwd()),
        ));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(Error::config(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not of the form KEY=value"),
                ));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::config("linux", "required on Linux"))?;

    let mut seen = HashSet::new();
    let mut new_ns = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}]"),
                format!("duplicate namespace type {}", ns.typ()),
            ));
        }
        if ns.path().is_none() {
            new_ns.insert(ns.typ());
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::config(
                    format!("linux.namespaces[{i}].path"),
                    "must be an absolute path",
                ));
            }
        }
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if has_maps && !has_userns {
        return Err(Error::config(
            "linux.uidMappings",
            "id mappings need a user namespace in linux.namespaces",
        ));
    }
    if new_ns.contains(&LinuxNamespaceType::User) && !has_maps {
        return Err(Error::config(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "hostname",
            "cannot set the hostname without a UTS namespace in linux.namespaces",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(Error::config(
            "domainname",
            "cannot set the domainname without a UTS namespace in linux.namespaces",
        ));
    }
    for (key, _) in linux.sysctl().iter().flatten() {
        if key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..") {
            return Err(Error::config(
                format!("linux.sysctl.{key}"),
                "not a valid sysctl name",
            ));
        }
        if let Some(why) = sysctl_refusal(key, &seen) {
            return Err(Error::config(format!("linux.sysctl.{key}"), why));
        }
    }
    // runc: "unable to restrict sys entries without a private MNT namespace".
    let restricts = [linux.masked_paths(), linux.readonly_paths()]
        .iter()
        .any(|l| l.as_ref().is_some_and(|l| !l.is_empty()));
    if restricts && !seen.contains(&LinuxNamespaceType::Mount) {
        return Err(Error::config(
            "linux.maskedPaths",
            "masked and read-only paths need a mount namespace in linux.namespaces",
        ));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let d = m.destination();
        // hull writes to /proc while setting up (oom_score_adj, sysctls):
        // only a real procfs may be mounted there (CVE-2019-16884/19921).
        if d.components().eq(Path::new("/proc").components())
            && m.typ().as_deref().is_some_and(|t| t != "proc")
        {
            return Err(Error::config(
                format!("mounts[{i}]"),
                format!(
                    "/proc must be a proc mount, not {:?}",
                    m.typ().as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in all {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(Error::config(
                        format!("hooks.{name}[{i}].path"),
                        "must be an absolute path",
                    ));
                }
                if h.timeout().is_some_and(|t| t <= 0) {
                    return Err(Error::config(
                        format!("hooks.{name}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }
    if let Some(s) = linux.seccomp() {
        crate::seccomp::profile::validate(s)?;
    }
    Ok(())
}

/// The IPC sysctls runc lets a container with its own IPC namespace set.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Why sysctl `key` may not be set, by runc's rule: only sysctls of a
/// namespace the container has of its own, so none changes the host.
fn sysctl_refusal(key: &str, ns: &HashSet<LinuxNamespaceType>) -> Option<&'static str> {
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        return (!ns.contains(&LinuxNamespaceType::Ipc))
            .then_some("not allowed in the host IPC namespace (add an ipc namespace)");
    }
    if key.starts_with("net.") {
        return (!ns.contains(&LinuxNamespaceType::Network))
            .then_some("not allowed in the host network namespace (add a network namespace)");
    }
    match key {
        "kernel.domainname" if ns.contains(&LinuxNamespaceType::Uts) => None,
        "kernel.hostname" => Some("not allowed: it conflicts with the hostname field"),
        _ => Some("not in a namespace of the container's own, so it would change the host"),
    }
}

/// Absolute `path` with `.`, `..` and repeated slashes taken out lexically
/// (`..` never above `/`), like Go's filepath.Clean: runc refuses a rootfs whose
/// resolved path differs from this, i.e. one that is or goes through a
/// symlink.
pub fn clean_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// The bundle's rootfs as an absolute path.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> PathBuf {
    let p = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    if p.is_absolute() {
        p
    } else {
        bundle.join(p)
    }
}

/// The default config.json written by `hull spec`, shaped like runc's.
pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut devpts_opts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    if !rootless {
        devpts_opts.push("gid=5");
    }
    let sys_mount = if rootless {
        json!({"destination": "/sys", "type": "none", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    } else {
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]})
    };
    let mut linux = json!({
        "namespaces": [
            {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "mount"}
        ],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
        ]
    });
    if rootless {
        // SAFETY-free: getuid/getgid cannot fail.
        let (uid, gid) = (
            crate::process::user::current_uid(),
            crate::process::user::current_gid(),
        );
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}, {"type": "user"}
        ]);
    } else {
        linux["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    }
    // As runc: a cgroup namespace too on a pure cgroup v2 host (after
    // mount, before user).
    let v2 = crate::cgroups::discover().is_ok_and(|(l, _)| l == crate::cgroups::Layout::V2);
    if let (true, Some(list)) = (v2, linux["namespaces"].as_array_mut()) {
        let at = list
            .iter()
            .position(|n| n["type"] == "mount")
            .map_or(list.len(), |i| i + 1);
        list.insert(at, json!({"type": "cgroup"}));
    }
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "hull",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": devpts_opts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            sys_mount,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": linux
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn clean_path_is_lexical() {
        use std::path::Path;
        for (p, want) in [
            ("/a/b/../c", "/a/c"),
            ("/a/./b//c/", "/a/b/c"),
            ("/../..", "/"),
            ("/a/real/../real", "/a/real"),
        ] {
            assert_eq!(super::clean_path(Path::new(p)), Path::new(want), "{p}");
        }
    }

    #[test]
    fn list_scan_sends_every_array_where_an_object_belongs_to_the_walk() {
        use super::only_spec_lists as ok;
        assert!(ok(
            r#"{"process": {"args": ["sh", "-c", "a=[1]"], "env": []}}"#
        ));
        assert!(ok(
            r#"{"mounts": [{"options": ["ro"]}], "linux": {"maskedPaths" : [ ]}}"#
        ));
        assert!(!ok(r#"{"process": {"capabilities": []}}"#));
        assert!(!ok(r#"{"process": {"consoleSize": [24, 80]}}"#));
        assert!(!ok(r#"{"mounts": [["/x"]]}"#));
        assert!(!ok(r#"[]"#));
        // (an_array_for_an_object_is_refused_like_runc: the walk's errors.)
    }

    use super::*;

    #[test]
    fn default_spec_is_valid() {
        for rootless in [false, true] {
            let text = serde_json::to_string(&default_spec(rootless)).unwrap();
            let spec = parse(&text).unwrap();
            validate(&spec).unwrap();
        }
    }

    #[test]
    fn unknown_capabilities_are_dropped_before_parsing() {
        let mut v = default_spec(false);
        v["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_NOT_YET_INVENTED"]);
        v["process"]["capabilities"]["ambient"] = json!(["CAP_NOT_YET_INVENTED"]);
        let spec = parse(&v.to_string()).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.ambient().as_ref().unwrap().is_empty());
    }

    #[test]
    fn seccomp_errors_name_the_field() {
        let mut v = default_spec(false);
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOPE"}]});
        let err = parse(&v.to_string()).unwrap_err();
        assert!(
            err.starts_with("linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_NOPE\""),
            "{err}"
        );
        let mut v = default_spec(false);
        v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1});
        validate(&parse(&v.to_string()).unwrap()).unwrap();
    }

    #[test]
    fn a_nul_byte_is_refused_naming_the_field() {
        // Found by tests/props.rs: a NUL in linux.maskedPaths (or any path,
        // argument or name) passed validation, then create failed with
        // "\"\\0\" contains a NUL byte", naming no field.
        for (field, value) in [
            ("/linux/maskedPaths/0", "/proc/\0kcore"),
            ("/process/args/0", "s\0h"),
            ("/process/env/1", "A=\0"),
            ("/mounts/2/options/1", "\0"),
            ("/hostname", "a\0"),
        ] {
            let mut v = default_spec(false);
            *v.pointer_mut(field).unwrap() = json!(value);
            let err = parse(&v.to_string()).unwrap_err();
            let want = field
                .trim_start_matches('/')
                .split('/')
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => format!("[{i}]"),
                    Err(_) => format!(".{s}"),
                })
                .collect::<String>();
            let want = format!("{}: contains a NUL byte", want.trim_start_matches('.'));
            assert_eq!(err, want);
        }
        // Annotations are free-form.
        let mut v = default_spec(false);
        v["annotations"] = json!({"k": "a\0b"});
        validate(&parse(&v.to_string()).unwrap()).unwrap();
        // A literal backslash-u0000 is no NUL.
        let mut v = default_spec(false);
        v["process"]["args"] = json!(["sh", "\\u0000"]);
        parse(&v.to_string()).unwrap();
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse("{not json").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut v = default_spec(false);
        v["process"]["user"]["uid"] = json!("root");
        let err = parse(&v.to_string()).unwrap_err();
        assert!(err.starts_with("process.user.uid"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut v = default_spec(false);
        v["process"]["args"] = json!([]);
        let spec = parse(&v.to_string()).unwrap();
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("process.args"), "{err}");

        let mut v = default_spec(false);
        v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
        let spec = parse(&v.to_string()).unwrap();
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("hostname"), "{err}");

        let mut v = default_spec(false);
        v["process"]["user"]["additionalGids"] = json!([5, 4294967295u32]);
        let spec = parse(&v.to_string()).unwrap();
        let err = validate(&spec).unwrap_err().to_string();
        assert!(err.contains("process.user.additionalGids[1]"), "{err}");
    }

    #[test]
    fn relative_mount_destination_is_under_the_root() {
        let mut v = default_spec(false);
        v["mounts"][0]["destination"] = json!("proc");
        v["mounts"][1]["destination"] = json!("relative/../dir");
        let mut spec = parse(&v.to_string()).unwrap();
        normalize(&mut spec);
        validate(&spec).unwrap();
        let dests: Vec<_> = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| m.destination())
            .collect();
        assert_eq!(dests[0], Path::new("/proc"));
        assert_eq!(dests[1], Path::new("/relative/../dir"));
    }

    #[test]
    fn any_oci_version_is_accepted_like_runc() {
        for version in ["0.1.0", "", "2.0.0", "banana"] {
            let mut v = default_spec(false);
            v["ociVersion"] = json!(version);
            validate(&parse(&v.to_string()).unwrap()).unwrap();
        }
    }

    #[test]
    fn ids_above_runc_range_are_refused() {
        for (field, value) in [("uid", 4294967295u32), ("gid", 2147483648)] {
            let mut v = default_spec(false);
            v["process"]["user"][field] = json!(value);
            let err = validate(&parse(&v.to_string()).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("process.user.{field}")), "{err}");
        }
        let mut v = default_spec(false);
        v["process"]["user"]["uid"] = json!(MAX_ID);
        validate(&parse(&v.to_string()).unwrap()).unwrap();
    }

    #[test]
    fn sysctls_outside_the_containers_namespaces_are_refused() {
        for (key, ok) in [
            ("net.ipv4.ip_forward", true),
            ("kernel.msgmax", true),
            ("fs.mqueue.msg_max", true),
            ("kernel.domainname", true),
            ("kernel.hostname", false),
            ("vm.swappiness", false),
            ("kernel.panic", false),
        ] {
            let mut v = default_spec(false);
            v["linux"]["sysctl"] = json!({ key: "1" });
            let res = validate(&parse(&v.to_string()).unwrap());
            assert_eq!(res.is_ok(), ok, "{key}: {res:?}");
        }
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}]);
        v["linux"]["sysctl"] = json!({"kernel.shmmax": "1"});
        let err = validate(&parse(&v.to_string()).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("linux.sysctl.kernel.shmmax"),
            "{err}"
        );
    }

    #[test]
    fn masked_paths_need_a_mount_namespace() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}]);
        let err = validate(&parse(&v.to_string()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("linux.maskedPaths"), "{err}");
    }

    #[test]
    fn an_empty_namespace_path_means_a_new_namespace() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"][0]["path"] = json!("");
        let mut spec = parse(&v.to_string()).unwrap();
        normalize(&mut spec);
        validate(&spec).unwrap();
        let ns = &spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()[0];
        assert!(ns.path().is_none());
    }

    #[test]
    fn an_array_for_an_object_is_refused_like_runc() {
        let mut v = default_spec(false);
        v["process"]["capabilities"] = json!([]);
        let err = parse(&v.to_string()).unwrap_err();
        assert!(
            err.starts_with("process.capabilities: invalid type"),
            "{err}"
        );
        let mut v = default_spec(false);
        v["linux"]["resources"] = json!([]);
        let err = parse(&v.to_string()).unwrap_err();
        assert!(err.starts_with("linux.resources: invalid type"), "{err}");
        let mut v = default_spec(false);
        v["process"]["consoleSize"] = json!([24, 80]);
        let err = parse(&v.to_string()).unwrap_err();
        assert!(err.starts_with("process.consoleSize"), "{err}");
        let mut v = default_spec(false);
        v["mounts"][2]["options"] = json!(["ro"]);
        parse(&v.to_string()).unwrap();
    }

    #[test]
    fn an_empty_seccomp_object_is_no_filter_like_runc() {
        for seccomp in [json!({}), json!({"defaultAction": "", "syscalls": []})] {
            let mut v = default_spec(false);
            v["linux"]["seccomp"] = seccomp;
            let spec = parse(&v.to_string()).unwrap();
            assert!(spec.linux().as_ref().unwrap().seccomp().is_none());
        }
        let mut v = default_spec(false);
        v["linux"]["seccomp"] =
            json!({"syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]});
        assert!(parse(&v.to_string()).is_err());
    }
}
