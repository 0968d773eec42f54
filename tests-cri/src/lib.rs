//! Harness for the Kubernetes CRI tests (tests/cri.rs): containerd's CRI
//! plugin runs pods with hull, driven by a CRI client as the kubelet
//! drives it. A separate workspace member so that the CRI client (tonic,
//! prost, tokio) never reaches the runtime package.
//!
//! - [`node`]: containerd + CNI + images + runtime handlers, private to a test
//! - [`cri`]: the CRI client, the kubelet's request shapes, Exec/Attach streams
//! - [`image`]: the pause and busybox images built from busybox-static
//! - [`host`]: temp dirs, commands, and what a pod may leave on the host

pub mod cri;
/// The test suites' shared daemon helpers (only `stop_child` is used here).
#[path = "../../tests/common/daemons.rs"]
pub mod daemons;
pub mod host;
pub mod image;
pub mod node;
