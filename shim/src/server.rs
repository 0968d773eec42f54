//! The serving shim: one thread, one poll loop over the task socket, its
//! connections, a signalfd (SIGCHLD: reap) and the terminals' fds. The
//! hull library forks the containers' processes from this thread, which it
//! requires (a fork in a multi-threaded process could leave a lock held).

use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use hull::cgroups::stats::Stats;
use hull::sys;

use crate::events::Publisher;
use crate::service::Service;
use crate::{wire, Flags};

/// containerd's task service names (1.6 speaks v2, 2.x v3; same messages).
const SERVICES: [&str; 2] = ["containerd.task.v2.Task", "containerd.task.v3.Task"];

/// Quiet time after a request before the shim gives memory back.
const IDLE_MS: i32 = 500;

/// A line to stderr: the bundle's `log` FIFO, which containerd copies
/// into its own log (write errors, such as a full FIFO, are ignored).
pub fn log(msg: &str) {
    use std::io::Write;
    let line = format!("containerd-shim-hull-v2[{}]: {msg}\n", std::process::id());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// HULL_SHIM_DEBUG is set: log each request and event with its time.
pub fn debug() -> bool {
    std::env::var_os("HULL_SHIM_DEBUG").is_some()
}

/// Point stderr at the bundle's `log` FIFO if containerd reads it
/// (non-blocking: a stalled reader must not stall the shim).
fn log_to_fifo() {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    {
        let _ = sys::dup2(f.as_raw_fd(), 2);
    }
}

struct Conn {
    token: u64,
    sock: UnixStream,
    buf: Vec<u8>,
}

pub fn serve(flags: &Flags) -> Result<(), String> {
    // CVE-2019-5736: the containers' processes are clones of this one
    // until they exec; run from a sealed image of the binary.
    hull::exeseal::seal_self().map_err(|e| e.to_string())?;
    sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1)
        .map_err(|e| format!("becoming a child subreaper: {e}"))?;
    let sigfd = sys::signalfd_for(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT])
        .map_err(|e| format!("signalfd: {e}"))?;
    // The sealed image's mount fd, closed by a child that is reaped like
    // any other (its exit waits for the detached mount to dissolve).
    hull::exeseal::release_kept_mount();
    let path = flags
        .socket
        .strip_prefix("unix://")
        .unwrap_or(&flags.socket)
        .to_string();
    let listener = match flags.listen_fd {
        // `start` bound the socket and returned at once: containerd's
        // connection waits in the backlog while this process starts.
        Some(fd) => listener_from_fd(fd)?,
        None => match listen(&path)? {
            Some(l) => l,
            // Another shim of the group serves it already.
            None => return Ok(()),
        },
    };
    log_to_fifo();
    // `start` (without -listen-fd) waits for our stdout to close: we
    // listen now.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = sys::dup2(null.as_raw_fd(), 1);
    }
    let ttrpc = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let mut service = Service::new(
        flags.namespace.clone(),
        Publisher::new(ttrpc, flags.namespace.clone()),
    );
    let r = run(&listener, sigfd.as_raw_fd(), &mut service);
    service.events.flush();
    let _ = std::fs::remove_file(&path);
    r
}

/// The listening socket `start` passed (not close-on-exec across the
/// spawn and the sealed re-exec; it is from here on).
fn listener_from_fd(fd: i32) -> Result<UnixListener, String> {
    if !sys::fd_is_open(fd) {
        return Err(format!("-listen-fd {fd}: not an open fd"));
    }
    let _ = sys::set_cloexec(fd, true);
    let l = crate::sys::adopt_listener(fd);
    l.set_nonblocking(true)
        .map_err(|e| format!("-listen-fd {fd}: {e}"))?;
    Ok(l)
}

/// Bind the task socket (a stale one is replaced); None if a live shim
/// already listens there.
pub fn listen(path: &str) -> Result<Option<UnixListener>, String> {
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let l = match UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Ok(None);
            }
            let _ = std::fs::remove_file(path);
            UnixListener::bind(path).map_err(|e| format!("{path}: {e}"))?
        }
        Err(e) => return Err(format!("{path}: {e}")),
    };
    l.set_nonblocking(true)
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(Some(l))
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn run(listener: &UnixListener, sigfd: RawFd, service: &mut Service) -> Result<(), String> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut next_token = 0u64;
    // A request was served since the loop last went idle: once nothing
    // happened for IDLE_MS, the heap is trimmed and the code's pages are
    // unmapped (the shim idles for the container's whole life).
    let mut busy = false;
    while !service.done {
        // Events go out after the answers that caused them: the caller
        // (ctr waiting on Start, Wait, Delete) is not held up by them.
        service.events.flush();
        let ttys = service.poll_fds();
        let mut fds = vec![pollfd(listener.as_raw_fd()), pollfd(sigfd)];
        fds.extend(conns.iter().map(|c| pollfd(c.sock.as_raw_fd())));
        fds.extend(ttys.iter().map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        }));
        // OOM counters are read on every wake-up, and each second while
        // containers run.
        let timeout = match (busy, service.has_live()) {
            (true, _) => IDLE_MS,
            (false, true) => 1000,
            (false, false) => -1,
        };
        match sys::poll(&mut fds, timeout) {
            Ok(0) if busy => {
                crate::sys::trim_heap();
                crate::sys::drop_text_pages();
                busy = false;
            }
            Ok(_) => {}
            Err(sys::Errno(libc::EINTR)) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        service.check_ooms();
        if fds[1].revents != 0 {
            let mut stop = false;
            while let Some(sig) = sys::read_signalfd(sigfd) {
                stop |= sig != libc::SIGCHLD;
            }
            for (conn, stream, res) in service.reap() {
                if let Some(c) = conns.iter_mut().find(|c| c.token == conn) {
                    let _ = wire::send_response(&mut c.sock, stream, &res);
                }
            }
            if stop && !service.has_live() {
                break;
            }
        }
        for (i, &(fd, _)) in ttys.iter().enumerate() {
            if fds[2 + conns.len() + i].revents != 0 {
                service.pump(fd);
            }
        }
        let mut gone = Vec::new();
        for (i, c) in conns.iter_mut().enumerate() {
            if fds[2 + i].revents != 0 {
                busy = true;
                if !serve_conn(c, service) {
                    gone.push(c.token);
                }
            }
        }
        for token in gone {
            service.drop_conn(token);
            conns.retain(|c| c.token != token);
        }
        if fds[0].revents != 0 {
            while let Ok((sock, _)) = listener.accept() {
                if sock.set_nonblocking(true).is_ok() {
                    next_token += 1;
                    conns.push(Conn {
                        token: next_token,
                        sock,
                        buf: Vec::new(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Read what the connection has and answer each complete request. false:
/// the connection is closed (or broken).
fn serve_conn(c: &mut Conn, service: &mut Service) -> bool {
    let mut chunk = [0u8; 16384];
    loop {
        match c.sock.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let frames = match wire::split_frames(&mut c.buf) {
        Ok(f) => f,
        Err(e) => {
            log(&e);
            return false;
        }
    };
    for f in frames {
        let Some(req) = wire::request(&f) else {
            continue;
        };
        let t0 = std::time::Instant::now();
        let res = if SERVICES.contains(&req.service.as_str()) {
            match service.handle(&req.method, &req.payload, c.token, f.stream) {
                Some(r) => r,
                None => continue,
            }
        } else {
            wire::error(
                containerd_shim_protos::ttrpc::proto::Code::UNIMPLEMENTED,
                format!("service {} is not served by this shim", req.service),
            )
        };
        if res.status.code.value() != 0 {
            log(&format!("{}: {}", req.method, res.status.message));
        } else if debug() {
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            log(&format!("{}: ok in {ms:.2} ms", req.method));
        }
        if wire::send_response(&mut c.sock, f.stream, &res).is_err() {
            return false;
        }
    }
    true
}

/// hull's cgroup v1 stats as containerd's v1 metrics.
pub fn metrics_v1(s: &Stats, oom_kills: Option<u64>) -> v1::Metrics {
    let entry = |e: &hull::cgroups::stats::MemoryEntry| v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    };
    let raw = |k: &str| s.memory.raw.get(k).copied().unwrap_or(0);
    let blk = |l: &[hull::cgroups::stats::BlkioEntry]| {
        l.iter()
            .map(|b| v1::BlkIOEntry {
                major: b.major,
                minor: b.minor,
                op: b.op.clone(),
                value: b.value,
                ..Default::default()
            })
            .collect()
    };
    v1::Metrics {
        pids: Some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(v1::CPUStat {
            usage: Some(v1::CPUUsage {
                total: s.cpu.usage.total,
                kernel: s.cpu.usage.kernel,
                user: s.cpu.usage.user,
                per_cpu: s.cpu.usage.percpu.clone(),
                ..Default::default()
            })
            .into(),
            throttling: Some(v1::Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
        .into(),
        memory: Some(v1::MemoryStat {
            cache: s.memory.cache,
            rss: raw("rss"),
            rss_huge: raw("rss_huge"),
            mapped_file: raw("mapped_file"),
            dirty: raw("dirty"),
            writeback: raw("writeback"),
            pg_fault: raw("pgfault"),
            pg_maj_fault: raw("pgmajfault"),
            inactive_anon: raw("inactive_anon"),
            active_anon: raw("active_anon"),
            inactive_file: raw("inactive_file"),
            active_file: raw("active_file"),
            unevictable: raw("unevictable"),
            hierarchical_memory_limit: raw("hierarchical_memory_limit"),
            hierarchical_swap_limit: raw("hierarchical_memsw_limit"),
            total_cache: raw("total_cache"),
            total_rss: raw("total_rss"),
            usage: Some(entry(&s.memory.usage)).into(),
            swap: Some(entry(&s.memory.swap)).into(),
            kernel: Some(entry(&s.memory.kernel)).into(),
            kernel_tcp: Some(entry(&s.memory.kernel_tcp)).into(),
            ..Default::default()
        })
        .into(),
        blkio: Some(v1::BlkIOStat {
            io_service_bytes_recursive: blk(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blk(&s.blkio.io_serviced_recursive),
            ..Default::default()
        })
        .into(),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        memory_oom_control: oom_kills
            .map(|n| v1::MemoryOomControl {
                oom_kill: n,
                ..Default::default()
            })
            .into(),
        ..Default::default()
    }
}

/// hull's cgroup v2 stats as containerd's v2 metrics.
pub fn metrics_v2(s: &Stats) -> v2::Metrics {
    let raw = |k: &str| s.memory.raw.get(k).copied().unwrap_or(0);
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(v2::CPUStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
            ..Default::default()
        })
        .into(),
        memory: Some(v2::MemoryStat {
            anon: raw("anon"),
            file: raw("file"),
            kernel_stack: raw("kernel_stack"),
            slab: raw("slab"),
            sock: raw("sock"),
            shmem: raw("shmem"),
            file_mapped: raw("file_mapped"),
            usage: s.memory.usage.usage,
            usage_limit: s.memory.usage.limit,
            swap_usage: s.memory.swap.usage,
            swap_limit: s.memory.swap.limit,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}
