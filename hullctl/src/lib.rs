//! hullctl: daemonless images and containers on the hull library.
//!
//! Where things live:
//! - [`store`]: the content-addressed store (`--root`, default
//!   /var/lib/hull): blobs, unpacked layers, image records, refs, locks
//! - [`image`]: image formats: `load`/`save` (docker archive, OCI layout),
//!   `import`, image configs, platforms, references
//! - [`container`]: containers made from images: bundle + overlayfs rootfs,
//!   config.json derived from the image config, lifecycle on the hull library,
//!   the per-container monitor for detached ones
//! - [`network`]: networks, IPAM leases, the bridge/veth/nftables plumbing
//! - [`volume`]: data volumes under the store (named, anonymous)
//! - [`init`]: the tiny PID 1 (`--init`)
//! - [`sys`]: the few syscalls std lacks (the only `unsafe` here)

pub mod container;
pub mod digest;
pub mod error;
pub mod image;
pub mod init;
pub mod network;
pub mod store;
pub mod sys;
pub mod volume;

pub use error::{Error, Result};
