//! Typed messages between `hull create` (the parent) and the two forked
//! stages, over a SOCK_SEQPACKET socketpair (message boundaries are kept, so
//! a message is never split or merged). Encoding is fixed-size and
//! allocation-free, so the children can use it before exec.

use std::os::fd::{OwnedFd, RawFd};

use crate::sys::{self, Errno, SysResult};

/// What a message means. Children send the `*Ready`, `InitPid`, `PtyMaster`
/// and `Fail` kinds; the parent sends `Placed`, `MapsDone`, `Go`, `Continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// parent → the init (or stage 1): the cgroups are made and limited; it
    /// carries the v1 `tasks` fds to join.
    Placed = 1,
    /// stage 1 → parent: a new user namespace exists; write the id maps.
    UsernsReady = 2,
    /// parent → stage 1: uid_map/gid_map are written.
    MapsDone = 3,
    /// stage 1 → parent: the container init's host pid (in `a`).
    InitPid = 4,
    /// child → parent: a step failed (`a` = step, `b` = errno, `c` = index).
    Fail = 5,
    /// parent → init: proceed; the payload is the state JSON for hooks.
    Go = 6,
    /// init → parent: mounts are done, pivot_root not yet: run the
    /// prestart/createRuntime/createContainer hooks.
    MountsReady = 7,
    /// parent → init: hooks are done, carry on.
    Continue = 8,
    /// init → parent: the pty master rides along with SCM_RIGHTS.
    PtyMaster = 9,
    /// init → parent: set up, about to wait for `start` on the exec fifo.
    Ready = 10,
    /// init → parent: the seccomp notify listener fd rides along
    /// (SCM_RIGHTS), for `linux.seccomp.listenerPath`.
    SeccompFd = 20,
}

impl Kind {
    fn from_u32(v: u32) -> Option<Kind> {
        use Kind::*;
        Some(match v {
            1 => Placed,
            2 => UsernsReady,
            3 => MapsDone,
            4 => InitPid,
            5 => Fail,
            6 => Go,
            7 => MountsReady,
            8 => Continue,
            9 => PtyMaster,
            10 => Ready,
            20 => SeccompFd,
            _ => return None,
        })
    }
}

pub const HEADER: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    pub kind: Kind,
    pub a: i32,
    pub b: i32,
    pub c: u32,
}

impl Msg {
    pub fn new(kind: Kind) -> Msg {
        Msg {
            kind,
            a: 0,
            b: 0,
            c: 0,
        }
    }

    pub fn encode(&self) -> [u8; HEADER] {
        let mut out = [0u8; HEADER];
        out[0..4].copy_from_slice(&(self.kind as u32).to_le_bytes());
        out[4..8].copy_from_slice(&self.a.to_le_bytes());
        out[8..12].copy_from_slice(&self.b.to_le_bytes());
        out[12..16].copy_from_slice(&self.c.to_le_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Option<Msg> {
        if buf.len() < HEADER {
            return None;
        }
        let word = |i: usize| [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]];
        Some(Msg {
            kind: Kind::from_u32(u32::from_le_bytes(word(0)))?,
            a: i32::from_le_bytes(word(4)),
            b: i32::from_le_bytes(word(8)),
            c: u32::from_le_bytes(word(12)),
        })
    }
}

/// Send a bare message.
pub fn send(sock: RawFd, msg: Msg) -> SysResult<()> {
    sys::send_with_fd(sock, &msg.encode(), None)
}

/// Send a message with an fd attached.
pub fn send_fd(sock: RawFd, msg: Msg, fd: RawFd) -> SysResult<()> {
    sys::send_with_fd(sock, &msg.encode(), Some(fd))
}

/// Receive one message into `buf` (which must hold at least HEADER bytes);
/// returns the header, the payload length and any fd that came with it.
/// EOF (the peer is gone) is reported as EPIPE.
pub fn recv(sock: RawFd, buf: &mut [u8]) -> SysResult<(Msg, usize, Option<OwnedFd>)> {
    let (n, fd) = sys::recv_with_fd(sock, buf)?;
    if n == 0 {
        return Err(Errno(libc::EPIPE));
    }
    let msg = Msg::decode(&buf[..n]).ok_or(Errno(libc::EPROTO))?;
    Ok((msg, n - HEADER, fd))
}

/// Receive one message and insist on its kind.
/// Send `msg` with several fds attached.
pub fn send_fds(sock: RawFd, msg: Msg, fds: &[RawFd]) -> SysResult<()> {
    sys::send_with_fds(sock, &msg.encode(), fds)
}

/// Receive a message of `kind` and the fds it carries (into `fds`);
/// returns their number.
pub fn expect_fds(sock: RawFd, kind: Kind, fds: &mut [RawFd; sys::MAX_FDS]) -> SysResult<usize> {
    let mut buf = [0u8; HEADER];
    let (n, count) = sys::recv_with_fds(sock, &mut buf, fds)?;
    let msg = match n {
        0 => Err(Errno(libc::EPIPE)),
        _ => Msg::decode(&buf[..n]).ok_or(Errno(libc::EPROTO)),
    };
    if msg.map(|m| m.kind) != Ok(kind) {
        for &fd in fds.iter().take(count) {
            sys::close(fd);
        }
        return Err(msg.err().unwrap_or(Errno(libc::EPROTO)));
    }
    Ok(count)
}

pub fn expect(sock: RawFd, kind: Kind) -> SysResult<Msg> {
    let mut buf = [0u8; HEADER];
    // An fd that came along is closed on drop.
    let (msg, _, _fd) = recv(sock, &mut buf)?;
    if msg.kind != kind {
        return Err(Errno(libc::EPROTO));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn round_trips_over_a_socketpair() {
        let (a, b) = sys::seqpacket_pair().unwrap();
        let (a, b) = (a.into_raw_fd(), b.into_raw_fd());
        let msg = Msg {
            kind: Kind::Fail,
            a: 7,
            b: libc::ENOENT,
            c: 3,
        };
        send(a, msg).unwrap();
        let mut buf = [0u8; 64];
        let (got, payload, fd) = recv(b, &mut buf).unwrap();
        assert_eq!(got, msg);
        assert_eq!(payload, 0);
        assert!(fd.is_none());
        sys::close(a);
        assert_eq!(recv(b, &mut buf).unwrap_err(), Errno(libc::EPIPE));
        sys::close(b);
    }

    #[test]
    fn carries_several_fds_and_refuses_the_wrong_kind() {
        let (a, b) = sys::seqpacket_pair().unwrap();
        let (a, b) = (a.into_raw_fd(), b.into_raw_fd());
        // Three pipe ends, sent at once; each arrives as a new fd that
        // still reaches the same pipe.
        let mut p = [0; 2];
        // SAFETY: p has room for two fds.
        assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
        let sent = [p[1], p[1], p[1]];
        send_fds(a, Msg::new(Kind::Placed), &sent).unwrap();
        let mut fds = [-1; sys::MAX_FDS];
        let n = expect_fds(b, Kind::Placed, &mut fds).unwrap();
        assert_eq!(n, 3);
        for &fd in &fds[..n] {
            assert!(!sent.contains(&fd));
            sys::write_all(fd, b"x").unwrap();
            sys::close(fd);
        }
        let mut got = [0u8; 8];
        assert_eq!(sys::read(p[0], &mut got).unwrap(), 3);
        // No fds, and a message of another kind: refused.
        send(a, Msg::new(Kind::Go)).unwrap();
        assert_eq!(
            expect_fds(b, Kind::Placed, &mut fds).unwrap_err(),
            Errno(libc::EPROTO)
        );
        for fd in [a, b, p[0], p[1]] {
            sys::close(fd);
        }
    }
}
