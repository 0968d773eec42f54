//! Console socket (pty master over SCM_RIGHTS), --preserve-fds, stdio.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Bundle, Runtime};

/// Receives one fd (SCM_RIGHTS) and the message bytes sent with it.
fn recv_fd(sock: RawFd) -> (OwnedFd, Vec<u8>) {
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut cbuf = vec![0u64; space.div_ceil(8) + 1];
    // SAFETY: an all-zero msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg points at live buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert!(
        n >= 0,
        "recvmsg on console socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: msg was filled in by recvmsg; we only follow its cmsg chain.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null(), "no control message: no fd was sent");
        assert_eq!((*cmsg).cmsg_level, libc::SOL_SOCKET);
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS, "not SCM_RIGHTS");
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
        assert!(fd >= 0);
        (OwnedFd::from_raw_fd(fd), buf[..n as usize].to_vec())
    }
}

/// Reads from `fd` until `want` was seen, EOF/EIO, or `timeout`.
fn read_until(fd: &OwnedFd, want: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains(want) {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r <= 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        // SAFETY: reading into a local buffer of the stated size.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break; // EOF, or EIO once the slave side is closed
        }
        got.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn console_socket_receives_pty_master() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("console");
    let mut b = Bundle::new("console");
    let sock_path = b.host_dir("sock").join("console.sock");
    let listener = UnixListener::bind(&sock_path).expect("bind console socket");
    listener.set_nonblocking(true).unwrap();
    b.terminal(true).sh(
        "echo from-tty; tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; \
         [ -c /dev/console ] && echo console-ok; sleep 1",
    );
    let id = common::unique_id("console");
    let sock = sock_path.display().to_string();
    let mut create = rt.spawn_create(&id, &mut b, &["--console-socket", &sock], |_| {});

    let deadline = Instant::now() + common::CMD_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if create.has_exited() {
                    panic!(
                        "create exited without connecting to the console socket:\n{}",
                        create.wait()
                    );
                }
                assert!(Instant::now() < deadline, "no console socket connection");
                sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    // recvmsg honours SO_RCVTIMEO: fail rather than hang if no fd comes.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (master, _name) = recv_fd(stream.as_raw_fd());
    drop(stream);
    create.wait().ok();
    assert_eq!(rt.status(&id).as_deref(), Some("created"));

    // The fd really is a pty master.
    let mut pty_num: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut pty_num) };
    assert_eq!(r, 0, "received fd is not a pty master");

    rt.cmd(&["start", &id]).ok();
    let seen = read_until(&master, "console-ok", Duration::from_secs(20));
    assert!(seen.contains("from-tty"), "read from pty master: {seen:?}");
    assert!(seen.contains("/dev/pts/"), "`tty` output missing: {seen:?}");
    assert!(
        seen.contains("stdio-is-tty"),
        "stdio is not the tty: {seen:?}"
    );
    assert!(seen.contains("console-ok"), "no /dev/console: {seen:?}");
    rt.wait_status(&id, "stopped");
    rt.cmd(&["delete", &id]).ok();
    rt.assert_nothing_left(&id);
}

#[test]
fn terminal_without_console_socket_is_an_error_for_create() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("noconsole");
    let mut b = Bundle::new("noconsole");
    b.terminal(true).args(&["sleep", "100"]);
    let id = common::unique_id("noconsole");
    rt.create(&id, &mut b, &[])
        .fails()
        .hull_error_mentions(&["console"]);
    rt.assert_nothing_left(&id);
}

#[test]
fn preserve_fds() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("preserve");
    let mut b = Bundle::new("preserve");
    let dir = b.host_dir("fds");
    fs::write(dir.join("fd3-keep.txt"), "preserved content\n").unwrap();
    fs::write(dir.join("fd4-drop.txt"), "must not be visible\n").unwrap();
    let f3 = fs::File::open(dir.join("fd3-keep.txt")).unwrap();
    let f4 = fs::File::open(dir.join("fd4-drop.txt")).unwrap();
    b.sh(
        "cat <&3; echo --; ls -l /proc/$$/fd; echo --; cat /proc/self/fd/4 2>&1 || echo fd4-closed",
    );

    let id = common::unique_id("preserve");
    let (a, c) = (f3.as_raw_fd(), f4.as_raw_fd());
    let out = rt
        .spawn_run(&id, &mut b, &["--preserve-fds", "1"], |cmd| {
            common::with_fds(cmd, vec![(a, 3), (c, 4)])
        })
        .wait();
    out.ok();
    let parts: Vec<&str> = out.stdout.split("--\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert_eq!(parts[0], "preserved content\n", "fd 3 not passed:\n{out}");
    assert!(parts[1].contains("fd3-keep.txt"), "{out}");
    assert!(
        !parts[1].contains("fd4-drop"),
        "fd 4 leaked into the container:\n{out}"
    );
    assert!(!out.stdout.contains("must not be visible"), "{out}");
    rt.assert_nothing_left(&id);

    // Without --preserve-fds neither leaks.
    b.sh("ls -l /proc/$$/fd; cat <&3 2>/dev/null || echo fd3-closed");
    let id = common::unique_id("preserve");
    let out = rt
        .spawn_run(&id, &mut b, &[], |cmd| {
            common::with_fds(cmd, vec![(a, 3), (c, 4)])
        })
        .wait();
    out.ok();
    assert!(!out.stdout.contains("fd3-keep"), "{out}");
    assert!(!out.stdout.contains("fd4-drop"), "{out}");
    assert!(out.stdout.contains("fd3-closed"), "{out}");
    rt.assert_nothing_left(&id);
    drop((f3, f4));
}

#[test]
fn stdio_passes_through() {
    if common::skip() {
        return;
    }
    let rt = Runtime::new("stdio");
    let mut b = Bundle::new("stdio");
    let dir = b.host_dir("in");
    fs::write(dir.join("input"), "line one\nline two\n").unwrap();
    let input = fs::File::open(dir.join("input")).unwrap();
    b.sh("tr a-z A-Z; echo to-stderr >&2");
    let id = common::unique_id("stdio");
    let out = rt
        .spawn_run(&id, &mut b, &[], |cmd| {
            cmd.stdin(input);
        })
        .wait();
    out.ok();
    assert_eq!(out.stdout, "LINE ONE\nLINE TWO\n", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    rt.assert_nothing_left(&id);
}
