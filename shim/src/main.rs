//! containerd-shim-hull-v2 (issue 14): not implemented yet.
fn main() {
    eprintln!(
        "containerd-shim-hull-v2 {}: not implemented yet",
        hull::VERSION
    );
    std::process::exit(1);
}
