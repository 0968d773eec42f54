//! `pause` and `resume`: freeze and thaw every process of the container
//! (v1 freezer.state, v2 cgroup.freeze); `state` then reports `paused`.

use super::Container;
use crate::error::{Error, Result};
use crate::state::Status;

impl Container {
    /// Freeze a running (or created) container.
    pub fn pause(&self) -> Result<()> {
        let id = self.id();
        let _lock = self.store.lock(id)?;
        match self.status() {
            Status::Running | Status::Created => self.state.cgroup.freeze(true),
            s => Err(Error::bad_state(
                id,
                format!("cannot pause a {s} container (not running)"),
            )),
        }
    }

    /// Thaw a paused container.
    pub fn resume(&self) -> Result<()> {
        let id = self.id();
        let _lock = self.store.lock(id)?;
        match self.status() {
            Status::Paused => self.state.cgroup.freeze(false),
            s => Err(Error::bad_state(
                id,
                format!("cannot resume a {s} container (not paused)"),
            )),
        }
    }
}
