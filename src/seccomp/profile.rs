//! `linux.seccomp` as written in config.json: the names hull accepts, a
//! check of the raw JSON that names the offending field before the typed
//! parse runs (so `linux.seccomp.syscalls[3].action: unknown action
//! "SCMP_ACT_FOO"` rather than a serde enum dump), and the checks that need
//! the whole profile (SCMP_ACT_NOTIFY rules).

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use serde_json::Value;

use crate::error::{Error, Result};

/// Every `SCMP_ACT_*` of the runtime-spec.
pub const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// Every `SCMP_CMP_*` operator.
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// The filter flags of the runtime-spec (seccomp(2) flags).
pub const FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The architectures hull (through libseccomp) can filter for.
pub const ARCHES: [&str; 24] = [
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// Syscall arguments are numbered 0..6.
pub const MAX_ARGS: u64 = 6;

type Check = std::result::Result<(), String>;

fn one_of(field: &str, v: &Value, allowed: &[&str], what: &str) -> Check {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(()),
        Some(s) => Err(format!(
            "{field}: unknown {what} {s:?} (expected one of {})",
            allowed.join(", ")
        )),
        None => Err(format!("{field}: must be a string naming the {what}")),
    }
}

fn array<'a>(field: &str, v: &'a Value) -> std::result::Result<&'a Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{field}: must be an array"))
}

fn errno_ret(field: &str, v: &Value) -> Check {
    match v.as_u64() {
        Some(n) if n <= u64::from(u16::MAX) => Ok(()),
        _ => Err(format!(
            "{field}: must be an errno number from 0 to 65535, got {v}"
        )),
    }
}

fn number(field: &str, v: &Value) -> Check {
    v.as_u64()
        .map(drop)
        .ok_or_else(|| format!("{field}: must be an unsigned 64-bit number, got {v}"))
}

/// Check `linux.seccomp` in the raw config JSON (if present). Errors name
/// the field: `linux.seccomp.syscalls[3].args[0].op: unknown operator ...`.
pub fn check_json(config: &Value) -> Check {
    let Some(s) = config.get("linux").and_then(|l| l.get("seccomp")) else {
        return Ok(());
    };
    if s.is_null() {
        return Ok(());
    }
    let base = "linux.seccomp";
    let obj = s
        .as_object()
        .ok_or_else(|| format!("{base}: must be an object"))?;
    match obj.get("defaultAction") {
        Some(a) => one_of(&format!("{base}.defaultAction"), a, &ACTIONS, "action")?,
        None => return Err(format!("{base}.defaultAction: required")),
    }
    if let Some(e) = obj.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        errno_ret(&format!("{base}.defaultErrnoRet"), e)?;
    }
    if let Some(list) = obj.get("architectures").filter(|e| !e.is_null()) {
        let f = format!("{base}.architectures");
        for (i, a) in array(&f, list)?.iter().enumerate() {
            one_of(&format!("{f}[{i}]"), a, &ARCHES, "architecture")?;
        }
    }
    if let Some(list) = obj.get("flags").filter(|e| !e.is_null()) {
        let f = format!("{base}.flags");
        for (i, a) in array(&f, list)?.iter().enumerate() {
            one_of(&format!("{f}[{i}]"), a, &FLAGS, "flag")?;
        }
    }
    for key in ["listenerPath", "listenerMetadata"] {
        if let Some(v) = obj.get(key).filter(|e| !e.is_null()) {
            if !v.is_string() {
                return Err(format!("{base}.{key}: must be a string"));
            }
        }
    }
    let Some(calls) = obj.get("syscalls").filter(|e| !e.is_null()) else {
        return Ok(());
    };
    let f = format!("{base}.syscalls");
    for (i, call) in array(&f, calls)?.iter().enumerate() {
        let f = format!("{f}[{i}]");
        if !call.is_object() {
            return Err(format!("{f}: must be an object"));
        }
        let names = call
            .get("names")
            .ok_or_else(|| format!("{f}.names: required"))?;
        for (j, n) in array(&format!("{f}.names"), names)?.iter().enumerate() {
            match n.as_str() {
                Some(s) if !s.is_empty() => {}
                _ => return Err(format!("{f}.names[{j}]: must be a non-empty syscall name")),
            }
        }
        match call.get("action") {
            Some(a) => one_of(&format!("{f}.action"), a, &ACTIONS, "action")?,
            None => return Err(format!("{f}.action: required")),
        }
        if let Some(e) = call.get("errnoRet").filter(|e| !e.is_null()) {
            errno_ret(&format!("{f}.errnoRet"), e)?;
        }
        let Some(args) = call.get("args").filter(|e| !e.is_null()) else {
            continue;
        };
        for (k, arg) in array(&format!("{f}.args"), args)?.iter().enumerate() {
            let f = format!("{f}.args[{k}]");
            if !arg.is_object() {
                return Err(format!("{f}: must be an object"));
            }
            match arg.get("index").and_then(Value::as_u64) {
                Some(n) if n < MAX_ARGS => {}
                Some(n) => {
                    return Err(format!(
                        "{f}.index: {n} is out of range (a syscall has arguments 0 to 5)"
                    ))
                }
                None => return Err(format!("{f}.index: required, a number from 0 to 5")),
            }
            match arg.get("value") {
                Some(v) => number(&format!("{f}.value"), v)?,
                None => return Err(format!("{f}.value: required")),
            }
            if let Some(v) = arg.get("valueTwo").filter(|e| !e.is_null()) {
                number(&format!("{f}.valueTwo"), v)?;
            }
            match arg.get("op") {
                Some(op) => one_of(&format!("{f}.op"), op, &OPERATORS, "operator")?,
                None => return Err(format!("{f}.op: required")),
            }
        }
    }
    Ok(())
}

/// The largest errno libseccomp takes for SCMP_ACT_ERRNO (it refuses
/// MAX_ERRNO, 4095, and above; the kernel's field would hold 65535).
pub const MAX_ERRNO_RET: u32 = 4094;

/// An SCMP_ACT_ERRNO's return value must be one libseccomp takes, or the
/// filter fails to build only at create time, without naming the field.
fn errno_ret_ok(field: String, action: LinuxSeccompAction, ret: Option<u32>) -> Result<()> {
    match ret {
        Some(e) if action == LinuxSeccompAction::ScmpActErrno && e > MAX_ERRNO_RET => {
            Err(Error::config(
                field,
                format!(
                    "{e} is out of range for SCMP_ACT_ERRNO (an errno from 0 to {MAX_ERRNO_RET})"
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Checks over the typed profile that runc also makes: SCMP_ACT_NOTIFY is
/// not a default action, never applies to `write` (or `sendmsg`, which
/// carries the listener fd out of the container), and needs a listener;
/// and errno values libseccomp can build a filter with.
pub fn validate(s: &LinuxSeccomp) -> Result<()> {
    let base = "linux.seccomp";
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(Error::config(
            format!("{base}.defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    errno_ret_ok(
        format!("{base}.defaultErrnoRet"),
        s.default_action(),
        s.default_errno_ret(),
    )?;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        errno_ret_ok(
            format!("{base}.syscalls[{i}].errnoRet"),
            call.action(),
            call.errno_ret(),
        )?;
    }
    let mut notify = false;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        if call.action() != LinuxSeccompAction::ScmpActNotify {
            continue;
        }
        notify = true;
        for name in call.names() {
            if name == "write" || name == "sendmsg" {
                return Err(Error::config(
                    format!("{base}.syscalls[{i}]"),
                    format!("SCMP_ACT_NOTIFY cannot be used for {name:?} (the runtime needs it to hand over the listener)"),
                ));
            }
        }
    }
    match s.listener_path() {
        None if notify => Err(Error::config(
            format!("{base}.listenerPath"),
            "required when a rule uses SCMP_ACT_NOTIFY",
        )),
        Some(p) if notify && !p.is_absolute() => Err(Error::config(
            format!("{base}.listenerPath"),
            format!("must be an absolute path, got {p:?}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(seccomp: Value) -> Check {
        check_json(&json!({"linux": {"seccomp": seccomp}}))
    }

    #[test]
    fn good_profile_passes() {
        check(json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_MASKED_EQ", "valueTwo": 0}]}]
        }))
        .unwrap();
        check_json(&json!({"linux": {}})).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let e = check(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["b"], "action": "SCMP_ACT_FOO"}]}))
        .unwrap_err();
        assert!(
            e.starts_with("linux.seccomp.syscalls[1].action: unknown action \"SCMP_ACT_FOO\""),
            "{e}"
        );
        let e = check(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["b"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_BOGUS"}]}]}))
        .unwrap_err();
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].args[0].op: unknown operator"),
            "{e}"
        );
        let e = check(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["b"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 2, "op": "SCMP_CMP_EQ"}]}]}))
        .unwrap_err();
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].args[0].index"),
            "{e}"
        );
        let e = check(json!({"defaultAction": "KILL"})).unwrap_err();
        assert!(e.starts_with("linux.seccomp.defaultAction"), "{e}");
        let e =
            check(json!({"defaultAction": "SCMP_ACT_KILL", "architectures": ["SCMP_ARCH_Z80"]}))
                .unwrap_err();
        assert!(e.starts_with("linux.seccomp.architectures[0]"), "{e}");
        let e = check(json!({"defaultAction": "SCMP_ACT_KILL", "flags": ["NOPE"]})).unwrap_err();
        assert!(e.starts_with("linux.seccomp.flags[0]"), "{e}");
        let e = check(json!({"syscalls": []})).unwrap_err();
        assert!(
            e.starts_with("linux.seccomp.defaultAction: required"),
            "{e}"
        );
        let e =
            check(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1})).unwrap_err();
        assert!(e.starts_with("linux.seccomp.defaultErrnoRet"), "{e}");
    }

    #[test]
    fn errno_values_libseccomp_refuses_are_refused_naming_the_field() {
        // Found by tests/props.rs: errnoRet 4095..65535 passed validation,
        // then create failed with "adding the rule for ...: Invalid input
        // to the libseccomp API".
        let profile = |v: Value| serde_json::from_value::<LinuxSeccomp>(v).unwrap();
        let rule = |action: &str, errno: u32| {
            profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["quotactl"], "action": action, "errnoRet": errno}]}))
        };
        for errno in [4095, 4096, 65535] {
            let e = validate(&rule("SCMP_ACT_ERRNO", errno))
                .unwrap_err()
                .to_string();
            assert!(e.contains("linux.seccomp.syscalls[1].errnoRet"), "{e}");
        }
        for (action, errno) in [("SCMP_ACT_ERRNO", 4094), ("SCMP_ACT_TRACE", 65535)] {
            let p = rule(action, errno);
            validate(&p).unwrap();
            crate::seccomp::compile::compile(&p).unwrap();
        }
        let p = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4095}));
        let e = validate(&p).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.defaultErrnoRet"), "{e}");
    }

    #[test]
    fn notify_rules_are_checked() {
        let p: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}))
        .unwrap();
        let e = validate(&p).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
        let p: LinuxSeccomp = serde_json::from_value(json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock",
            "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}))
        .unwrap();
        let e = validate(&p).unwrap_err().to_string();
        assert!(e.contains("linux.seccomp.syscalls[0]"), "{e}");
        let p: LinuxSeccomp =
            serde_json::from_value(json!({"defaultAction": "SCMP_ACT_NOTIFY"})).unwrap();
        assert!(validate(&p).is_err());
    }
}
