//! Property tests of hull's parsers (issue 19).
//!
//! Generated inputs, valid and mutated, for every parser hull has:
//! config.json (parse, normalize, validate), seccomp profiles, mount option
//! lists, cgroup paths and resource values, signal names, command lines and
//! state.json. The properties: nothing panics or hangs (inputs are bounded),
//! every refusal is a typed error naming the field, what hull writes reads
//! back the same, and a sample of accepted configs survives a real
//! `create`/`delete` without leaving anything behind.
//!
//! CI runs a few thousand cases in all (a few seconds); for a longer local
//! run: `PROPTEST_CASES=10000 cargo test --test props` (the create/delete
//! property then runs a fiftieth of that).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use hull::cgroups::resources::{self, Host, V1Facts};
use hull::cgroups::Resources;
use hull::cli::{self, App, Cmd, Flag, Outcome};
use hull::error::Error;
use hull::state::{ContainerState, LaterHooks, OciState, StateStore, Status};

// ---------------------------------------------------------------------------
// Running properties
// ---------------------------------------------------------------------------

/// The runner's configuration: `n` cases unless PROPTEST_CASES says
/// otherwise, no regression files (a case found becomes a plain #[test]).
fn cases(n: u32) -> Config {
    let mut c = Config {
        cases: n,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    if let Some(env) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.cases = env;
    }
    c
}

/// `n` cases whatever PROPTEST_CASES says (the properties that run
/// containers or the binary scale it themselves).
fn exact_cases(n: u32) -> Config {
    Config {
        cases: n,
        ..cases(n)
    }
}

/// Runs `test` over `strategy`, panicking with the minimal failing input.
fn check<S: Strategy>(
    config: Config,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// JSON paths (the field names in hull's errors)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Idx(usize),
}

/// `process.user.uid`, `mounts[3].options[1]`: as serde_path_to_error and
/// hull's own checks write field paths.
fn field_of(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Every node's path below the root, parents before children.
fn all_paths(v: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    at.push(Seg::Key(k.clone()));
                    out.push(at.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    at.push(Seg::Idx(i));
                    out.push(at.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Idx(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// Whether field `a` is `b`, or one contains the other (`process.user` and
/// `process.user.uid`; `mounts[2]` and `mounts[2].options`).
fn related(a: &str, b: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        inner == outer
            || (inner.starts_with(outer)
                && matches!(inner.as_bytes().get(outer.len()), Some(b'.' | b'[')))
    };
    within(a, b) || within(b, a)
}

/// Whether the field named by `field` is in `doc` (a key with dots, like a
/// sysctl's, may be one segment).
fn field_in(doc: &Value, field: &str) -> bool {
    fn walk(v: &Value, rest: &str) -> bool {
        if rest.is_empty() {
            return true;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let Some((n, after)) = r.split_once(']') else {
                return false;
            };
            let after = after.strip_prefix('.').unwrap_or(after);
            return match (n.parse::<usize>(), v.as_array()) {
                (Ok(i), Some(a)) => a.get(i).is_some_and(|c| walk(c, after)),
                _ => false,
            };
        }
        let Some(m) = v.as_object() else {
            return false;
        };
        // The longest key that is a prefix of `rest` at a segment end.
        m.iter().any(|(k, child)| {
            rest.strip_prefix(k.as_str()).is_some_and(|after| {
                if after.is_empty() || after.starts_with('[') {
                    walk(child, after)
                } else {
                    after.strip_prefix('.').is_some_and(|a| walk(child, a))
                }
            })
        })
    }
    walk(doc, field)
}

/// The field an error message starts with (`field: message`).
fn leading_field(msg: &str) -> &str {
    msg.split_once(": ").map_or(msg, |(f, _)| f)
}

const TOP_LEVEL: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
];

/// A validation error: typed (Error::Config), naming a field of the config
/// that is in the document (or whose parent is, for a missing one).
fn names_config_field(e: &Error, doc: &Value) -> Result<(), TestCaseError> {
    let Error::Config { field, msg } = e else {
        return Err(TestCaseError::fail(format!(
            "untyped validation error: {e:?}"
        )));
    };
    prop_assert!(!msg.is_empty(), "empty message for {field}");
    let top = field.split(['.', '[']).next().unwrap_or_default();
    prop_assert!(
        TOP_LEVEL.contains(&top),
        "error does not name a config field: {e}"
    );
    let parent = field
        .rfind(['.', '['])
        .map_or("", |i| &field[..i])
        .to_string();
    prop_assert!(
        field_in(doc, field) || field_in(doc, &parent),
        "error names {field:?}, which is not in the config: {e}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators: JSON junk and mutations
// ---------------------------------------------------------------------------

/// Small JSON values of every kind, with the numbers and strings that sit
/// on the edges of what hull's fields take.
fn junk() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![
            -2i64,
            -1,
            0,
            1,
            2,
            10,
            999,
            1000,
            65535,
            65536,
            2147483647,
            2147483648,
            4294967295,
            4294967296,
            i64::MIN,
            i64::MAX
        ])
        .prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1.5)),
        Just(json!(-0.0)),
        Just(json!(1e300)),
        "[ -~]{0,12}".prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
        select(vec![
            "",
            "/",
            "..",
            "/..",
            "a/../b",
            "relative",
            "/proc",
            "rw",
            "ro",
            "pid",
            "user",
            "uts",
            "mount",
            "network",
            "cgroup",
            "time",
            "bind",
            "rbind",
            "tmpfs",
            "proc",
            "a",
            "b",
            "c",
            "rwm",
            "x",
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_ERRNO",
            "SCMP_CMP_EQ",
            "SCMP_ARCH_X86_64",
            "write",
            "CAP_KILL",
            "CAP_NOPE",
            "RLIMIT_NOFILE",
            "RLIMIT_BOGUS",
            "2MB",
            "1GB",
            "0-1",
            "0",
            "1-0",
            "x=y",
            "KEY",
            "\u{0}",
            "é",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(
                select(vec![
                    "type", "path", "uid", "gid", "limit", "names", "action", "index", "value",
                    "op", "options", "bogus"
                ]),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// One change to a JSON document.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node at a path with another value.
    Replace(Index, Value),
    /// Remove the node at a path from its object or array.
    Remove(Index),
    /// Add a key to the object at a path (or replace a non-object).
    AddKey(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        select(vec![
            "uid",
            "gid",
            "args",
            "cwd",
            "path",
            "type",
            "options",
            "limit",
            "seccomp",
            "resources",
            "namespaces",
            "uidMappings",
            "sysctl",
            "hostname",
            "consoleSize",
            "rlimits",
            "capabilities",
            "devices",
            "timeout",
            "unified",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z]{1,8}",
    ];
    prop_oneof![
        4 => (any::<Index>(), junk()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        2 => (any::<Index>(), key, junk()).prop_map(|(i, k, v)| Mutation::AddKey(i, k, v)),
    ]
}

/// Apply `m` to `doc`; returns the path of the changed node.
fn apply(doc: &mut Value, m: &Mutation) -> Vec<Seg> {
    let paths = all_paths(doc);
    if paths.is_empty() {
        return Vec::new();
    }
    let pick = |i: &Index| paths[i.index(paths.len())].clone();
    match m {
        Mutation::Replace(i, v) => {
            let p = pick(i);
            if let Some(n) = node_mut(doc, &p) {
                *n = v.clone();
            }
            p
        }
        Mutation::Remove(i) => {
            let p = pick(i);
            let (last, parent) = p.split_last().expect("a path below the root");
            match (node_mut(doc, parent), last) {
                (Some(Value::Object(o)), Seg::Key(k)) => {
                    o.remove(k);
                }
                (Some(Value::Array(a)), Seg::Idx(i)) => {
                    a.remove(*i);
                }
                _ => {}
            }
            // What changed is the parent: an array's later elements moved.
            match last {
                Seg::Key(_) => p,
                Seg::Idx(_) => parent.to_vec(),
            }
        }
        Mutation::AddKey(i, k, v) => {
            let mut p = pick(i);
            match node_mut(doc, &p) {
                Some(Value::Object(o)) => {
                    o.insert(k.clone(), v.clone());
                    p.push(Seg::Key(k.clone()));
                }
                Some(n) => *n = v.clone(),
                None => {}
            }
            p
        }
    }
}

// ---------------------------------------------------------------------------
// Generators: valid configs
// ---------------------------------------------------------------------------

const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Mount options a tmpfs takes (no remount, bind or propagation words that
/// need a particular mount below).
const TMPFS_FLAGS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "nosymfollow",
    "silent",
    "loud",
    "defaults",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "tmpcopyup",
    "",
    "size=1m",
    "size=64k",
    "mode=755",
    "mode=1777",
    "nr_inodes=1k",
];

/// Syscalls a filter may refuse without getting in the way of hull's init
/// between installing it and exec.
const HARMLESS_SYSCALLS: &[&str] = &[
    "reboot",
    "swapon",
    "swapoff",
    "kexec_load",
    "acct",
    "settimeofday",
    "syslog",
    "delete_module",
    "init_module",
    "quotactl",
    "no_such_syscall_hull",
];

/// Namespace sysctls and a value the kernel takes.
const SYSCTLS: &[(&str, &str, &str)] = &[
    ("ipc", "kernel.shmmax", "67108864"),
    ("ipc", "kernel.msgmax", "8192"),
    ("ipc", "fs.mqueue.msg_max", "10"),
    ("network", "net.ipv4.ip_forward", "1"),
    ("network", "net.ipv4.ping_group_range", "0 0"),
];

/// A valid `linux.seccomp`. `safe`: one that lets hull's init reach exec
/// (default ALLOW, rules only on harmless syscalls).
fn seccomp_profile(safe: bool) -> impl Strategy<Value = Value> {
    let default = if safe {
        select(vec!["SCMP_ACT_ALLOW"]).boxed()
    } else {
        // Every action but NOTIFY (it needs a listener).
        let actions = hull::seccomp::profile::ACTIONS.iter().copied();
        select(
            actions
                .filter(|a| *a != "SCMP_ACT_NOTIFY")
                .collect::<Vec<_>>(),
        )
        .boxed()
    };
    let names = if safe {
        subsequence(HARMLESS_SYSCALLS.to_vec(), 1..4)
            .prop_map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
            .boxed()
    } else {
        vec(
            prop_oneof![
                select(vec![
                    "read", "write", "openat", "mkdir", "getpid", "clone", "socket", "ptrace"
                ])
                .prop_map(String::from),
                "[a-z_0-9]{1,16}",
            ],
            1..4,
        )
        .boxed()
    };
    let arg = (
        0usize..6,
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        select(hull::seccomp::profile::OPERATORS.to_vec()),
    )
        .prop_map(|(index, value, two, op)| {
            let mut a = json!({"index": index, "value": value, "op": op});
            if let Some(t) = two {
                a["valueTwo"] = json!(t);
            }
            a
        });
    let rule = (
        names,
        select(vec![
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_LOG",
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_TRACE",
        ]),
        proptest::option::of(0u32..=hull::seccomp::profile::MAX_ERRNO_RET),
        vec(arg, 0..3),
    )
        .prop_map(|(names, action, errno, args)| {
            let mut r = json!({"names": names, "action": action});
            if let Some(e) = errno {
                r["errnoRet"] = json!(e);
            }
            if !args.is_empty() {
                r["args"] = json!(args);
            }
            r
        });
    (
        default,
        proptest::option::of(0u32..=hull::seccomp::profile::MAX_ERRNO_RET),
        subsequence(
            vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            0..3,
        ),
        subsequence(
            vec!["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            0..2,
        ),
        vec(rule, 0..5),
    )
        .prop_map(|(default, errno, arches, flags, rules)| {
            let mut s = json!({"defaultAction": default});
            if let Some(e) = errno {
                s["defaultErrnoRet"] = json!(e);
            }
            if !arches.is_empty() {
                s["architectures"] = json!(arches);
            }
            if !flags.is_empty() {
                s["flags"] = json!(flags);
            }
            if !rules.is_empty() {
                s["syscalls"] = json!(rules);
            }
            s
        })
}

/// Valid `linux.resources` (values any cgroup host takes; `safe`: only
/// what this test host's cgroup v1 hierarchy can apply).
fn resources_value(safe: bool) -> impl Strategy<Value = Value> {
    let mib = 1i64 << 20;
    let memory = (
        proptest::option::of(prop_oneof![Just(-1i64), (32 * mib)..(1024 * mib)]),
        proptest::option::of(prop_oneof![Just(-1i64), (16 * mib)..(512 * mib)]),
        proptest::option::of(0u64..=100),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(limit, reservation, swappiness, oom)| {
            let mut m = json!({});
            if let Some(v) = limit {
                m["limit"] = json!(v);
            }
            if let Some(v) = reservation {
                m["reservation"] = json!(v);
            }
            if let Some(v) = swappiness {
                m["swappiness"] = json!(v);
            }
            if let Some(v) = oom {
                m["disableOOMKiller"] = json!(v);
            }
            m
        });
    let cpu = (
        proptest::option::of(prop_oneof![Just(0u64), 2u64..=262144]),
        proptest::option::of(prop_oneof![Just(-1i64), 1000i64..=1_000_000]),
        proptest::option::of(1000u64..=1_000_000),
        // (Only CPU 0 is sure to be on a host that creates the container.)
        proptest::option::of(select(if safe {
            vec!["0"]
        } else {
            vec!["0", "0-1", "1", "0,1"]
        })),
        proptest::option::of(select(vec!["0"])),
    )
        .prop_map(|(shares, quota, period, cpus, mems)| {
            let mut c = json!({});
            if let Some(v) = shares {
                c["shares"] = json!(v);
            }
            if let Some(v) = quota {
                c["quota"] = json!(v);
            }
            if let Some(v) = period {
                c["period"] = json!(v);
            }
            if let Some(v) = cpus {
                c["cpus"] = json!(v);
            }
            if let Some(v) = mems {
                c["mems"] = json!(v);
            }
            c
        });
    let pids = prop_oneof![Just(-1i64), 1i64..100_000].prop_map(|l| json!({"limit": l}));
    let device = (
        any::<bool>(),
        select(vec!["a", "b", "c"]),
        proptest::option::of(prop_oneof![Just(-1i64), 0i64..300]),
        proptest::option::of(prop_oneof![Just(-1i64), 0i64..300]),
        subsequence(vec!['r', 'w', 'm'], 1..=3),
    )
        .prop_map(|(allow, typ, major, minor, access)| {
            let mut d = json!({"allow": allow, "type": typ,
                "access": access.into_iter().collect::<String>()});
            if let Some(v) = major {
                d["major"] = json!(v);
            }
            if let Some(v) = minor {
                d["minor"] = json!(v);
            }
            d
        });
    let block_io = (
        proptest::option::of(10u16..=1000),
        vec((0i64..300, 0i64..300, any::<u64>()), 0..3),
    )
        .prop_map(|(weight, throttle)| {
            let mut b = json!({});
            if let Some(w) = weight {
                b["weight"] = json!(w);
            }
            if !throttle.is_empty() {
                b["throttleReadBpsDevice"] = json!(throttle
                    .iter()
                    .map(|(ma, mi, r)| json!({"major": ma, "minor": mi, "rate": r}))
                    .collect::<Vec<_>>());
            }
            b
        });
    (
        proptest::option::of(memory),
        proptest::option::of(cpu),
        proptest::option::of(pids),
        vec(device, 0..4),
        proptest::option::of(block_io),
    )
        .prop_map(move |(memory, cpu, pids, devices, block_io)| {
            // The default: no device but those the runtime allows.
            let mut r = json!({"devices": [{"allow": false, "access": "rwm"}]});
            if let Some(m) = memory {
                r["memory"] = m;
            }
            if let Some(c) = cpu {
                r["cpu"] = c;
            }
            if let Some(p) = pids {
                r["pids"] = p;
            }
            if let Some(list) = r["devices"].as_array_mut() {
                list.extend(devices);
            }
            if let (Some(b), false) = (block_io, safe) {
                // (No BFQ/CFQ weights or throttles on this test host.)
                r["blockIO"] = b;
            }
            r
        })
}

/// A config hull must accept: the tests' default config (busybox rootfs)
/// with generated process, namespaces, mounts, sysctls, resources and
/// seccomp profile. `safe`: one that `create` can also carry out here.
fn valid_config(safe: bool) -> impl Strategy<Value = Value> {
    let process = (
        select(vec!["sh", "true", "/bin/sleep", "/bin/busybox"]),
        vec("[ -~]{0,10}", 0..4),
        vec(("[A-Z_]{1,8}", "[ -~]{0,12}"), 0..4),
        select(vec!["/", "/tmp", "/root", "/home/hull", "/var"]),
        (0u32..=hull::config::MAX_ID, 0u32..=hull::config::MAX_ID),
        vec(0u32..=hull::config::MAX_ID, 0..3),
        subsequence(CAPS.to_vec(), 0..CAPS.len()),
        any::<bool>(),
        (64u64..=1024, 0u64..=1024),
    );
    // (A soft RLIMIT_NOFILE below the fds hull's init holds is refused by
    // create, naming process.rlimits[0]: it depends on the init, not the
    // config, so `safe` configs keep room for them.)
    let min_soft = if safe { 64 } else { 0 };
    let namespaces = subsequence(vec!["pid", "network", "ipc", "uts", "cgroup"], 0..=5);
    let mount = (
        "[a-z]{1,8}",
        subsequence(TMPFS_FLAGS.to_vec(), 0..8),
        any::<bool>(),
    );
    (
        process,
        namespaces,
        proptest::option::of("[a-z][a-z0-9-]{0,20}"),
        vec(mount, 0..3),
        any::<bool>(),
        subsequence(SYSCTLS.to_vec(), 0..SYSCTLS.len()),
        proptest::option::of(resources_value(safe)),
        proptest::option::of(seccomp_profile(safe)),
        btree_map("[a-z.]{1,10}", "[ -~]{0,10}", 0..3),
    )
        .prop_map(
            move |(
                process,
                ns,
                hostname,
                mounts,
                readonly,
                sysctls,
                resources,
                seccomp,
                annotations,
            )| {
                let (prog, args, env, cwd, (uid, gid), groups, caps, nnp, (hard, soft)) = process;
                let mut c = common::default_config();
                let mut argv = vec![prog.to_string()];
                argv.extend(args);
                c["process"]["args"] = json!(argv);
                let env: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                c["process"]["env"] = json!(env);
                c["process"]["cwd"] = json!(cwd);
                c["process"]["user"] = json!({"uid": uid, "gid": gid, "additionalGids": groups});
                c["process"]["capabilities"] =
                    json!({"bounding": caps, "effective": caps, "permitted": caps});
                c["process"]["noNewPrivileges"] = json!(nnp);
                c["process"]["rlimits"] = json!([
                    {"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft.clamp(min_soft, hard)}
                ]);
                // Always a mount namespace (rootfs), a UTS one for a hostname.
                let mut namespaces: Vec<Value> = vec![json!({"type": "mount"})];
                namespaces.extend(ns.iter().map(|t| json!({"type": t})));
                if hostname.is_some() && !ns.contains(&"uts") {
                    namespaces.push(json!({"type": "uts"}));
                }
                c["linux"]["namespaces"] = json!(namespaces);
                match hostname {
                    Some(h) => c["hostname"] = json!(h),
                    None => {
                        if let Some(o) = c.as_object_mut() {
                            o.remove("hostname");
                        }
                    }
                }
                if let Some(list) = c["mounts"].as_array_mut() {
                    for (i, (name, opts, source)) in mounts.into_iter().enumerate() {
                        let mut m = json!({
                            "destination": format!("/mnt/{name}{i}"),
                            "type": "tmpfs",
                            "options": opts,
                        });
                        if source {
                            m["source"] = json!("tmpfs");
                        }
                        list.push(m);
                    }
                }
                c["root"]["readonly"] = json!(readonly);
                let sysctl: BTreeMap<&str, &str> = sysctls
                    .into_iter()
                    .filter(|(n, _, _)| ns.contains(n))
                    .map(|(_, k, v)| (k, v))
                    .collect();
                if !sysctl.is_empty() {
                    c["linux"]["sysctl"] = json!(sysctl);
                }
                if let Some(r) = resources {
                    c["linux"]["resources"] = r;
                }
                if let Some(s) = seccomp {
                    c["linux"]["seccomp"] = s;
                }
                if !annotations.is_empty() {
                    c["annotations"] = json!(annotations);
                }
                c
            },
        )
}

/// A host for resource validation: v1 or v2, 2 CPUs, one memory node.
fn test_host(v2: bool) -> Host {
    Host {
        v2,
        cpus: vec![0, 1],
        mems: vec![0],
        v2_controllers: ["cpu", "memory", "pids", "io", "cpuset"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        hugepage_sizes: vec!["2MB".into(), "1GB".into()],
    }
}

// ---------------------------------------------------------------------------
// config.json
// ---------------------------------------------------------------------------

/// What every parsed config must satisfy: it reads back the same after
/// serializing, and validation either passes or refuses with a typed error
/// naming a field of the document.
fn accepted_config_holds(spec: &oci_spec::runtime::Spec, doc: &Value) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let again = hull::config::parse(&text)
        .map_err(|e| TestCaseError::fail(format!("serialized spec does not parse: {e}\n{text}")))?;
    prop_assert_eq!(&again, spec, "parse -> serialize -> parse changed the spec");

    let mut spec = spec.clone();
    hull::config::normalize(&mut spec);
    let res = hull::config::validate(&spec);
    if let Err(e) = &res {
        names_config_field(e, doc)?;
    }
    // The limits too (create checks them against the host).
    match Resources::from_spec(&spec) {
        Err(e) => names_config_field(&e, doc)?,
        Ok(r) => {
            for v2 in [false, true] {
                if let Err(e) = resources::validate(&r, &test_host(v2)) {
                    names_config_field(&e, doc)?;
                }
            }
        }
    }
    // And a validated seccomp profile builds into a filter.
    if res.is_ok() {
        if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            if let Err(e) = hull::seccomp::SeccompPlan::build(s, false) {
                // libseccomp (and so runc) refuses two rules with different
                // actions for one syscall where it is multiplexed (socket on
                // x86): refused at create, naming the rule.
                let conflict = conflicting_rules(s);
                let named = matches!(&e, Error::Config { field, msg }
                    if field.starts_with("linux.seccomp.syscalls[")
                        && msg.contains("conflicts with an earlier rule"));
                prop_assert!(
                    conflict && named,
                    "validated seccomp profile does not build: {e}"
                );
            }
        }
    }
    Ok(())
}

/// The first field of `given` that `typed` (the parsed spec, serialized)
/// does not have with the same value: what the parser dropped or changed.
fn lost_field(given: &Value, typed: &Value) -> Option<String> {
    fn walk(g: &Value, t: &Value, at: &mut Vec<Seg>) -> Option<String> {
        match (g, t) {
            (Value::Object(g), Value::Object(t)) => g.iter().find_map(|(k, v)| {
                at.push(Seg::Key(k.clone()));
                let r = match t.get(k) {
                    Some(tv) => walk(v, tv, at),
                    // Empty and false are what an absent field means.
                    None if v.is_null() || v == &json!(false) => None,
                    None => Some(field_of(at)),
                };
                at.pop();
                r
            }),
            // Capability sets are sets (their order is not kept).
            (Value::Array(g), Value::Array(t)) if matches!(at.get(1), Some(Seg::Key(k)) if k == "capabilities") =>
            {
                let mut g: Vec<String> = g.iter().map(Value::to_string).collect();
                let mut t: Vec<String> = t.iter().map(Value::to_string).collect();
                g.sort();
                t.sort();
                (g != t).then(|| field_of(at))
            }
            (Value::Array(g), Value::Array(t)) if g.len() == t.len() => {
                g.iter().zip(t).enumerate().find_map(|(i, (gv, tv))| {
                    at.push(Seg::Idx(i));
                    let r = walk(gv, tv, at);
                    at.pop();
                    r
                })
            }
            (g, t) if g == t => None,
            _ => Some(field_of(at)),
        }
    }
    walk(given, typed, &mut Vec::new())
}

/// Whether two rules give one syscall different actions.
fn conflicting_rules(s: &oci_spec::runtime::LinuxSeccomp) -> bool {
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    s.syscalls().iter().flatten().any(|r| {
        let act = format!("{:?}{:?}", r.action(), r.errno_ret());
        r.names().iter().any(|n| {
            let prev = seen.insert(n.as_str(), act.clone());
            prev.is_some_and(|p| p != act)
        })
    })
}

#[test]
fn generated_configs_are_accepted_and_round_trip() {
    check(cases(300), valid_config(false), |doc| {
        let text = doc.to_string();
        let spec = hull::config::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("valid config refused: {e}")))?;
        let mut normalized = spec.clone();
        hull::config::normalize(&mut normalized);
        hull::config::validate(&normalized)
            .map_err(|e| TestCaseError::fail(format!("valid config refused: {e}")))?;
        let r = Resources::from_spec(&normalized)
            .map_err(|e| TestCaseError::fail(format!("valid resources refused: {e}")))?;
        resources::validate(&r, &test_host(false))
            .map_err(|e| TestCaseError::fail(format!("valid resources refused: {e}")))?;
        let typed = serde_json::to_value(&spec).unwrap();
        if let Some(lost) = lost_field(&doc, &typed) {
            return Err(TestCaseError::fail(format!("the parser drops {lost}")));
        }
        accepted_config_holds(&spec, &doc)
    });
}

#[test]
fn mutated_configs_are_refused_naming_the_field() {
    let strategy = (valid_config(false), vec(mutation(), 1..3));
    check(cases(1000), strategy, |(mut doc, mutations)| {
        let paths: Vec<String> = mutations
            .iter()
            .map(|m| field_of(&apply(&mut doc, m)))
            .collect();
        let text = doc.to_string();
        match hull::config::parse(&text) {
            Err(msg) => {
                let field = leading_field(&msg);
                prop_assert!(
                    paths.iter().any(|p| related(field, p)),
                    "error {msg:?} does not name the changed field (one of {paths:?})"
                );
                Ok(())
            }
            Ok(spec) => accepted_config_holds(&spec, &doc),
        }
    });
}

#[test]
fn corrupted_config_text_is_refused_without_panic() {
    let strategy = (
        valid_config(false),
        any::<Index>(),
        vec((any::<Index>(), any::<u8>()), 0..3),
    );
    check(cases(300), strategy, |(doc, cut, flips)| {
        let mut bytes = doc.to_string().into_bytes();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        let text = String::from_utf8_lossy(&bytes);
        match hull::config::parse(&text) {
            Err(msg) => prop_assert!(!msg.is_empty()),
            Ok(spec) => {
                let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                accepted_config_holds(&spec, &doc)?;
            }
        }
        Ok(())
    });
}

#[test]
fn hull_spec_output_round_trips() {
    let dir = common::TempDir::new("props-spec");
    for rootless in [false, true] {
        // What the binary writes is the library's default spec.
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hull"));
        cmd.args(["spec", "--bundle"]).arg(dir.path());
        if rootless {
            cmd.arg("--rootless");
        }
        assert!(cmd.status().unwrap().success());
        let path = dir.path().join("config.json");
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        let doc = hull::config::default_spec(rootless);
        assert_eq!(written, doc);
        let spec = hull::config::parse(&doc.to_string()).unwrap();
        hull::config::validate(&spec).unwrap();
        accepted_config_holds(&spec, &doc).unwrap();
        // Nothing of what `hull spec` writes is lost on the way.
        let typed = serde_json::to_value(&spec).unwrap();
        if let Some(lost) = lost_field(&doc, &typed) {
            panic!("`hull spec` output loses {lost} when read");
        }
    }
}

// ---------------------------------------------------------------------------
// Seccomp profiles
// ---------------------------------------------------------------------------

/// A profile with junk in one of its fields.
fn mutated_profile() -> impl Strategy<Value = (Value, Vec<Seg>)> {
    (seccomp_profile(false), mutation()).prop_map(|(p, m)| {
        let mut doc = json!({"linux": {"seccomp": p}});
        let path = apply(&mut doc, &m);
        (doc, path)
    })
}

#[test]
fn seccomp_profiles_are_checked_naming_the_field() {
    check(cases(600), mutated_profile(), |(doc, path)| {
        let path = field_of(&path);
        match hull::seccomp::profile::check_json(&doc) {
            Err(msg) => {
                prop_assert!(
                    msg.starts_with("linux.seccomp"),
                    "seccomp error not naming its field: {msg}"
                );
                prop_assert!(
                    related(leading_field(&msg), &path),
                    "error {msg:?} is not about the changed field {path}"
                );
            }
            Ok(()) => {
                let Some(s) = doc.pointer("/linux/seccomp").filter(|s| !s.is_null()) else {
                    return Ok(());
                };
                let Ok(s) = serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(s.clone())
                else {
                    // The config parser names it (mutated_configs_...).
                    return Ok(());
                };
                if let Err(e) = hull::seccomp::SeccompPlan::build(&s, false) {
                    let Error::Config { field, .. } = &e else {
                        return Err(TestCaseError::fail(format!("untyped: {e:?}")));
                    };
                    prop_assert!(field.starts_with("linux.seccomp"), "{e}");
                }
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Mount options
// ---------------------------------------------------------------------------

fn option_word() -> impl Strategy<Value = String> {
    prop_oneof![
        select(hull::rootfs::options::KNOWN.to_vec()).prop_map(String::from),
        select(TMPFS_FLAGS.to_vec()).prop_map(String::from),
        "[a-z_]{1,8}(=[ -~]{0,8})?",
        ".{0,6}",
    ]
}

#[test]
fn mount_options_parse_by_word() {
    use hull::rootfs::options::{parse, KNOWN};
    let strategy = (vec(option_word(), 0..12), vec(option_word(), 0..12));
    check(cases(500), strategy, |(a, b)| {
        let pa = parse(&a);
        let pb = parse(&b);
        let mut ab = a.clone();
        ab.extend(b.iter().cloned());
        let pab = parse(&ab);
        // Data and propagation are kept in order, word by word.
        let is_data =
            |w: &String| !KNOWN.contains(&w.as_str()) && w != "tmpcopyup" && !w.is_empty();
        let data: Vec<&String> = ab.iter().filter(|w| is_data(w)).collect();
        prop_assert_eq!(pab.data.iter().collect::<Vec<_>>(), data);
        let mut prop = pa.propagation.clone();
        prop.extend(&pb.propagation);
        prop_assert_eq!(&pab.propagation, &prop);
        prop_assert_eq!(pab.bind, pa.bind || pb.bind);
        prop_assert_eq!(pab.recursive, pa.recursive || pb.recursive);
        // Each word sets or clears its flags on its own; the last one wins.
        let all_set: Vec<String> = ["ro", "nosuid", "nodev", "noexec", "sync", "noatime"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for f in [
            libc::MS_RDONLY,
            libc::MS_NOSUID,
            libc::MS_NODEV,
            libc::MS_NOEXEC,
            libc::MS_SYNCHRONOUS,
            libc::MS_NOATIME,
        ] {
            let mut want = false;
            for w in &ab {
                let mut after = all_set.clone();
                after.push(w.clone());
                if parse(std::slice::from_ref(w)).flags & f != 0 {
                    want = true;
                } else if parse(&after).flags & f == 0 {
                    want = false;
                }
            }
            prop_assert_eq!(pab.flags & f != 0, want, "flag {:#x} of {:?}", f, ab);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Cgroups
// ---------------------------------------------------------------------------

#[test]
fn cgroup_paths_resolve_without_dotdot() {
    let segment = prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        "[a-z0-9:_.-]{1,10}",
    ];
    let path = (any::<bool>(), vec(segment, 0..5))
        .prop_map(|(abs, segs)| format!("{}{}", if abs { "/" } else { "" }, segs.join("/")));
    check(
        cases(500),
        (proptest::option::of(path), "[a-z0-9]{1,12}"),
        |(p, id)| {
            match hull::cgroups::resolve_path(p.as_deref().map(Path::new), &id) {
                Ok(r) => {
                    prop_assert!(!r.split('/').any(|c| c == ".."), "{r:?}");
                    if p.as_deref().is_none_or(str::is_empty) {
                        prop_assert_eq!(r, format!("/{id}"));
                    }
                }
                Err(Error::Config { field, .. }) => prop_assert_eq!(field, "linux.cgroupsPath"),
                Err(e) => return Err(TestCaseError::fail(format!("untyped: {e:?}"))),
            }
            Ok(())
        },
    );
}

/// Every refusal of `linux.resources` (as `update -r` reads it too) names a
/// field under it; whatever is accepted plans writes naming their field.
#[test]
fn resource_values_are_checked_naming_the_field() {
    let strategy = (resources_value(false), vec(mutation(), 0..3), any::<bool>());
    check(cases(800), strategy, |(mut r, mutations, v2)| {
        let paths: Vec<String> = mutations
            .iter()
            .map(|m| format!("linux.resources.{}", field_of(&apply(&mut r, m))))
            .collect();
        let res = match Resources::from_value(r.clone(), "linux.resources") {
            Ok(res) => res,
            Err(Error::Config { field, msg }) => {
                prop_assert!(
                    paths.iter().any(|p| related(&field, p)),
                    "{field}: {msg} is not about the changed fields {paths:?}"
                );
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("untyped: {e:?}"))),
        };
        // What hull reads back from state.json.
        let again = Resources::from_value(serde_json::to_value(&res).unwrap(), "x")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &res);
        let doc = json!({"linux": {"resources": r}});
        if let Err(e) = resources::validate(&res, &test_host(v2)) {
            names_config_field(&e, &doc)?;
            // About a changed field, or one beside it (memory.swap is
            // checked against memory.limit).
            let Error::Config { field, .. } = &e else {
                unreachable!()
            };
            let parent = |p: &str| {
                p.rfind(['.', '['])
                    .map_or(String::new(), |i| p[..i].to_string())
            };
            prop_assert!(
                paths
                    .iter()
                    .any(|p| related(field, p) || related(field, &parent(p))),
                "{e} is not about the changed fields {paths:?}"
            );
            return Ok(());
        }
        let writes = if v2 {
            match resources::v2_writes(&res, false) {
                Ok(w) => w,
                Err(e) => {
                    names_config_field(&e, &doc)?;
                    return Ok(());
                }
            }
        } else {
            resources::v1_writes(&res, V1Facts::default())
        };
        for w in writes {
            let field = format!("linux.resources.{}", w.field);
            prop_assert!(
                field_in(&doc, &field) || w.field.starts_with("linux.resources"),
                "write {w:?} names no field of {doc}"
            );
        }
        Ok(())
    });
}

#[test]
fn cpuset_lists_parse_without_blowing_up() {
    let part = prop_oneof![
        any::<u32>().prop_map(|n| n.to_string()),
        (0u32..100_000, 0u32..100_000).prop_map(|(a, b)| format!("{a}-{b}")),
        "[ 0-9,-]{0,6}",
    ];
    check(cases(500), vec(part, 0..6), |parts| {
        let s = parts.join(",");
        if let Some(list) = resources::parse_list(&s) {
            prop_assert!(list.len() <= 6 * 65537);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

#[test]
fn signal_names_parse_into_range() {
    let name = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-5i32..80).prop_map(|n| n.to_string()),
        (
            select(vec!["", "SIG", "sig", "Sig"]),
            select(vec![
                "KILL", "term", "Hup", "RTMIN", "RTMAX", "rtmin+", "RTMIN+", "RTMIN-", "RTMAX-",
                "NOPE", "usr1"
            ]),
            proptest::option::of(prop_oneof![
                any::<i32>().prop_map(|n| n.to_string()),
                (-3i32..40).prop_map(|n| n.to_string()),
                "[+-]?[0-9]{0,12}",
            ]),
        )
            .prop_map(|(p, n, off)| format!("{p}{n}{}", off.unwrap_or_default())),
        ".{0,12}",
    ];
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    check(cases(1000), name, |s| {
        let got = hull::signal::parse(&s);
        if let Some(n) = got {
            prop_assert!((1..=rtmax).contains(&n), "{s:?} -> {n}");
        }
        // RTMIN+n is that realtime signal, n counted from 0.
        let up = s.to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        if let Some(off) = bare.strip_prefix("RTMIN+") {
            let want = Some(off)
                .filter(|o| o.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|o| o.parse::<i64>().ok())
                .filter(|o| (0..=i64::from(rtmax - rtmin)).contains(o))
                .map(|o| rtmin + o as i32);
            prop_assert_eq!(got, want, "{:?}", s);
        }
        Ok(())
    });
    for n in 1..=rtmax {
        assert_eq!(hull::signal::parse(&n.to_string()), Some(n));
    }
}

// ---------------------------------------------------------------------------
// Command lines
// ---------------------------------------------------------------------------

// A grammar shaped like hull's (global flags, commands with flags taking
// values, optional positionals, a trailing list).
static GLOBALS: [Flag; 4] = [
    cli::switch("debug", None, "debug"),
    cli::opt("root", None, "DIR", "state root"),
    cli::opt("log", None, "FILE", "log file"),
    cli::switch("systemd-cgroup", None, "systemd"),
];
static CREATE: [Flag; 4] = [
    cli::opt("bundle", Some('b'), "DIR", "bundle"),
    cli::opt("pid-file", None, "FILE", "pid file"),
    cli::switch("no-pivot", None, "no pivot"),
    cli::opt("preserve-fds", None, "N", "fds"),
];
static EXEC: [Flag; 5] = [
    cli::switch("detach", Some('d'), "detach"),
    cli::switch("tty", Some('t'), "tty"),
    cli::opt("env", Some('e'), "K=V", "env").alias(&["environment"]),
    cli::opt("cwd", None, "DIR", "cwd"),
    cli::opt("user", Some('u'), "UID", "user"),
];
static KILL: [Flag; 1] = [cli::switch("all", Some('a'), "all")];
static CMDS: [Cmd; 4] = [
    Cmd {
        name: "create",
        aliases: &[],
        about: "create",
        args: &["ID"],
        trailing: None,
        flags: &CREATE,
    },
    Cmd {
        name: "exec",
        aliases: &[],
        about: "exec",
        args: &["ID"],
        trailing: Some("COMMAND"),
        flags: &EXEC,
    },
    Cmd {
        name: "kill",
        aliases: &[],
        about: "kill",
        args: &["ID", "[SIGNAL]"],
        trailing: None,
        flags: &KILL,
    },
    Cmd {
        name: "list",
        aliases: &["ls"],
        about: "list",
        args: &[],
        trailing: None,
        flags: &[],
    },
];
static TEST_APP: App = App {
    name: "hull",
    about: "test grammar",
    globals: &GLOBALS,
    cmds: &CMDS,
};

fn argv_token() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "create",
            "exec",
            "kill",
            "list",
            "ls",
            "help",
            "--",
            "-",
            "-h",
            "--help",
            "--debug",
            "--root",
            "--root=/r",
            "--log",
            "-b",
            "-bdir",
            "--bundle",
            "--bundle=",
            "--no-pivot",
            "--no-pivot=1",
            "-d",
            "-t",
            "-dt",
            "-dte",
            "-eK=V",
            "-u",
            "--environment=A=1",
            "--preserve-fds",
            "-a",
            "-x",
            "--nope",
            "--=",
            "-é",
            "9",
            "KILL",
            "id1"
        ])
        .prop_map(String::from),
        "-{0,2}[a-z=é]{0,6}",
        ".{0,6}",
    ]
}

#[test]
fn command_lines_parse_or_name_the_problem() {
    check(cases(1000), vec(argv_token(), 0..8), |argv| {
        match cli::parse(&TEST_APP, argv.clone()) {
            Ok(Outcome::Help(text)) => prop_assert!(!text.is_empty()),
            Ok(Outcome::Run(p)) => {
                if let Some(cmd) = p.cmd {
                    let required = cmd.args.iter().filter(|a| !a.starts_with('[')).count();
                    prop_assert!(p.args.len() >= required && p.args.len() <= cmd.args.len());
                }
                // A numeric flag's error names the flag.
                if let Err(e) = p.num::<u32>("preserve-fds") {
                    prop_assert!(e.contains("--preserve-fds"), "{e}");
                }
            }
            Err(e) => {
                // The error quotes the word (or the flag or command) at fault.
                let named = argv.iter().any(|a| {
                    let long = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
                    (!a.is_empty() && e.contains(a.as_str()))
                        || (long.len() > 2 && e.contains(long))
                        || a.chars().skip(1).any(|c| e.contains(&format!("-{c}")))
                        || e.contains(&format!("{a:?}"))
                });
                prop_assert!(named, "error {e:?} names nothing of {argv:?}");
            }
        }
        Ok(())
    });
}

/// One command line, written in each of the spellings the parser accepts,
/// parses to the same flags and arguments.
#[test]
fn command_line_spellings_agree() {
    let value = "[a-zA-Z0-9/=._-]{1,8}";
    let strategy = (
        proptest::option::of(value),
        proptest::option::of(value),
        vec(value, 0..3),
        "[a-z0-9]{1,8}",
        vec("[ -~]{0,6}", 0..3),
        any::<bool>(),
        0usize..4,
    );
    check(
        cases(500),
        strategy,
        |(root, cwd, envs, id, trailing, tty, style)| {
            let mut argv: Vec<String> = Vec::new();
            let flag = |argv: &mut Vec<String>, long: &str, short: Option<char>, v: &str| match (
                style, short,
            ) {
                (0, _) | (1, None) => {
                    argv.push(format!("--{long}"));
                    argv.push(v.to_string());
                }
                (1, Some(_)) | (3, None) => argv.push(format!("--{long}={v}")),
                (2, Some(c)) => {
                    argv.push(format!("-{c}"));
                    argv.push(v.to_string());
                }
                (_, Some(c)) => argv.push(format!("-{c}{v}")),
                (_, None) => {
                    argv.push(format!("--{long}"));
                    argv.push(v.to_string());
                }
            };
            if let Some(r) = &root {
                flag(&mut argv, "root", None, r);
            }
            argv.push("exec".into());
            if tty {
                argv.push(if style % 2 == 0 { "-t" } else { "--tty" }.into());
            }
            for e in &envs {
                flag(&mut argv, "env", Some('e'), e);
            }
            if let Some(c) = &cwd {
                flag(&mut argv, "cwd", None, c);
            }
            argv.push(id.clone());
            argv.push("--".into());
            argv.extend(trailing.iter().cloned());
            let Ok(Outcome::Run(p)) = cli::parse(&TEST_APP, argv.clone()) else {
                return Err(TestCaseError::fail(format!("{argv:?} not parsed")));
            };
            prop_assert_eq!(p.value("root"), root.as_deref());
            prop_assert_eq!(p.value("cwd"), cwd.as_deref());
            prop_assert_eq!(p.values("env"), envs);
            prop_assert_eq!(p.has("tty"), tty);
            prop_assert_eq!(&p.args, &vec![id]);
            // `--` ends the flags: the command is taken as it is.
            prop_assert_eq!(&p.trailing, &trailing);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// state.json
// ---------------------------------------------------------------------------

fn container_state() -> impl Strategy<Value = ContainerState> {
    let path = "/[a-zA-Z0-9 ._/-]{0,20}".prop_map(PathBuf::from);
    let hook = (
        path.clone(),
        vec("[ -~]{0,6}", 0..3),
        proptest::option::of(1i64..100),
    )
        .prop_map(|(p, args, timeout)| {
            let mut h = json!({"path": p, "args": args});
            if let Some(t) = timeout {
                h["timeout"] = json!(t);
            }
            serde_json::from_value::<oci_spec::runtime::Hook>(h).unwrap()
        });
    (
        "[a-zA-Z0-9_+.-]{1,20}".prop_filter("not . or ..", |id| id != "." && id != ".."),
        (any::<i32>(), any::<u64>()),
        (path.clone(), path.clone()),
        "[0-9TZ:.-]{0,30}",
        btree_map("[ -~]{1,8}", "[ -~]{0,8}", 0..3),
        vec(path, 0..3),
        (vec(hook.clone(), 0..2), vec(hook, 0..2)),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(id, (pid, pid_start), (bundle, rootfs), created, annotations, cg, hooks, flags)| {
                let mut cgroup: hull::cgroups::Cgroup = Default::default();
                cgroup.paths = cg;
                ContainerState {
                    id,
                    pid,
                    pid_start,
                    bundle,
                    rootfs,
                    created,
                    annotations,
                    cgroup,
                    hooks: LaterHooks {
                        poststart: hooks.0,
                        poststop: hooks.1,
                    },
                    own_pid_ns: flags.0,
                    started: flags.1,
                }
            },
        )
}

#[test]
fn state_files_round_trip_and_corruption_is_typed() {
    let dir = common::TempDir::new("props-state");
    let store = StateStore::new(dir.path());
    let strategy = (
        container_state(),
        any::<Index>(),
        vec((any::<Index>(), any::<u8>()), 0..3),
        any::<bool>(),
    );
    check(cases(400), strategy, |(st, cut, flips, corrupt)| {
        std::fs::create_dir_all(store.dir(&st.id)).unwrap();
        store
            .save(&st)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let loaded = store
            .load(&st.id)
            .map_err(|e| TestCaseError::fail(format!("saved state does not load: {e}")))?;
        prop_assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(&st).unwrap()
        );
        // The OCI state hull prints reads back the same too.
        let oci = loaded.oci(Status::Stopped);
        let text = serde_json::to_string(&oci).unwrap();
        let back: OciState = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&oci).unwrap()
        );

        if corrupt {
            let file = store.dir(&st.id).join(hull::state::STATE_FILE);
            let mut bytes = std::fs::read(&file).unwrap();
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            std::fs::write(&file, &bytes).unwrap();
            match store.load(&st.id) {
                Ok(_) => {}
                Err(Error::ConfigParse { path, msg }) => {
                    prop_assert_eq!(path, file);
                    prop_assert!(msg.starts_with("corrupt state"), "{msg}");
                }
                Err(Error::Io { path, .. }) => prop_assert_eq!(path, file),
                Err(e) => return Err(TestCaseError::fail(format!("untyped: {e:?}"))),
            }
        }
        std::fs::remove_dir_all(store.dir(&st.id)).unwrap();
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// Accepted configs survive create/delete
// ---------------------------------------------------------------------------

#[test]
fn accepted_configs_create_and_delete_without_debris() {
    if common::skip() {
        return;
    }
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(25, |n| (n / 50).max(25));
    let rt = common::Runtime::new("props-create");
    let bundle = RefCell::new(common::Bundle::new("props-create"));
    check(exact_cases(n), valid_config(true), |doc| {
        // What the parser and validator accept...
        let spec = hull::config::parse(&doc.to_string())
            .map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
        hull::config::validate(&spec).map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
        // ... create can carry out, and delete leaves nothing behind.
        let id = common::unique_id("props");
        let mut b = bundle.borrow_mut();
        b.config = doc;
        let out = rt.create(&id, &mut b, &[]);
        let deleted = rt.cmd(&["delete", "--force", &id]);
        prop_assert!(out.success(), "create failed: {out}");
        prop_assert!(deleted.success(), "delete failed: {deleted}");
        rt.assert_nothing_left(&id);
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// hull's own command line (the grammar in main.rs, read from its --help)
// ---------------------------------------------------------------------------

/// Commands and flags as `hull --help` and `hull CMD --help` list them:
/// (command, its flags), the global flags first under "".
fn real_grammar(bin: &Path) -> Vec<(String, Vec<String>)> {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let flags = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .flat_map(|l| {
                let head = l.split("  ").next().unwrap_or_default();
                head.split(", ")
                    .map(|f| f.split(' ').next().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let top = help(&["--help"]);
    let mut out = vec![(String::new(), flags(&top))];
    let cmds = top
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_default();
    for line in cmds.lines().filter(|l| !l.trim().is_empty()) {
        let name = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let f = flags(&help(&[&name, "--help"]));
        out.push((name, f));
    }
    out
}

/// Any command line made of hull's own words and junk: hull exits with 0,
/// 1 (an error) or 2 (a usage error naming the word at fault), and never
/// panics or hangs. Commands that would make containers are left out.
#[test]
fn hull_command_lines_exit_cleanly() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hull"));
    let grammar = real_grammar(&bin);
    assert!(
        grammar.len() > 10,
        "no commands in hull --help: {grammar:?}"
    );
    let making = ["run", "create", "exec", "start", "restore", "checkpoint"];
    let mut words: Vec<String> = vec!["--".into(), "-".into(), "-h".into(), "KILL".into()];
    for (cmd, flags) in &grammar {
        if making.contains(&cmd.as_str()) {
            continue;
        }
        if !cmd.is_empty() {
            words.push(cmd.clone());
        }
        words.extend(flags.iter().filter(|f| *f != "--root").cloned());
    }
    let token = prop_oneof![
        4 => select(words),
        2 => "[a-z0-9]{1,6}",
        1 => "--?[a-z]{1,6}(=[a-z0-9]{0,3})?",
    ];
    let dir = common::TempDir::new("props-cli");
    let root = dir.path().join("root");
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(150, |n| (n / 50).max(150));
    let strategy = vec(token, 0..6).prop_filter("makes no container", |argv| {
        !argv.iter().any(|a| making.contains(&a.as_str()))
    });
    check(exact_cases(n), strategy, |argv| {
        let mut child = std::process::Command::new(&bin)
            .arg("--root")
            .arg(&root)
            .args(&argv)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TestCaseError::fail(format!("hull {argv:?} hangs")));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let mut err = String::new();
        use std::io::Read;
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let code = status.code();
        prop_assert!(
            matches!(code, Some(0..=2)),
            "hull {argv:?} exited with {status}: {err}"
        );
        if code == Some(2) {
            let named = argv.iter().any(|a| {
                let long = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
                (!a.is_empty() && err.contains(a.as_str()))
                    || (long.len() > 1 && err.contains(long))
                    || a.chars().skip(1).any(|c| err.contains(&format!("-{c}")))
            });
            prop_assert!(named, "usage error {err:?} names nothing of {argv:?}");
        }
        Ok(())
    });
}

/// Mutated configs the parser and validator still accept: create either
/// carries them out or refuses naming a config field, and delete leaves
/// nothing behind either way. (No mutation touches root.path, mount
/// sources or hooks: what those point at on the host is the test's to say.)
#[test]
fn accepted_mutated_configs_create_or_refuse_without_debris() {
    if common::skip() {
        return;
    }
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(25, |n| (n / 50).max(25));
    let rt = common::Runtime::new("props-mutated");
    let bundle = RefCell::new(common::Bundle::new("props-mutated"));
    let strategy = (valid_config(true), mutation()).prop_filter_map(
        "refused or touching the host",
        |(mut doc, m)| {
            let path = field_of(&apply(&mut doc, &m));
            let host = path.starts_with("root")
                || path.starts_with("hooks")
                || (path.starts_with("mounts") && path.ends_with(".source"))
                || doc.get("hooks").is_some()
                || doc["root"] != json!({"path": "rootfs", "readonly": doc["root"]["readonly"]});
            let spec = hull::config::parse(&doc.to_string()).ok()?;
            let mut spec2 = spec.clone();
            hull::config::normalize(&mut spec2);
            (!host && hull::config::validate(&spec2).is_ok()).then_some((doc, path))
        },
    );
    check(exact_cases(n), strategy, |(doc, path)| {
        let id = common::unique_id("propsm");
        let mut b = bundle.borrow_mut();
        b.config = doc;
        let out = rt.create(&id, &mut b, &[]);
        let deleted = rt.cmd(&["delete", "--force", &id]);
        if !out.success() {
            let err = &out.stderr;
            let named = TOP_LEVEL.iter().any(|t| {
                [".", "[", ":"]
                    .iter()
                    .any(|c| err.contains(&format!("{t}{c}")))
            });
            prop_assert!(out.code == 1, "create exited with {}: {out}", out.code);
            prop_assert!(named, "create refused {path} naming no field: {out}");
        }
        prop_assert!(deleted.success(), "delete failed: {deleted}");
        rt.assert_nothing_left(&id);
        Ok(())
    });
}
