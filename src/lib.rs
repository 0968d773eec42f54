//! hull: a runc-compatible OCI container runtime, as a library.
//!
//! The `hull` binary, the containerd shim and the image/network tooling are
//! thin layers over this crate. Where each step of a container start lives:
//!
//! - [`config`]: config.json loading and validation, `hull spec` defaults
//! - [`state`]: the state store (`--root`), ids, statuses, locking
//! - [`container`]: the operations — create, start, kill, delete, run
//! - [`init`]: the forked stages (the child side of create), in order
//! - [`namespaces`] → [`cgroups`] → [`rootfs`] (mounts, devices, pivot_root,
//!   masked paths) → [`process`] (user, caps, rlimits, exec)
//! - [`hooks`], [`terminal`], [`signal`], [`logging`]
//! - [`sys`]: the thin syscall layer holding the `unsafe` code

pub mod cgroups;
pub mod check;
pub mod cli;
pub mod config;
pub mod container;
pub mod error;
pub mod exeseal;
pub mod features;
pub mod hooks;
pub mod init;
pub mod logging;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod signal;
pub mod state;
pub mod sys;
pub mod terminal;
pub mod timefmt;

pub use container::{Container, CreateOptions};
pub use error::{Error, Result};
pub use state::{StateStore, Status};

/// hull's version, and the commit it was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("HULL_COMMIT");
