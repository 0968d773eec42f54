//! Container operations, one file each: create, start, kill, delete, run.
//! The CLI, the shim and the tooling all call these.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod kill;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod update;

pub use create::{create, CreateOptions, Created};

use crate::error::Result;
use crate::state::{ContainerState, OciState, StateStore, Status};
use crate::sys;

/// A container known to the state store.
#[derive(Debug)]
pub struct Container {
    pub store: StateStore,
    pub state: ContainerState,
}

impl Container {
    pub fn load(store: &StateStore, id: &str) -> Result<Container> {
        Ok(Container {
            store: store.clone(),
            state: store.load(id)?,
        })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn status(&self) -> Status {
        self.state.status()
    }

    /// The runtime-spec state, as `hull state` prints it.
    pub fn oci_state(&self) -> OciState {
        self.state.oci(self.status())
    }
}

/// Wait up to `timeout_ms` for `pid` to exit (zombies count as exited).
/// Reaps it if it is our child.
pub fn wait_gone(pid: libc::pid_t, timeout_ms: u64) -> bool {
    let mut waited = 0;
    loop {
        let _ = sys::waitpid(pid, libc::WNOHANG);
        match crate::state::proc_stat(pid) {
            None => return true,
            Some((s, _)) if s == 'Z' || s == 'X' => return true,
            _ => {}
        }
        if waited >= timeout_ms {
            return false;
        }
        sys::nanosleep_ms(2);
        waited += 2;
    }
}
