//! `delete`: stop what is left, remove the cgroup, run poststop hooks and
//! remove the state directory.

use super::Container;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{StateStore, Status};

impl Container {
    pub fn delete(self, force: bool) -> Result<()> {
        let id = self.state.id.clone();
        let _lock = self.store.lock(&id)?;
        match self.status() {
            Status::Stopped | Status::Creating => {}
            Status::Created => self.kill_and_wait(),
            s @ (Status::Running | Status::Paused) => {
                if !force {
                    return Err(Error::bad_state(
                        &id,
                        format!("cannot delete a container that is not stopped: {s} (use --force)"),
                    ));
                }
                self.kill_and_wait();
            }
        }
        self.destroy()
    }

    fn kill_and_wait(&self) {
        // SIGKILL everything while frozen (paused or not), then thaw so
        // the processes can die.
        let _ = super::kill::signal_init(&self.state, libc::SIGKILL);
        self.state.cgroup.kill_all(libc::SIGKILL);
        super::wait_gone(self.state.pid, 5000);
    }

    /// Remove everything the container left behind.
    fn destroy(self) -> Result<()> {
        let id = self.state.id.clone();
        // Without its own PID namespace, the init's death does not take the
        // other processes with it.
        if !self.state.cgroup.procs().is_empty() {
            self.state.cgroup.kill_all(libc::SIGKILL);
        }
        let cg = self.state.cgroup.remove();
        let json = super::create::state_json(&self.state, Status::Stopped);
        hooks::run_all_warn(&id, hooks::POSTSTOP, &self.state.hooks.poststop, &json);
        let dir = self.store.dir(&id);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        cg
    }
}

/// `delete` by id: with `force`, a missing container (or a directory left
/// by an aborted create) is not an error.
pub fn delete_by_id(store: &StateStore, id: &str, force: bool) -> Result<()> {
    crate::state::validate_id(id)?;
    match Container::load(store, id) {
        Ok(c) => c.delete(force),
        Err(Error::NotFound(_)) => {
            let dir = store.dir(id);
            let existed = dir.exists();
            if existed {
                // Wait for a create that may still hold the directory.
                let _lock = store.lock(id);
                if !dir.join(crate::state::STATE_FILE).exists() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            if force || existed {
                Ok(())
            } else {
                Err(Error::NotFound(id.to_string()))
            }
        }
        Err(e) => Err(e),
    }
}
