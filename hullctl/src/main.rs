//! hullctl (issue 16): not implemented yet.
fn main() {
    eprintln!("hullctl {}: not implemented yet", hull::VERSION);
    std::process::exit(1);
}
