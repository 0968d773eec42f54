//! Compile a `linux.seccomp` profile to a classic BPF program, in the
//! parent, with libseccomp (the same compiler runc uses, so the same
//! semantics: multi-architecture filters, socketcall/ipc multiplexing on
//! x86, 64-bit argument comparisons on 32-bit ABIs). The program is exported
//! with `seccomp_export_bpf` and the init loads it with a raw seccomp(2).

use std::io::{Read, Seek};
use std::os::fd::AsFd;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use crate::error::{Error, Result};
use crate::seccomp::profile::MAX_ARGS;

/// The kernel's limit on one BPF program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// The libseccomp action for an OCI action (as runc maps them: SCMP_ACT_KILL
/// kills the thread; ERRNO and TRACE default to EPERM).
pub fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    let ret = errno_ret.map_or(libc::EPERM, |e| e as i32);
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn condition(a: &LinuxSeccompArg) -> ScmpArgCompare {
    use LinuxSeccompOperator::*;
    let op = match a.op() {
        ScmpCmpNe => ScmpCompareOp::NotEqual,
        ScmpCmpLt => ScmpCompareOp::Less,
        ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        ScmpCmpEq => ScmpCompareOp::Equal,
        ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        ScmpCmpGt => ScmpCompareOp::Greater,
        // OCI: `value` is the mask, `valueTwo` what the masked argument must equal.
        ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(a.value()),
    };
    let datum = match a.op() {
        ScmpCmpMaskedEq => a.value_two().unwrap_or(0),
        _ => a.value(),
    };
    ScmpArgCompare::new(a.index() as u32, op, datum)
}

fn arch_name(a: &oci_spec::runtime::Arch) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What compiling produced.
#[derive(Debug, Default)]
pub struct Compiled {
    pub bpf: Vec<libc::sock_filter>,
    /// Whether some rule uses SCMP_ACT_NOTIFY.
    pub notify: bool,
    /// Syscall names not known to libseccomp on this machine (skipped).
    pub unknown: Vec<String>,
}

/// The architectures (of `profile::ARCHES`) that a filter on this host can
/// include: libseccomp refuses some combinations (e.g. big-endian MIPS
/// beside x86_64).
pub fn loadable_arches() -> Vec<&'static str> {
    super::profile::ARCHES
        .iter()
        .copied()
        .filter(|name| {
            let Ok(arch) = name.parse::<ScmpArch>() else {
                return false;
            };
            let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else {
                return false;
            };
            arch == ScmpArch::Native
                || ctx.is_arch_present(arch).unwrap_or(false)
                || ctx.add_arch(arch).is_ok()
        })
        .collect()
}

fn lib_err(field: String, what: &str, e: libseccomp::error::SeccompError) -> Error {
    Error::config(field, format!("{what}: {e}"))
}

/// Build the filter for `s` and export it as BPF.
pub fn compile(s: &LinuxSeccomp) -> Result<Compiled> {
    let base = "linux.seccomp";
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default)
        .map_err(|e| lib_err(format!("{base}.defaultAction"), "creating the filter", e))?;
    // hull sets no_new_privs itself (process.noNewPrivileges).
    let _ = ctx.set_ctl_nnp(false);
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let name = arch_name(a);
        let field = format!("{base}.architectures[{i}]");
        let arch: ScmpArch = name.parse().map_err(|e| lib_err(field.clone(), &name, e))?;
        if arch == ScmpArch::Native || ctx.is_arch_present(arch).unwrap_or(false) {
            continue;
        }
        ctx.add_arch(arch)
            .map_err(|e| lib_err(field, &format!("adding {name}"), e))?;
    }
    let mut out = Compiled::default();
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let act = action(call.action(), call.errno_ret());
        if act == default {
            // libseccomp refuses rules that repeat the default; runc skips them.
            continue;
        }
        if act == ScmpAction::Notify {
            out.notify = true;
        }
        let conds: Vec<ScmpArgCompare> = call.args().iter().flatten().map(condition).collect();
        // Several conditions on one argument: like runc, each becomes its
        // own rule (they are ORed); otherwise all conditions are ANDed.
        let mut per_arg = [0usize; MAX_ARGS as usize];
        for a in call.args().iter().flatten() {
            if let Some(n) = per_arg.get_mut(a.index()) {
                *n += 1;
            }
        }
        let split = per_arg.iter().any(|&n| n > 1);
        for name in call.names() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                // Unknown on this architecture / libseccomp: skipped, like runc.
                out.unknown.push(name.clone());
                continue;
            };
            let field = format!("{base}.syscalls[{i}]");
            let what = format!("adding the rule for {name:?}");
            let r = if conds.is_empty() {
                ctx.add_rule(act, sys).map(drop)
            } else if split {
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sys, &[*c]).map(drop))
            } else {
                ctx.add_rule_conditional(act, sys, &conds).map(drop)
            };
            r.map_err(|e| {
                if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) {
                    // libseccomp's text for it is "Failure regarding the
                    // existence of argument".
                    Error::config(
                        field,
                        format!(
                            "{what}: it conflicts with an earlier rule for the same syscall \
                             (a different action where libseccomp takes one per syscall, as \
                             for socket calls on 32-bit x86; runc refuses it too)"
                        ),
                    )
                } else {
                    lib_err(field, &what, e)
                }
            })?;
        }
    }
    out.bpf = export(&ctx)?;
    if out.bpf.len() > MAX_INSNS {
        return Err(Error::config(
            base,
            format!(
                "the filter compiles to {} BPF instructions, more than the kernel's limit of {MAX_INSNS}",
                out.bpf.len()
            ),
        ));
    }
    Ok(out)
}

/// Export the context's BPF program (through a memfd: libseccomp 2.5 only
/// writes it to an fd).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let mut file = crate::sys::memfd(c"hull-seccomp")
        .map_err(|e| Error::sys("creating a memfd for the seccomp filter", e))?;
    ctx.export_bpf(file.as_fd())
        .map_err(|e| Error::config("linux.seccomp", format!("exporting the filter: {e}")))?;
    let mut raw = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut raw))
        .map_err(|e| Error::Sys {
            what: "reading the exported seccomp filter".into(),
            source: e,
        })?;
    Ok(raw
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn conflicting_rules_are_refused_in_words() {
        // Found by tests/props.rs: two actions for socket with the x86
        // arch (socketcall multiplexing) failed with libseccomp's
        // "Failure regarding the existence of argument".
        let e = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_KILL",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["socket"], "action": "SCMP_ACT_TRAP"}]
        })))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("linux.seccomp.syscalls[1]") && e.contains("conflicts with an earlier rule"),
            "{e}"
        );
    }

    #[test]
    fn compiles_a_profile_with_every_operator() {
        let ops = crate::seccomp::profile::OPERATORS;
        let calls: Vec<_> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let name = ["read", "write", "openat", "close", "mmap", "brk", "dup"][i];
                json!({"names": [name],
                       "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                       "args": [{"index": 0, "value": 7, "valueTwo": 1, "op": op}]})
            })
            .collect();
        let c = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": calls
        })))
        .unwrap();
        assert!(c.bpf.len() > 20, "{}", c.bpf.len());
        assert!(!c.notify);
    }

    #[test]
    fn unknown_names_are_skipped_and_default_repeats_dropped() {
        let c = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["no_such_syscall_xyz", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}
            ]
        })))
        .unwrap();
        assert_eq!(c.unknown, ["no_such_syscall_xyz"]);
        assert!(c.notify);
    }

    #[test]
    fn same_argument_twice_is_accepted() {
        compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                         {"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]}]
        })))
        .unwrap();
    }
}
