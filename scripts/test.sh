#!/usr/bin/env bash
# Every test hull has: format, lints, unit and integration tests (real
# containers, differential tests against runc, engine tests with
# containerd/docker/podman), then the runtime-spec conformance suite with
# runc side by side. Needs root and the packages .ci/run installs.
# Usage (as root): bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --no-fail-fast
bash conformance/run.sh --compare
