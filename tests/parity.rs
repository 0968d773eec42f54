//! Generated parity with runc: for every config field the runtime-spec
//! defines, a family of mutations (missing, wrong JSON type, empty,
//! negative, huge, relative path, unknown enum value, duplicate entry,
//! invalid combination) is applied to a valid config, and each mutated
//! config goes through `create` with runc and with the runtime under test
//! (never started; `delete --force` right after). Both must accept or both
//! refuse. The fields are one table, [`FIELDS`]: adding a field is one line.
//!
//! Every remaining difference must be listed in [`DELIBERATE`] (and in the
//! README's "Deliberate differences from runc"); the test fails on an
//! unlisted difference and on a listed one that no longer differs.
//! The report (every case, disagreements with both stderrs) is written to
//! `parity-report.txt` in cargo's test temp dir
//! (`target/<triple>/tmp/`), whose path the test prints.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::Runtime;
use serde_json::{json, Value};

/// The kind of a field decides its mutations (see [`mutations`]).
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    /// uid_t-like: 0..=u32::MAX in the spec.
    U32,
    /// A signed 32-bit value (oomScoreAdj, nice, hook timeout).
    I32,
    /// A signed 64-bit value (limits where -1 means unlimited).
    I64,
    /// An unsigned 64-bit value (rlimits, periods).
    U64,
    Str,
    /// A path the spec wants absolute.
    Path,
    /// A string from a fixed set (the first is valid).
    Enum,
    StrList,
    /// A list of names from a fixed set (capabilities, seccomp flags).
    EnumList,
    PathList,
    U32List,
    Obj,
    /// An array of objects.
    List,
    /// A string-keyed object (annotations, sysctl, unified).
    Map,
}

/// Context a field needs to mean anything (one more column of the table).
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    None,
    /// A user namespace (with the valid id mappings unless the row is one).
    UserNs,
    /// A time namespace (timeOffsets).
    TimeNs,
}

/// (JSON pointer, kind, a valid value, context). A missing ancestor of a
/// pointer is filled with the valid value of its own row.
#[rustfmt::skip]
const FIELDS: &[(&str, Kind, &str, Ctx)] = &[
    ("/ociVersion", Kind::Str, r#""1.0.2""#, Ctx::None),
    ("/root", Kind::Obj, r#"{"path":"rootfs"}"#, Ctx::None),
    ("/root/path", Kind::Path, r#""rootfs""#, Ctx::None),
    ("/root/readonly", Kind::Bool, "true", Ctx::None),
    ("/process", Kind::Obj, r#"{"args":["sleep","1000"],"cwd":"/"}"#, Ctx::None),
    ("/process/terminal", Kind::Bool, "true", Ctx::None),
    ("/process/user/uid", Kind::U32, "1000", Ctx::None),
    ("/process/user/gid", Kind::U32, "1000", Ctx::None),
    ("/process/user/umask", Kind::U32, "18", Ctx::None),
    ("/process/user/additionalGids", Kind::U32List, "[10]", Ctx::None),
    ("/process/args", Kind::StrList, r#"["sleep","1000"]"#, Ctx::None),
    ("/process/env", Kind::StrList, r#"["A=1"]"#, Ctx::None),
    ("/process/cwd", Kind::Path, r#""/tmp""#, Ctx::None),
    ("/process/capabilities", Kind::Obj, r#"{"bounding":["CAP_KILL"]}"#, Ctx::None),
    ("/process/capabilities/bounding", Kind::EnumList, r#"["CAP_KILL"]"#, Ctx::None),
    ("/process/capabilities/effective", Kind::EnumList, r#"["CAP_KILL"]"#, Ctx::None),
    ("/process/capabilities/permitted", Kind::EnumList, r#"["CAP_KILL"]"#, Ctx::None),
    ("/process/capabilities/inheritable", Kind::EnumList, r#"["CAP_KILL"]"#, Ctx::None),
    ("/process/capabilities/ambient", Kind::EnumList, r#"["CAP_KILL"]"#, Ctx::None),
    ("/process/rlimits", Kind::List, r#"[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}]"#, Ctx::None),
    ("/process/rlimits/0/type", Kind::Enum, r#""RLIMIT_NOFILE""#, Ctx::None),
    ("/process/rlimits/0/soft", Kind::U64, "512", Ctx::None),
    ("/process/rlimits/0/hard", Kind::U64, "2048", Ctx::None),
    ("/process/noNewPrivileges", Kind::Bool, "false", Ctx::None),
    ("/process/apparmorProfile", Kind::Str, r#""unconfined""#, Ctx::None),
    ("/process/oomScoreAdj", Kind::I32, "100", Ctx::None),
    ("/process/selinuxLabel", Kind::Str, r#""system_u:system_r:container_t:s0""#, Ctx::None),
    ("/process/consoleSize", Kind::Obj, r#"{"height":24,"width":80}"#, Ctx::None),
    ("/process/consoleSize/height", Kind::U32, "24", Ctx::None),
    ("/process/ioPriority", Kind::Obj, r#"{"class":"IOPRIO_CLASS_BE","priority":4}"#, Ctx::None),
    ("/process/ioPriority/class", Kind::Enum, r#""IOPRIO_CLASS_BE""#, Ctx::None),
    ("/process/ioPriority/priority", Kind::I32, "4", Ctx::None),
    ("/process/scheduler", Kind::Obj, r#"{"policy":"SCHED_OTHER"}"#, Ctx::None),
    ("/process/scheduler/policy", Kind::Enum, r#""SCHED_BATCH""#, Ctx::None),
    ("/process/scheduler/nice", Kind::I32, "5", Ctx::None),
    ("/hostname", Kind::Str, r#""parity""#, Ctx::None),
    ("/domainname", Kind::Str, r#""parity.example""#, Ctx::None),
    ("/mounts", Kind::List, r#"[{"destination":"/proc","type":"proc","source":"proc"}]"#, Ctx::None),
    ("/mounts/7", Kind::Obj, r#"{"destination":"/scratch","type":"tmpfs","source":"tmpfs"}"#, Ctx::None),
    ("/mounts/7/destination", Kind::Path, r#""/scratch""#, Ctx::None),
    ("/mounts/7/type", Kind::Str, r#""tmpfs""#, Ctx::None),
    ("/mounts/7/source", Kind::Str, r#""tmpfs""#, Ctx::None),
    ("/mounts/7/options", Kind::EnumList, r#"["nosuid","size=1m"]"#, Ctx::None),
    ("/hooks", Kind::Obj, r#"{"prestart":[{"path":"/bin/true"}]}"#, Ctx::None),
    ("/hooks/prestart", Kind::List, r#"[{"path":"/bin/true"}]"#, Ctx::None),
    ("/hooks/prestart/0/path", Kind::Path, r#""/bin/true""#, Ctx::None),
    ("/hooks/prestart/0/args", Kind::StrList, r#"["true","x"]"#, Ctx::None),
    ("/hooks/prestart/0/env", Kind::StrList, r#"["A=1"]"#, Ctx::None),
    ("/hooks/prestart/0/timeout", Kind::I32, "5", Ctx::None),
    ("/hooks/createRuntime", Kind::List, r#"[{"path":"/bin/true"}]"#, Ctx::None),
    ("/hooks/createContainer", Kind::List, r#"[{"path":"/bin/true"}]"#, Ctx::None),
    ("/hooks/startContainer", Kind::List, r#"[{"path":"/bin/true"}]"#, Ctx::None),
    ("/hooks/poststart", Kind::List, r#"[{"path":"/bin/true"}]"#, Ctx::None),
    ("/hooks/poststop", Kind::List, r#"[{"path":"/bin/true"}]"#, Ctx::None),
    ("/linux", Kind::Obj, r#"{"namespaces":[{"type":"mount"},{"type":"pid"}]}"#, Ctx::None),
    ("/linux/namespaces", Kind::List, r#"[{"type":"mount"},{"type":"pid"}]"#, Ctx::None),
    ("/linux/namespaces/5", Kind::Obj, r#"{"type":"cgroup"}"#, Ctx::None),
    ("/linux/namespaces/5/type", Kind::Enum, r#""cgroup""#, Ctx::None),
    ("/linux/namespaces/5/path", Kind::Path, r#""/proc/1/ns/cgroup""#, Ctx::None),
    ("/linux/uidMappings", Kind::List, r#"[{"containerID":0,"hostID":100000,"size":65536}]"#, Ctx::UserNs),
    ("/linux/uidMappings/0/containerID", Kind::U32, "0", Ctx::UserNs),
    ("/linux/uidMappings/0/hostID", Kind::U32, "200000", Ctx::UserNs),
    ("/linux/uidMappings/0/size", Kind::U32, "1000", Ctx::UserNs),
    ("/linux/gidMappings", Kind::List, r#"[{"containerID":0,"hostID":100000,"size":65536}]"#, Ctx::UserNs),
    ("/linux/gidMappings/0/size", Kind::U32, "1000", Ctx::UserNs),
    ("/linux/devices", Kind::List, r#"[{"path":"/dev/hullnull","type":"c","major":1,"minor":3}]"#, Ctx::None),
    ("/linux/devices/0/path", Kind::Path, r#""/dev/hullnull""#, Ctx::None),
    ("/linux/devices/0/type", Kind::Enum, r#""c""#, Ctx::None),
    ("/linux/devices/0/major", Kind::I64, "1", Ctx::None),
    ("/linux/devices/0/minor", Kind::I64, "3", Ctx::None),
    ("/linux/devices/0/fileMode", Kind::U32, "438", Ctx::None),
    ("/linux/devices/0/uid", Kind::U32, "0", Ctx::None),
    ("/linux/cgroupsPath", Kind::Path, r#""/hulltest-parity""#, Ctx::None),
    ("/linux/resources", Kind::Obj, r#"{"devices":[{"allow":false,"access":"rwm"}]}"#, Ctx::None),
    ("/linux/resources/memory", Kind::Obj, r#"{"limit":268435456}"#, Ctx::None),
    ("/linux/resources/memory/limit", Kind::I64, "268435456", Ctx::None),
    ("/linux/resources/memory/reservation", Kind::I64, "134217728", Ctx::None),
    ("/linux/resources/memory/swap", Kind::I64, "536870912", Ctx::None),
    ("/linux/resources/memory/kernel", Kind::I64, "268435456", Ctx::None),
    ("/linux/resources/memory/kernelTCP", Kind::I64, "268435456", Ctx::None),
    ("/linux/resources/memory/swappiness", Kind::U64, "60", Ctx::None),
    ("/linux/resources/memory/disableOOMKiller", Kind::Bool, "true", Ctx::None),
    ("/linux/resources/cpu", Kind::Obj, r#"{"shares":1024}"#, Ctx::None),
    ("/linux/resources/cpu/shares", Kind::U64, "512", Ctx::None),
    ("/linux/resources/cpu/quota", Kind::I64, "50000", Ctx::None),
    ("/linux/resources/cpu/period", Kind::U64, "100000", Ctx::None),
    ("/linux/resources/cpu/realtimeRuntime", Kind::I64, "0", Ctx::None),
    ("/linux/resources/cpu/realtimePeriod", Kind::U64, "1000000", Ctx::None),
    ("/linux/resources/cpu/cpus", Kind::Str, r#""0""#, Ctx::None),
    ("/linux/resources/cpu/mems", Kind::Str, r#""0""#, Ctx::None),
    ("/linux/resources/cpu/idle", Kind::I64, "0", Ctx::None),
    ("/linux/resources/pids", Kind::Obj, r#"{"limit":100}"#, Ctx::None),
    ("/linux/resources/pids/limit", Kind::I64, "100", Ctx::None),
    ("/linux/resources/blockIO", Kind::Obj, r#"{"weight":500}"#, Ctx::None),
    ("/linux/resources/blockIO/weight", Kind::U32, "500", Ctx::None),
    ("/linux/resources/blockIO/leafWeight", Kind::U32, "500", Ctx::None),
    ("/linux/resources/blockIO/weightDevice", Kind::List, r#"[{"major":8,"minor":0,"weight":500}]"#, Ctx::None),
    ("/linux/resources/blockIO/throttleReadBpsDevice", Kind::List, r#"[{"major":8,"minor":0,"rate":1048576}]"#, Ctx::None),
    ("/linux/resources/blockIO/throttleReadBpsDevice/0/rate", Kind::U64, "1048576", Ctx::None),
    ("/linux/resources/blockIO/throttleWriteIOPSDevice", Kind::List, r#"[{"major":8,"minor":0,"rate":1000}]"#, Ctx::None),
    ("/linux/resources/hugepageLimits", Kind::List, r#"[{"pageSize":"2MB","limit":1073741824}]"#, Ctx::None),
    ("/linux/resources/hugepageLimits/0/pageSize", Kind::Enum, r#""2MB""#, Ctx::None),
    ("/linux/resources/hugepageLimits/0/limit", Kind::U64, "1073741824", Ctx::None),
    ("/linux/resources/network", Kind::Obj, r#"{"classID":1048577}"#, Ctx::None),
    ("/linux/resources/network/classID", Kind::U32, "1048577", Ctx::None),
    ("/linux/resources/network/priorities", Kind::List, r#"[{"name":"eth0","priority":500}]"#, Ctx::None),
    ("/linux/resources/devices", Kind::List, r#"[{"allow":false,"access":"rwm"}]"#, Ctx::None),
    ("/linux/resources/devices/1", Kind::Obj, r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}"#, Ctx::None),
    ("/linux/resources/devices/1/type", Kind::Enum, r#""c""#, Ctx::None),
    ("/linux/resources/devices/1/major", Kind::I64, "1", Ctx::None),
    ("/linux/resources/devices/1/access", Kind::Enum, r#""rwm""#, Ctx::None),
    ("/linux/resources/unified", Kind::Map, r#"{"pids.max":"10"}"#, Ctx::None),
    ("/linux/resources/rdma", Kind::Map, r#"{"mlx5_1":{"hcaHandles":3,"hcaObjects":10000}}"#, Ctx::None),
    ("/linux/sysctl", Kind::Map, r#"{"net.ipv4.ip_forward":"1"}"#, Ctx::None),
    ("/linux/seccomp", Kind::Obj, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#, Ctx::None),
    ("/linux/seccomp/defaultAction", Kind::Enum, r#""SCMP_ACT_ALLOW""#, Ctx::None),
    ("/linux/seccomp/defaultErrnoRet", Kind::U32, "1", Ctx::None),
    ("/linux/seccomp/architectures", Kind::EnumList, r#"["SCMP_ARCH_X86_64"]"#, Ctx::None),
    ("/linux/seccomp/flags", Kind::EnumList, r#"["SECCOMP_FILTER_FLAG_LOG"]"#, Ctx::None),
    ("/linux/seccomp/listenerPath", Kind::Path, r#""/run/hull-parity-no-agent.sock""#, Ctx::None),
    ("/linux/seccomp/syscalls", Kind::List, r#"[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]"#, Ctx::None),
    ("/linux/seccomp/syscalls/0/names", Kind::StrList, r#"["getppid"]"#, Ctx::None),
    ("/linux/seccomp/syscalls/0/action", Kind::Enum, r#""SCMP_ACT_ERRNO""#, Ctx::None),
    ("/linux/seccomp/syscalls/0/args", Kind::List, r#"[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]"#, Ctx::None),
    ("/linux/rootfsPropagation", Kind::Enum, r#""rslave""#, Ctx::None),
    ("/linux/maskedPaths", Kind::PathList, r#"["/proc/kcore"]"#, Ctx::None),
    ("/linux/readonlyPaths", Kind::PathList, r#"["/proc/sys"]"#, Ctx::None),
    ("/linux/mountLabel", Kind::Str, r#""system_u:object_r:container_file_t:s0""#, Ctx::None),
    ("/linux/intelRdt", Kind::Obj, r#"{"closID":"hull-parity"}"#, Ctx::None),
    ("/linux/personality", Kind::Obj, r#"{"domain":"LINUX"}"#, Ctx::None),
    ("/linux/personality/domain", Kind::Enum, r#""LINUX32""#, Ctx::None),
    ("/linux/timeOffsets", Kind::Map, r#"{"monotonic":{"secs":1,"nanosecs":0}}"#, Ctx::TimeNs),
    ("/annotations", Kind::Map, r#"{"org.example.parity":"1"}"#, Ctx::None),
];

/// Invalid combinations no single field shows, by hand: (id, tweak).
type Tweak = fn(&mut Value);
const COMBINATIONS: &[(&str, Tweak)] = &[
    ("combo:hostname-without-uts", |c| remove_ns(c, "uts")),
    ("combo:domainname-without-uts", |c| {
        remove_ns(c, "uts");
        c["hostname"] = json!("");
        c["domainname"] = json!("parity");
    }),
    ("combo:userns-without-mappings", |c| {
        add_ns(c, json!({"type": "user"}))
    }),
    ("combo:net-sysctl-without-netns", |c| {
        remove_ns(c, "network");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    }),
    ("combo:ipc-sysctl-without-ipcns", |c| {
        remove_ns(c, "ipc");
        c["linux"]["sysctl"] = json!({"kernel.msgmax": "8192"});
    }),
    ("combo:no-mount-namespace", |c| remove_ns(c, "mount")),
    ("combo:no-pid-namespace", |c| remove_ns(c, "pid")),
    ("combo:rlimit-soft-above-hard", |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}])
    }),
    ("combo:rlimit-duplicate-type", |c| {
        let r = json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024});
        c["process"]["rlimits"] = json!([r, r]);
    }),
    ("combo:ambient-not-inheritable", |c| {
        c["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"])
    }),
    ("combo:namespace-path-of-other-type", |c| {
        add_ns_replacing(c, json!({"type": "ipc", "path": "/proc/1/ns/net"}))
    }),
    ("combo:namespace-path-missing-file", |c| {
        add_ns_replacing(c, json!({"type": "ipc", "path": "/proc/1/ns/hull-none"}))
    }),
    ("combo:memory-swap-below-limit", |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 268435456, "swap": 134217728})
    }),
    ("combo:cpu-quota-without-period", |c| {
        c["linux"]["resources"]["cpu"] = json!({"quota": 50000})
    }),
    ("combo:cpuset-outside-host", |c| {
        c["linux"]["resources"]["cpu"] = json!({"cpus": "0-1023"})
    }),
    (
        "combo:proc-not-procfs",
        |c| c["mounts"][0] = json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
    ),
    ("combo:bind-missing-source", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/b", "type": "bind",
            "source": "/hull-parity-no-such-dir", "options": ["rbind"]}),
        )
    }),
    ("combo:mount-without-type", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/scratch", "source": "tmpfs"}),
        )
    }),
    ("combo:mount-relative-destination", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "relative", "type": "tmpfs", "source": "tmpfs"}),
        )
    }),
    ("combo:readonly-root-with-tmp-mount", |c| {
        c["root"]["readonly"] = json!(true);
        push(
            c,
            "/mounts",
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}),
        );
    }),
    (
        "combo:device-over-dev-null",
        |c| {
            c["linux"]["devices"] =
                json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}])
        },
    ),
    ("combo:seccomp-notify-without-listener", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]})
    }),
    ("combo:seccomp-unknown-syscall", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["hull_no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]})
    }),
    ("combo:seccomp-bad-operator", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]})
    }),
    ("combo:host-only-sysctl", |c| {
        c["linux"]["sysctl"] = json!({"vm.swappiness": "10"})
    }),
    ("combo:hostname-sysctl", |c| {
        c["linux"]["sysctl"] = json!({"kernel.hostname": "x"})
    }),
    ("combo:unknown-sysctl", |c| {
        c["linux"]["sysctl"] = json!({"kernel.hull_no_such_sysctl": "1"})
    }),
    ("combo:user-not-in-passwd", |c| {
        c["process"]["user"] = json!({"uid": 4242, "gid": 4242})
    }),
    ("combo:cwd-is-a-file", |c| {
        c["process"]["cwd"] = json!("/bin/busybox")
    }),
    ("combo:args-not-found", |c| {
        c["process"]["args"] = json!(["hull-no-such-binary"])
    }),
    ("combo:userns-with-mappings", |c| with_userns(c)),
    ("combo:bind-unknown-option", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/b", "type": "bind", "source": "/tmp",
            "options": ["rbind", "hull-no-such-option"]}),
        )
    }),
    ("combo:tmpfs-unknown-option", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["hull-no-such-option"]}),
        )
    }),
    ("combo:bind-recursive-attributes", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/b", "type": "bind", "source": "/tmp",
            "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnosymfollow"]}),
        )
    }),
    ("combo:bind-ratime", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/b", "type": "bind", "source": "/tmp",
            "options": ["rbind", "ratime"]}),
        )
    }),
    ("combo:bind-idmap-without-mappings", |c| {
        push(
            c,
            "/mounts",
            json!({"destination": "/b", "type": "bind", "source": "/tmp",
            "options": ["rbind", "idmap"]}),
        )
    }),
    ("combo:time-offsets-without-time-namespace", |c| {
        c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1}})
    }),
];

/// Where hull deliberately differs from runc 1.1.5, as the README's
/// "Deliberate differences from runc" table says: (reason, on which hosts,
/// case ids).
type Deliberate = (&'static str, fn() -> bool, &'static [&'static str]);
const DELIBERATE: &[Deliberate] = &[
    (
        "no PATH in process.env: hull looks args[0] up in the default PATH, runc's Go LookPath finds nothing",
        always,
        &["/process/env:missing", "/process/env:valid", "/process/env:empty", "/process/env:duplicate"],
    ),
    (
        "process.ioPriority, process.scheduler, linux.personality (runtime-spec 1.2): hull applies them and refuses bad values, runc 1.1.5 ignores them",
        always,
        &[
            "/process/ioPriority:wrong-type",
            "/process/ioPriority/class:wrong-type",
            "/process/ioPriority/class:empty",
            "/process/ioPriority/class:unknown",
            "/process/ioPriority/priority:wrong-type",
            "/process/ioPriority/priority:negative",
            "/process/ioPriority/priority:huge",
            "/process/scheduler:wrong-type",
            "/process/scheduler:empty",
            "/process/scheduler/policy:wrong-type",
            "/process/scheduler/policy:empty",
            "/process/scheduler/policy:unknown",
            "/process/scheduler/nice:wrong-type",
            "/process/scheduler/nice:huge",
            "/linux/personality:empty",
            "/linux/personality/domain:empty",
            "/linux/personality/domain:unknown",
        ],
    ),
    (
        "domainname: hull sets it (so it needs a UTS namespace and a valid name), runc 1.1.5 ignores it",
        always,
        &["/domainname:huge", "combo:domainname-without-uts"],
    ),
    (
        "linux.timeOffsets and the time namespace: hull supports them, runc 1.1.5 does not know the namespace",
        has_time_ns,
        &["/linux/timeOffsets:valid", "/linux/timeOffsets:empty"],
    ),
    (
        "linux.seccomp.flags: hull passes them to seccomp(2), runc 1.1.5 refuses any",
        always,
        &["/linux/seccomp/flags:valid", "/linux/seccomp/flags:duplicate"],
    ),
    (
        "hugepageLimits on a hybrid host whose hugetlb is only on cgroup2: hull sets it there, runc fails",
        hugetlb_only_on_cgroup2,
        &[
            "/linux/resources/hugepageLimits:valid",
            "/linux/resources/hugepageLimits:duplicate",
            "/linux/resources/hugepageLimits/0/pageSize:valid",
            "/linux/resources/hugepageLimits/0/limit:valid",
            "/linux/resources/hugepageLimits/0/limit:zero",
        ],
    ),
    (
        "mount options hull does not know on a bind mount are refused (runc drops them); ratime is relatime (runc's mount_setattr gets EINVAL); idmap needs a mapping (runc 1.1.5 ignores idmap); timeOffsets need a time namespace (runc ignores them)",
        always,
        &[
            "combo:bind-unknown-option",
            "combo:bind-ratime",
            "combo:bind-idmap-without-mappings",
            "combo:time-offsets-without-time-namespace",
        ],
    ),
    (
        "no mounts at all: hull's create needs no /proc in the container, runc's does",
        always,
        &["/mounts:missing", "/mounts:empty"],
    ),
    (
        "a hook without path is refused at create for every kind; runc only fails when it runs one",
        always,
        &["/hooks/startContainer:element-empty", "/hooks/poststop:element-empty"],
    ),
    (
        "device nodes only under /dev, with major/minor in range; runc creates them anywhere and truncates numbers",
        always,
        &[
            "/linux/devices/0/path:empty",
            "/linux/devices/0/path:relative",
            "/linux/devices/0/path:dotdot",
            "/linux/devices/0/major:negative",
            "/linux/devices/0/major:huge",
            "/linux/devices/0/minor:negative",
            "/linux/devices/0/minor:huge",
        ],
    ),
    (
        "\"..\" in linux.cgroupsPath is refused; runc cleans it lexically",
        always,
        &["/linux/cgroupsPath:dotdot"],
    ),
    (
        "bad resource values fail before anything is made, naming the field; runc writes them or ignores them",
        always,
        &[
            "/linux/resources/memory/kernelTCP:negative",
            "/linux/resources/cpu/quota:negative",
            "/linux/resources/cpu/idle:negative",
            "/linux/resources/cpu/idle:huge",
            "/linux/resources/devices/1/type:empty",
            "/linux/resources/devices/1/access:unknown",
            "/linux/seccomp/defaultErrnoRet:huge",
            "/linux/seccomp/defaultErrnoRet:overflow",
        ],
    ),
];

/// Cases where runc's verdict depends on timing, so it may agree with hull
/// in one run and not in the next: counted as neither an undocumented nor
/// a stale difference. A negative hook timeout: runc starts a timer of
/// that duration, already expired, and Go's `select` picks at random
/// between it and the hook's exit when /bin/true has exited by then
/// (refused in most runs, accepted in some: seen in CI). hull refuses it,
/// as the runtime-spec asks ("MUST be greater than zero").
const RUNC_RACES: &[&str] = &["/hooks/prestart/0/timeout:negative"];

/// Case id -> reason, from [`DELIBERATE`], for this host.
fn deliberate() -> BTreeMap<&'static str, &'static str> {
    DELIBERATE
        .iter()
        .filter(|(_, here, _)| here())
        .flat_map(|(reason, _, ids)| ids.iter().map(move |id| (*id, *reason)))
        .collect()
}

fn always() -> bool {
    true
}

/// A hybrid host whose hugetlb controller is only on the cgroup2 mount.
fn hugetlb_only_on_cgroup2() -> bool {
    !Path::new("/sys/fs/cgroup/hugetlb").exists()
        && std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"))
}

/// The kernel has time namespaces (5.6 and later).
fn has_time_ns() -> bool {
    Path::new("/proc/self/ns/time").exists()
}

fn remove_ns(c: &mut Value, t: &str) {
    if let Some(list) = c["linux"]["namespaces"].as_array_mut() {
        list.retain(|n| n["type"] != t);
    }
}

fn add_ns(c: &mut Value, ns: Value) {
    push(c, "/linux/namespaces", ns);
}

/// Replaces the namespace of `ns`'s type by `ns`.
fn add_ns_replacing(c: &mut Value, ns: Value) {
    let t = ns["type"].as_str().unwrap_or_default().to_string();
    remove_ns(c, &t);
    add_ns(c, ns);
}

fn push(c: &mut Value, ptr: &str, v: Value) {
    let list = c.pointer_mut(ptr).and_then(Value::as_array_mut).unwrap();
    list.push(v);
}

fn with_userns(c: &mut Value) {
    add_ns(c, json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    if c["linux"].get("uidMappings").is_none() {
        c["linux"]["uidMappings"] = map.clone();
    }
    if c["linux"].get("gidMappings").is_none() {
        c["linux"]["gidMappings"] = map;
    }
}

/// The mutations of a field: (name, new value or None to remove it).
fn mutations(kind: Kind, valid: &Value) -> Vec<(&'static str, Value)> {
    let first = valid.as_array().and_then(|a| a.first()).cloned();
    let dup = first.clone().map(|f| json!([f.clone(), f]));
    let mut v: Vec<(&'static str, Value)> = match kind {
        Kind::Bool => vec![("wrong-type", json!("true"))],
        Kind::U32 => vec![
            ("wrong-type", json!("1")),
            ("negative", json!(-1)),
            ("huge", json!(u32::MAX)),
            ("overflow", json!(u64::from(u32::MAX) + 1)),
        ],
        Kind::I32 => vec![
            ("wrong-type", json!("1")),
            ("negative", json!(-1)),
            ("huge", json!(i64::from(i32::MAX) + 1)),
        ],
        Kind::I64 => vec![
            ("wrong-type", json!("1")),
            ("zero", json!(0)),
            ("negative", json!(-2)),
            ("huge", json!(i64::MAX)),
        ],
        Kind::U64 => vec![
            ("wrong-type", json!("1")),
            ("zero", json!(0)),
            ("negative", json!(-1)),
            ("huge", json!(u64::MAX)),
        ],
        Kind::Str => vec![
            ("wrong-type", json!(1)),
            ("empty", json!("")),
            ("huge", json!("x".repeat(5000))),
        ],
        Kind::Path => vec![
            ("wrong-type", json!(1)),
            ("empty", json!("")),
            ("relative", json!("relative/dir")),
            ("dotdot", json!("/../../hull-parity-escape")),
            ("huge", json!(format!("/{}", "a".repeat(300)))),
        ],
        Kind::Enum => vec![
            ("wrong-type", json!(1)),
            ("empty", json!("")),
            ("unknown", json!("HULL_BOGUS")),
        ],
        Kind::StrList => vec![
            ("wrong-type", json!("x")),
            ("empty", json!([])),
            ("element-wrong-type", json!([1])),
            ("empty-element", json!([""])),
        ],
        Kind::EnumList => vec![
            ("wrong-type", json!("x")),
            ("empty", json!([])),
            ("unknown", json!(["HULL_BOGUS"])),
        ],
        Kind::PathList => vec![
            ("wrong-type", json!("x")),
            ("empty", json!([])),
            ("relative", json!(["relative/dir"])),
            ("nonexistent", json!(["/hull-parity-none"])),
        ],
        Kind::U32List => vec![
            ("wrong-type", json!("x")),
            ("empty", json!([])),
            ("negative", json!([-1])),
            ("huge", json!([u32::MAX])),
        ],
        Kind::Obj => vec![("wrong-type", json!([])), ("empty", json!({}))],
        Kind::List => vec![
            ("wrong-type", json!({})),
            ("empty", json!([])),
            ("element-wrong-type", json!(["x"])),
            ("element-empty", json!([{}])),
        ],
        Kind::Map => vec![
            ("wrong-type", json!([])),
            ("empty", json!({})),
            ("value-wrong-type", json!({"hull.parity": 1})),
            ("unknown-key", json!({"hull.parity.none": "1"})),
        ],
    };
    if let Some(d) = dup {
        v.push(("duplicate", d));
    }
    v
}

/// A generated case: its id and the full config.
struct Case {
    id: String,
    config: Value,
}

/// The config every case starts from: the harness default, `sleep 1000`.
fn base_config() -> Value {
    let mut c = common::default_config();
    c["process"]["args"] = json!(["sleep", "1000"]);
    c
}

/// Sets `ptr` to `v` (None removes it), creating missing ancestors from
/// their rows' valid values; an array index one past the end appends.
fn set(c: &mut Value, ptr: &str, v: Option<Value>) {
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    ensure(c, parent);
    let node = if parent.is_empty() {
        &mut *c
    } else {
        c.pointer_mut(parent).unwrap()
    };
    match (node, v) {
        (Value::Array(a), v) => {
            let i: usize = key.parse().unwrap();
            match v {
                None if i < a.len() => {
                    a.remove(i);
                }
                None => {}
                Some(v) if i < a.len() => a[i] = v,
                Some(v) => {
                    assert_eq!(i, a.len(), "{ptr}: index past the end");
                    a.push(v);
                }
            }
        }
        (Value::Object(o), None) => {
            o.remove(key);
        }
        (Value::Object(o), Some(v)) => {
            o.insert(key.to_string(), v);
        }
        (other, _) => panic!("{ptr}: parent is not a container: {other}"),
    }
}

/// Makes `ptr` exist: its row's valid value (an empty object without a
/// row), after its own ancestors (whose valid values may already hold it).
fn ensure(c: &mut Value, ptr: &str) {
    if ptr.is_empty() || c.pointer(ptr).is_some() {
        return;
    }
    ensure(c, ptr.rsplit_once('/').unwrap().0);
    if c.pointer(ptr).is_some() {
        return;
    }
    let valid = FIELDS
        .iter()
        .find(|f| f.0 == ptr)
        .map(|f| serde_json::from_str(f.2).unwrap())
        .unwrap_or_else(|| json!({}));
    set(c, ptr, Some(valid));
}

/// Every case: the fields' mutations (and their valid value when the base
/// lacks them, or removing them when it has them), then the combinations.
fn generate() -> Vec<Case> {
    let base = base_config();
    let mut cases = Vec::new();
    for &(ptr, kind, valid, ctx) in FIELDS {
        let valid: Value = serde_json::from_str(valid).unwrap();
        let start = || {
            let mut c = base.clone();
            match ctx {
                Ctx::None => {}
                Ctx::UserNs => with_userns(&mut c),
                Ctx::TimeNs => add_ns(&mut c, json!({"type": "time"})),
            }
            c
        };
        let mut family: Vec<(&str, Option<Value>)> = Vec::new();
        if base.pointer(ptr).is_some() {
            family.push(("missing", None));
        }
        if base.pointer(ptr) != Some(&valid) {
            family.push(("valid", Some(valid.clone())));
        }
        family.extend(
            mutations(kind, &valid)
                .into_iter()
                .map(|(n, v)| (n, Some(v))),
        );
        for (name, v) in family {
            let mut c = start();
            set(&mut c, ptr, v);
            cases.push(Case {
                id: format!("{ptr}:{name}"),
                config: c,
            });
        }
    }
    for (id, tweak) in COMBINATIONS {
        let mut c = base.clone();
        tweak(&mut c);
        cases.push(Case {
            id: id.to_string(),
            config: c,
        });
    }
    cases
}

/// One runtime's answer for a case.
struct Answer {
    accepted: bool,
    stderr: String,
    /// What the runtime left behind after `delete --force`, if anything.
    left: Option<String>,
}

/// A small rootfs for one bundle: directories, and busybox hard-linked from
/// the shared copy in `master` (no 2 MB copy per case) with the applets the
/// cases use.
fn small_bundle(master: &Path, name: &str) -> common::TempDir {
    let tmp = common::TempDir::new(name);
    let rootfs = tmp.path().join("bundle/rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::hard_link(master.join("busybox"), rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nhull:x:1000:1000:hull:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nwheel:x:10:\nhull:x:1000:\n",
    )
    .unwrap();
    tmp
}

/// `create`s the case with `bin` in a fresh bundle and state root, then
/// `delete --force`s it and checks that nothing is left.
fn answer(bin: &Path, master: &Path, case: &Case) -> Answer {
    let rt = Runtime::with_bin(bin, "parity");
    let tmp = small_bundle(master, "parity");
    let dir = tmp.path().join("bundle");
    let id = common::unique_id("parity");
    let mut config = case.config.clone();
    // The cgroup is named after the container unless the case is about it.
    if !case.id.starts_with("/linux/cgroupsPath:") && config["linux"].is_object() {
        config["linux"]["cgroupsPath"] = json!(common::cgroups_path(&id));
    }
    let text = serde_json::to_vec_pretty(&config).unwrap();
    std::fs::write(dir.join("config.json"), text).unwrap();
    let out = rt.cmd(&["create", &id, "--bundle", &dir.display().to_string()]);
    let del = rt.cmd(&["delete", "--force", &id]);
    let mut left =
        (out.success() && !del.success()).then(|| format!("delete failed: {}", del.stderr));
    let check =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.assert_nothing_left(&id)));
    if let Err(e) = check {
        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
        left = Some(left.map_or(msg.clone(), |l| format!("{l}; {msg}")));
    }
    Answer {
        accepted: out.success(),
        stderr: out.stderr.trim().to_string(),
        left,
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "accepts"
    } else {
        "refuses"
    }
}

#[test]
fn generates_distinct_cases_for_every_deliberate_difference() {
    let cases = generate();
    eprintln!("{} cases", cases.len());
    assert!(cases.len() >= 200, "only {} cases generated", cases.len());
    let mut ids = std::collections::HashSet::new();
    for c in &cases {
        assert!(ids.insert(c.id.as_str()), "duplicate case id {}", c.id);
    }
    for (_, _, listed) in DELIBERATE {
        for id in listed.iter() {
            assert!(ids.contains(id), "DELIBERATE names no case: {id}");
        }
    }
    for id in RUNC_RACES {
        assert!(ids.contains(id), "RUNC_RACES names no case: {id}");
    }
}

#[test]
fn generated_configs_agree_with_runc() {
    if common::skip() {
        return;
    }
    if !Path::new(common::RUNC).is_file() {
        eprintln!("skipped: {} is not installed", common::RUNC);
        return;
    }
    let cases = generate();
    let tested = common::runtime_bin();
    let master = common::TempDir::new("parity-busybox");
    std::fs::copy(common::BUSYBOX, master.path().join("busybox")).unwrap();
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, (Answer, Answer)>> = Mutex::default();
    // A few workers: each case is two short-lived creates, mostly waiting.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let runc = answer(Path::new(common::RUNC), master.path(), case);
                let ours = answer(&tested, master.path(), case);
                results.lock().unwrap().insert(i, (runc, ours));
            });
        }
    });
    let results = results.into_inner().unwrap();

    // Against runc itself (HULL_TEST_RUNTIME) nothing may differ.
    let deliberate = if common::is_hull() {
        deliberate()
    } else {
        BTreeMap::new()
    };
    let mut report = String::new();
    let mut agree = 0;
    let mut undocumented = Vec::new();
    let mut leftovers = Vec::new();
    let mut documented = Vec::new();
    for (i, (runc, ours)) in &results {
        let case = &cases[*i];
        let same = runc.accepted == ours.accepted;
        if let Some(l) = &runc.left {
            let _ = writeln!(report, "   {}: runc left something behind: {l}", case.id);
        }
        if let Some(l) = &ours.left {
            leftovers.push(format!("{}: {l}", case.id));
        }
        if same {
            agree += 1;
        }
        let _ = writeln!(
            report,
            "{} {}: runc {}, tested {}",
            if same { "  " } else { "!!" },
            case.id,
            verdict(runc.accepted),
            verdict(ours.accepted)
        );
        if !same {
            let _ = writeln!(
                report,
                "     runc:   {}",
                runc.stderr.replace('\n', "\n             ")
            );
            let _ = writeln!(
                report,
                "     tested: {}",
                ours.stderr.replace('\n', "\n             ")
            );
            match deliberate.get(case.id.as_str()) {
                Some(reason) => {
                    let _ = writeln!(report, "     deliberate: {reason}");
                    documented.push(case.id.as_str());
                }
                None if RUNC_RACES.contains(&case.id.as_str()) => {
                    let _ = writeln!(report, "     runc's verdict depends on timing (RUNC_RACES)");
                }
                None => undocumented.push(format!(
                    "{}: runc {} but the tested runtime {}\n  runc: {}\n  tested: {}",
                    case.id,
                    verdict(runc.accepted),
                    verdict(ours.accepted),
                    runc.stderr,
                    ours.stderr
                )),
            }
        }
    }
    let summary = format!("parity: {agree}/{} agree with runc", results.len());
    report.insert_str(0, &format!("{summary}\n\n"));
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity-report.txt");
    std::fs::write(&path, &report).unwrap();
    eprintln!("{summary} (report: {})", path.display());

    let stale: Vec<&str> = deliberate
        .keys()
        .copied()
        .filter(|id| !documented.contains(id))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the tested runtime left things behind:\n{}",
        leftovers.join("\n")
    );
    assert!(
        undocumented.is_empty(),
        "{} undocumented difference(s) from runc:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
    assert!(
        stale.is_empty(),
        "documented differences that no longer differ (remove them from DELIBERATE and the README): {stale:?}"
    );
}
