//! `kill`: signal the init (through a pidfd, immune to pid reuse) or, with
//! `--all`, every process in the container's cgroup.

use super::Container;
use crate::error::{Error, Result};
use crate::state::Status;
use crate::sys;

impl Container {
    pub fn kill(&self, sig: libc::c_int, all: bool) -> Result<()> {
        let id = self.id();
        if self.status() == Status::Stopped && !all {
            return Err(Error::bad_state(id, "container not running"));
        }
        if all {
            // Frozen while signalled, so nothing forks past it; a paused
            // container stays paused (except for SIGKILL).
            self.state.cgroup.kill_all(sig);
            return Ok(());
        }
        signal_init(&self.state, sig)
            .map_err(|e| Error::sys(format!("container {id:?}: sending signal {sig}"), e))
    }
}

/// Signal the init if it is still the process we started.
pub(crate) fn signal_init(
    st: &crate::state::ContainerState,
    sig: libc::c_int,
) -> sys::SysResult<()> {
    let fd = sys::pidfd_open(st.pid)?;
    // Check the start time after opening the pidfd: if it matches now, the
    // pidfd refers to our init and cannot be recycled.
    let r = if st.init_alive() {
        sys::pidfd_send_signal(fd, sig)
    } else {
        Err(sys::Errno(libc::ESRCH))
    };
    sys::close(fd);
    r
}
