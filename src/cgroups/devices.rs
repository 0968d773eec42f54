//! Device access rules (`linux.resources.devices`): the rule type, runc's
//! default allow list, the v1 devices.allow/deny writes and the v2 eBPF
//! program (BPF_PROG_TYPE_CGROUP_DEVICE) that implements the same rules.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One rule, with the OCI field names. `major`/`minor` None or -1 = any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    #[serde(default)]
    pub allow: bool,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

impl DeviceRule {
    pub fn new(allow: bool, typ: char, major: i64, minor: i64, access: &str) -> DeviceRule {
        DeviceRule {
            allow,
            typ: Some(typ.to_string()),
            major: Some(major),
            minor: Some(minor),
            access: Some(access.to_string()),
        }
    }

    /// 'a', 'b' or 'c'.
    pub fn kind(&self) -> char {
        self.typ
            .as_deref()
            .and_then(|t| t.chars().next())
            .unwrap_or('a')
    }

    fn num(v: Option<i64>) -> Option<u32> {
        v.filter(|&n| n >= 0).map(|n| n as u32)
    }

    pub fn access(&self) -> &str {
        self.access
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm")
    }

    pub fn validate(&self, field: &str) -> Result<()> {
        if !matches!(self.typ.as_deref(), None | Some("a" | "b" | "c" | "u")) {
            return Err(Error::config(
                format!("{field}.type"),
                format!("{:?} is not a, b or c", self.typ.as_deref().unwrap_or("")),
            ));
        }
        if self.access.as_deref().is_none_or(str::is_empty) {
            return Err(Error::config(
                format!("{field}.access"),
                "must not be empty (r, w and/or m), as runc requires",
            ));
        }
        if !self.access().chars().all(|c| "rwm".contains(c)) {
            return Err(Error::config(
                format!("{field}.access"),
                format!("{:?} may only contain r, w and m", self.access()),
            ));
        }
        for (n, v) in [("major", self.major), ("minor", self.minor)] {
            if v.is_some_and(|v| v < -1 || v > u32::MAX as i64) {
                return Err(Error::config(format!("{field}.{n}"), "out of range"));
            }
        }
        Ok(())
    }

    /// The v1 devices.allow/deny line: "c 1:3 rwm", "a" for everything.
    pub fn v1_line(&self) -> String {
        let k = match self.kind() {
            'u' => 'c',
            k => k,
        };
        let n = |v| Self::num(v).map_or("*".to_string(), |n: u32| n.to_string());
        if k == 'a' && Self::num(self.major).is_none() && Self::num(self.minor).is_none() {
            return "a".to_string();
        }
        format!("{k} {}:{} {}", n(self.major), n(self.minor), self.access())
    }

    fn is_all(&self) -> bool {
        self.kind() == 'a'
            && Self::num(self.major).is_none()
            && Self::num(self.minor).is_none()
            && self.access().len() == 3
    }
}

/// The devices every container may use, appended after the config's rules
/// (runc's specconv.AllowedDevices): mknod of anything, null, zero, full,
/// random, urandom, tty, ptmx, /dev/pts/*, and tun.
pub fn default_allowed() -> Vec<DeviceRule> {
    vec![
        DeviceRule::new(true, 'c', -1, -1, "m"),
        DeviceRule::new(true, 'b', -1, -1, "m"),
        DeviceRule::new(true, 'c', 1, 3, "rwm"),
        DeviceRule::new(true, 'c', 1, 8, "rwm"),
        DeviceRule::new(true, 'c', 1, 7, "rwm"),
        DeviceRule::new(true, 'c', 5, 0, "rwm"),
        DeviceRule::new(true, 'c', 1, 5, "rwm"),
        DeviceRule::new(true, 'c', 1, 9, "rwm"),
        DeviceRule::new(true, 'c', 136, -1, "rwm"),
        DeviceRule::new(true, 'c', 5, 2, "rwm"),
        DeviceRule::new(true, 'c', 10, 200, "rwm"),
    ]
}

/// The full rule list for a container: its config rules, then the defaults.
pub fn container_rules(spec_rules: &[DeviceRule]) -> Vec<DeviceRule> {
    let mut rules = spec_rules.to_vec();
    rules.extend(default_allowed());
    rules
}

/// The v1 writes: (file, line) for devices.allow / devices.deny, in order.
/// A leading deny-all (or any deny-all) resets the cgroup to "nothing";
/// the cgroup starts as "allow all" when the config has no deny-all.
pub fn v1_writes(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    rules
        .iter()
        .map(|r| {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            let line = if r.is_all() {
                "a".to_string()
            } else {
                r.v1_line()
            };
            (file, line)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The eBPF program
// ---------------------------------------------------------------------------

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg (low 4 bits) and src_reg (high 4 bits).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const BPF_LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const BPF_ALU32_AND_K: u8 = 0x54;
const BPF_ALU32_RSH_K: u8 = 0x74;
const BPF_ALU32_MOV_X: u8 = 0xbc;
const BPF_ALU64_MOV_K: u8 = 0xb7;
const BPF_JMP_JNE_K: u8 = 0x55;
const BPF_JMP_JEQ_K: u8 = 0x15;
const BPF_EXIT: u8 = 0x95;

const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;
const BPF_DEVCG_ACC_MKNOD: i32 = 1;
const BPF_DEVCG_ACC_READ: i32 = 2;
const BPF_DEVCG_ACC_WRITE: i32 = 4;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0xf) | (src << 4),
        off,
        imm,
    }
}

impl Insn {
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// Compile the rules into a cgroup device program, like runc's
/// devicefilter: the context (struct bpf_cgroup_dev_ctx) is loaded into
/// r2 = type, r3 = access, r4 = major, r5 = minor; the rules are checked
/// last to first (a later rule overrides an earlier one, as in v1), the
/// first match returns its verdict; no match returns the default, which is
/// "deny" if the list contains a deny-all (rules before it are dropped:
/// it resets everything), else "allow".
pub fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut rules = rules.to_vec();
    let mut default_allow = true;
    if let Some(pos) = rules.iter().rposition(|r| r.is_all()) {
        default_allow = rules[pos].allow;
        rules.drain(..=pos);
    }
    let mut p = vec![
        ins(BPF_LDX_MEM_W, 2, 1, 0, 0),
        ins(BPF_ALU32_AND_K, 2, 0, 0, 0xffff),
        ins(BPF_LDX_MEM_W, 3, 1, 0, 0),
        ins(BPF_ALU32_RSH_K, 3, 0, 0, 16),
        ins(BPF_LDX_MEM_W, 4, 1, 4, 0),
        ins(BPF_LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        match r.kind() {
            'b' => block.push(ins(BPF_JMP_JNE_K, 2, 0, 0, BPF_DEVCG_DEV_BLOCK)),
            'c' | 'u' => block.push(ins(BPF_JMP_JNE_K, 2, 0, 0, BPF_DEVCG_DEV_CHAR)),
            _ => {}
        }
        let mut acc = 0;
        for c in r.access().chars() {
            acc |= match c {
                'r' => BPF_DEVCG_ACC_READ,
                'w' => BPF_DEVCG_ACC_WRITE,
                _ => BPF_DEVCG_ACC_MKNOD,
            };
        }
        if acc != BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD {
            block.push(ins(BPF_ALU32_MOV_X, 1, 3, 0, 0));
            if r.allow {
                // An allow matches if the request is a subset of its access.
                block.push(ins(BPF_ALU32_AND_K, 1, 0, 0, !acc));
                block.push(ins(BPF_JMP_JNE_K, 1, 0, 0, 0));
            } else {
                // A deny matches if the request asks for any of its access.
                block.push(ins(BPF_ALU32_AND_K, 1, 0, 0, acc));
                block.push(ins(BPF_JMP_JEQ_K, 1, 0, 0, 0));
            }
        }
        if let Some(m) = DeviceRule::num(r.major) {
            block.push(ins(BPF_JMP_JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = DeviceRule::num(r.minor) {
            block.push(ins(BPF_JMP_JNE_K, 5, 0, 0, m as i32));
        }
        block.push(ins(BPF_ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        block.push(ins(BPF_EXIT, 0, 0, 0, 0));
        // Each conditional jump skips to the end of this block.
        let n = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code == BPF_JMP_JNE_K || insn.code == BPF_JMP_JEQ_K {
                insn.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(ins(BPF_ALU64_MOV_K, 0, 0, 0, i32::from(default_allow)));
    p.push(ins(BPF_EXIT, 0, 0, 0, 0));
    p
}

/// Evaluate a compiled program for one access, in Rust (for tests): the
/// same semantics as the kernel's interpreter for the instructions we emit.
pub fn eval(prog: &[Insn], typ: char, major: u32, minor: u32, access: &str) -> bool {
    let t = if typ == 'b' {
        BPF_DEVCG_DEV_BLOCK
    } else {
        BPF_DEVCG_DEV_CHAR
    } as u32;
    let mut a = 0u32;
    for c in access.chars() {
        a |= match c {
            'r' => BPF_DEVCG_ACC_READ,
            'w' => BPF_DEVCG_ACC_WRITE,
            _ => BPF_DEVCG_ACC_MKNOD,
        } as u32;
    }
    let ctx = [(a << 16) | t, major, minor];
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        let (d, s) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            BPF_LDX_MEM_W => reg[d] = u64::from(ctx[(i.off / 4) as usize]),
            BPF_ALU32_AND_K => reg[d] = u64::from(reg[d] as u32 & i.imm as u32),
            BPF_ALU32_RSH_K => reg[d] = u64::from((reg[d] as u32) >> i.imm),
            BPF_ALU32_MOV_X => reg[d] = u64::from(reg[s] as u32),
            BPF_ALU64_MOV_K => reg[d] = i.imm as i64 as u64,
            BPF_JMP_JNE_K => {
                if reg[d] != i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            BPF_JMP_JEQ_K => {
                if reg[d] == i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            BPF_EXIT => return reg[0] == 1,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_all() -> DeviceRule {
        DeviceRule {
            allow: false,
            access: Some("rwm".into()),
            ..Default::default()
        }
    }

    #[test]
    fn v1_lines_match_runc() {
        let rules = container_rules(&[deny_all()]);
        let w = v1_writes(&rules);
        assert_eq!(w[0], ("devices.deny", "a".to_string()));
        assert_eq!(w[1], ("devices.allow", "c *:* m".to_string()));
        assert_eq!(w[3], ("devices.allow", "c 1:3 rwm".to_string()));
        assert!(w.contains(&("devices.allow", "c 136:* rwm".to_string())));
        assert_eq!(w.len(), 12);
    }

    #[test]
    fn program_implements_the_default_list() {
        let rules = container_rules(&[deny_all(), DeviceRule::new(true, 'b', 8, 0, "rw")]);
        let p = compile(&rules);
        assert!(eval(&p, 'c', 1, 3, "rw"), "/dev/null");
        assert!(eval(&p, 'c', 1, 9, "r"), "/dev/urandom");
        assert!(eval(&p, 'c', 136, 4, "rw"), "/dev/pts/4");
        assert!(eval(&p, 'c', 7, 0, "m"), "mknod of anything");
        assert!(!eval(&p, 'c', 7, 0, "r"), "/dev/loop0 read");
        assert!(!eval(&p, 'b', 8, 1, "r"), "sda1");
        assert!(eval(&p, 'b', 8, 0, "rw"), "sda allowed by a rule");
        assert!(!eval(&p, 'c', 1, 1, "rw"), "/dev/mem");
        // A later deny overrides an earlier allow.
        let rules = vec![
            deny_all(),
            DeviceRule::new(true, 'c', 1, -1, "rwm"),
            DeviceRule::new(false, 'c', 1, 3, "w"),
        ];
        let p = compile(&rules);
        assert!(eval(&p, 'c', 1, 3, "r"));
        assert!(!eval(&p, 'c', 1, 3, "w"));
        assert!(!eval(&p, 'c', 1, 3, "rw"), "write part is denied");
        // No deny-all: default allow.
        let p = compile(&[DeviceRule::new(false, 'c', 1, 3, "rwm")]);
        assert!(!eval(&p, 'c', 1, 3, "r"));
        assert!(eval(&p, 'c', 1, 5, "r"));
    }

    #[test]
    fn validation_names_the_rule() {
        let mut r = deny_all();
        r.access = Some("rwx".into());
        let e = r.validate("linux.resources.devices[0]").unwrap_err();
        assert!(e.to_string().contains("devices[0].access"), "{e}");
        // runc: "device access at 0 field cannot be empty".
        for access in [None, Some(String::new())] {
            r.access = access;
            let e = r.validate("linux.resources.devices[0]").unwrap_err();
            assert!(e.to_string().contains("devices[0].access"), "{e}");
        }
    }
}
