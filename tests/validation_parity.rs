//! Validation parity with runc: for invalid and edge-case configs, the
//! runtime under test refuses exactly where runc refuses and accepts where
//! runc accepts (a differential test: both runtimes `create` each bundle).
//! `tests/parity.rs` generates many more such cases from a table of fields.

mod common;

use std::path::Path;

use common::{Bundle, Runtime};
use serde_json::{json, Value};

type Tweak = fn(&mut Value);

fn remove_ns(c: &mut Value, t: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != t);
}

/// (name, tweak) — each builds a config from the harness default.
const CASES: &[(&str, Tweak)] = &[
    ("hostname-without-uts", |c| remove_ns(c, "uts")),
    ("empty-hostname-without-uts", |c| {
        remove_ns(c, "uts");
        c["hostname"] = json!("");
    }),
    ("relative-cwd", |c| c["process"]["cwd"] = json!("tmp")),
    ("cwd-trailing-slash", |c| {
        c["process"]["cwd"] = json!("/tmp/")
    }),
    ("duplicate-namespace", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "pid"}))
    }),
    ("unknown-namespace-type", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "hull"}))
    }),
    ("negative-memory-limit", |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": -5})
    }),
    ("unlimited-memory-limit", |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": -1})
    }),
    ("unknown-sysctl", |c| {
        c["linux"]["sysctl"] = json!({"kernel.hull_no_such_sysctl": "1"})
    }),
    ("ipc-sysctl", |c| {
        c["linux"]["sysctl"] = json!({"kernel.msgmax": "8192"})
    }),
    ("net-sysctl-without-netns", |c| {
        remove_ns(c, "network");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    }),
    ("bogus-seccomp-action", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_FOO"}]})
    }),
    ("bogus-seccomp-operator", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]})
    }),
    ("unknown-seccomp-syscall", |c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["hull_no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]})
    }),
    ("unknown-rlimit", |c| {
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_HULL", "soft": 1, "hard": 1}])
    }),
    ("unknown-capability", |c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_HULL_FUTURE"))
    }),
    (
        "proc-not-procfs",
        |c| c["mounts"][0] = json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
    ),
    // On a host without AppArmor/SELinux (runc refuses these there too).
    ("apparmor-profile", |c| {
        c["process"]["apparmorProfile"] = json!("hull-test")
    }),
    ("selinux-label", |c| {
        c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")
    }),
    // runc 1.1 warns and mounts it under the root.
    ("relative-mount-destination", |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "relative", "type": "tmpfs", "source": "tmpfs"}))
    }),
    // runc checks no ociVersion at all.
    ("old-oci-version", |c| c["ociVersion"] = json!("0.1.0")),
    ("empty-oci-version", |c| c["ociVersion"] = json!("")),
    // runc: "uids and gids must be in range 0-2147483647".
    ("uid-minus-one", |c| {
        c["process"]["user"]["uid"] = json!(4294967295u32)
    }),
    ("gid-above-int-max", |c| {
        c["process"]["user"]["gid"] = json!(2147483648u32)
    }),
    ("additional-gid-above-int-max", |c| {
        c["process"]["user"]["additionalGids"] = json!([2147483648u32])
    }),
    ("uid-int-max", |c| {
        c["process"]["user"]["uid"] = json!(2147483647)
    }),
    ("mount-label", |c| {
        c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0")
    }),
];

/// Whether `create` succeeds for the case (the container is then deleted).
fn accepts(bin: &Path, name: &str, tweak: Tweak) -> (bool, String) {
    let rt = Runtime::with_bin(bin, &format!("vp-{name}"));
    let mut b = Bundle::new(&format!("vp-{name}"));
    b.args(&["sleep", "10"]);
    tweak(&mut b.config);
    let id = common::unique_id(&format!("vp-{name}"));
    let out = rt.create(&id, &mut b, &[]);
    if out.success() {
        rt.cmd(&["delete", "--force", &id]);
    }
    rt.assert_nothing_left(&id);
    (out.success(), out.stderr)
}

#[test]
fn refuses_exactly_where_runc_refuses() {
    if common::skip() {
        return;
    }
    if !Path::new(common::RUNC).is_file() {
        eprintln!("skipped: {} is not installed", common::RUNC);
        return;
    }
    let tested = common::runtime_bin();
    let mut mismatches = Vec::new();
    for (name, tweak) in CASES {
        let (runc_ok, runc_err) = accepts(Path::new(common::RUNC), name, *tweak);
        let (ok, err) = accepts(&tested, name, *tweak);
        eprintln!("{name}: runc {runc_ok}, tested {ok}");
        if ok != runc_ok {
            mismatches.push(format!(
                "{name}: runc {} but the tested runtime {}\n  runc: {}\n  tested: {}",
                if runc_ok { "accepts" } else { "refuses" },
                if ok { "accepts" } else { "refuses" },
                runc_err.trim(),
                err.trim()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
