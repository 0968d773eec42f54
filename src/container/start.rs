//! `start`: release the init blocked on the exec fifo, then poststart hooks.

use std::os::fd::AsRawFd;

use super::Container;
use crate::error::{Error, Result};
use crate::hooks;
use crate::namespaces::cstring;
use crate::state::{self, Status};
use crate::sys;

impl Container {
    pub fn start(&mut self) -> Result<()> {
        let id = self.state.id.clone();
        let _lock = self.store.lock(&id)?;
        match self.status() {
            Status::Created => {}
            Status::Stopped => {
                return Err(Error::bad_state(
                    &id,
                    "cannot start a container that has stopped",
                ))
            }
            Status::Creating => {
                return Err(Error::bad_state(
                    &id,
                    "cannot start a container that is still being created",
                ))
            }
            Status::Running | Status::Paused => {
                return Err(Error::bad_state(
                    &id,
                    "cannot start an already running container",
                ))
            }
        }
        let fifo_path = self.store.dir(&id).join(state::EXEC_FIFO);
        let c = cstring(&fifo_path.to_string_lossy())?;
        let fifo = sys::open_owned(&c, libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map_err(|e| Error::sys(format!("opening {}", fifo_path.display()), e))?;
        // The init writes one byte when released, and its end of the fifo
        // closes when it execs the container process (or dies).
        let mut released = false;
        loop {
            let ready = sys::poll_one(fifo.as_raw_fd(), libc::POLLIN, 100)
                .map_err(|e| Error::sys("waiting on the exec fifo", e))?;
            if ready {
                let mut b = [0u8; 1];
                match sys::read(fifo.as_raw_fd(), &mut b) {
                    Ok(1) => released = true,
                    Ok(_) if released => break,
                    Ok(_) | Err(sys::Errno(libc::EAGAIN)) => {}
                    Err(e) => return Err(Error::sys("reading the exec fifo", e)),
                }
            }
            // Once released, EOF is all that is left to see: a process that
            // exec'd and exited at once, or died before exec, also ends in
            // EOF. Before that, a dead init means it never got to start.
            if !ready && !released && !self.state.init_alive() {
                let _ = std::fs::remove_file(&fifo_path);
                return Err(Error::bad_state(
                    &id,
                    "the container process died before it could start",
                ));
            }
        }
        let _ = std::fs::remove_file(&fifo_path);
        self.mark_started()
    }

    /// The container's process has exec'd: record it, then run the
    /// poststart hooks.
    pub fn mark_started(&mut self) -> Result<()> {
        self.state.started = true;
        self.store.save(&self.state)?;
        let json = super::create::state_json(&self.state, Status::Running);
        let id = &self.state.id;
        hooks::run_all_warn(id, hooks::POSTSTART, &self.state.hooks.poststart, &json);
        Ok(())
    }
}
