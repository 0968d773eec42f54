#!/usr/bin/env bash
# Every test hull has: format, lints, unit and integration tests (real
# containers; needs root, busybox-static and runc).
# Usage (as root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --no-fail-fast
