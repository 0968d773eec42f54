//! The per-container monitor of detached containers (like conmon): forked
//! by `run -d`/`start`, it outlives the command, holds the container as its
//! child (subreaper), and records its exit code. The container's stdout and
//! stderr are the log file itself (inherited), so the monitor copies nothing.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use super::record::{ContainerRecord, Paths};
use crate::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::sys;

/// Fork the monitor (double fork: it is re-parented to init) and wait
/// until it reports the container started, or why it did not.
pub fn spawn(store: &Store, rec: &ContainerRecord, opts: hull::CreateOptions) -> Result<()> {
    let paths = Paths::new(store, &rec.name);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log())
        .at(paths.log())?;
    let (r, w) = hull::sys::pipe().map_err(|e| Error::io("pipe", e.io()))?;
    let (r, w) = (sys::own_fd(r), sys::own_fd(w));
    let pid = sys::fork_single_threaded().at("fork")?;
    if pid == 0 {
        drop(r);
        let code = match sys::fork_single_threaded() {
            Ok(0) => monitor(store, rec, opts, w, log),
            Ok(_) => 0,
            Err(e) => {
                report(&w, &format!("forking the monitor: {e}"));
                1
            }
        };
        sys::exit_now(code);
    }
    drop(w);
    let _ = sys::waitpid(pid);
    let mut msg = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut msg);
    match msg.strip_prefix("ok") {
        Some(_) => Ok(()),
        None if msg.is_empty() => Err(Error::Image(format!(
            "container {}: its monitor exited without a word",
            rec.name
        ))),
        None => Err(Error::Image(format!("container {}: {msg}", rec.name))),
    }
}

fn report(w: &OwnedFd, msg: &str) {
    let _ = hull::sys::write_all(w.as_raw_fd(), msg.as_bytes());
}

/// The monitor itself: returns its exit code.
fn monitor(
    store: &Store,
    rec: &ContainerRecord,
    opts: hull::CreateOptions,
    w: OwnedFd,
    log: std::fs::File,
) -> i32 {
    let _ = sys::setsid();
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = sys::dup2(null.as_raw_fd(), 0);
    }
    let _ = sys::dup2(log.as_raw_fd(), 1);
    let _ = sys::dup2(log.as_raw_fd(), 2);
    drop(log);
    let hs = super::hull_store(store);
    let started = (|| -> hull::Result<(hull::Container, OwnedFd)> {
        let sfd = hull::container::run::foreground()?;
        let opts = hull::CreateOptions {
            autostart: true,
            ..opts
        };
        let created = hull::container::create::create(&hs, &opts)?;
        let mut c = created.container;
        let r = if created.started {
            c.mark_started()
        } else {
            c.start()
        };
        if let Err(e) = r {
            let _ = c.delete(true);
            return Err(e);
        }
        Ok((c, sfd))
    })();
    let (c, sfd) = match started {
        Ok(x) => x,
        Err(e) => {
            report(&w, &e.to_string());
            return 1;
        }
    };
    report(&w, "ok");
    drop(w);
    let forward = |sig| {
        let _ = c.kill(sig, false);
    };
    let code = hull::container::run::wait_for(c.state.pid, &forward, &sfd, None);
    // Names out of DNS before the exit code is there: `stop` returns once
    // it is.
    if !rec.auto_remove {
        let _ = crate::network::attach::stopped(store, &rec.name);
    }
    let _ = crate::store::write_replace(
        &Paths::new(store, &rec.name).exit(),
        code.to_string().as_bytes(),
        false,
    );
    if rec.auto_remove {
        let _ = super::remove(store, rec, true);
    }
    let _ = std::io::stdout().flush();
    0
}
