//! The bpf(2) calls for the v2 device filter: load a
//! BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to a cgroup2
//! directory. Like `sys`, every `unsafe` is a small function with a
//! `// SAFETY:` comment.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::devices::Insn;
use crate::sys::{Errno, SysResult};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// union bpf_attr, as bytes (the kernel accepts a larger, zero-padded one).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32_at(&mut self, off: usize, v: u32) {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn u64_at(&mut self, off: usize, v: u64) {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> SysResult<libc::c_long> {
    // SAFETY: attr is a valid, writable buffer of the size passed; every
    // pointer stored in it (by the callers) outlives this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            attr.0.len() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

/// Load a cgroup device program. On a verifier error, the log is returned
/// in the error string.
pub fn load_device_program(prog: &[Insn]) -> Result<OwnedFd, (Errno, String)> {
    let bytes: Vec<u8> = prog.iter().flat_map(|i| i.to_bytes()).collect();
    let license = b"Apache\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = Attr::new();
    attr.u32_at(0, BPF_PROG_TYPE_CGROUP_DEVICE);
    attr.u32_at(4, prog.len() as u32);
    attr.u64_at(8, bytes.as_ptr() as u64);
    attr.u64_at(16, license.as_ptr() as u64);
    attr.u32_at(24, 1); // log_level
    attr.u32_at(28, log.len() as u32);
    attr.u64_at(32, log.as_mut_ptr() as u64);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            Err((e, String::from_utf8_lossy(&log[..end]).trim().to_string()))
        }
    }
}

/// Attach a loaded device program to the cgroup2 directory `cgroup`
/// (an O_DIRECTORY fd), allowing other programs alongside (multi).
pub fn attach_device_program(cgroup: &OwnedFd, prog: &OwnedFd) -> SysResult<()> {
    let mut attr = Attr::new();
    attr.u32_at(0, cgroup.as_raw_fd() as u32);
    attr.u32_at(4, prog.as_raw_fd() as u32);
    attr.u32_at(8, BPF_CGROUP_DEVICE);
    attr.u32_at(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}
