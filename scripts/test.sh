#!/usr/bin/env bash
# Every test hull has: format, lints, unit and integration tests (real
# containers, differential tests against runc, engine tests with
# containerd/docker/podman, Kubernetes pods through containerd's CRI: the
# tests-cri workspace member, which `cargo test --workspace` runs), the
# runtime-spec conformance suite with runc
# side by side, and then, in the pure cgroup v2 + systemd guest (tests/vm,
# qemu), the cgroup v2 checks, the Rust integration tests again, the
# systemd driver without a D-Bus daemon, the CRIU round trip and AppArmor.
# Needs root and the packages .ci/run installs.
#
# Usage (as root): bash scripts/test.sh
#   HULL_TEST_NO_VM=1 bash scripts/test.sh    # the host part only
#
# Every step runs even when an earlier one failed (a failure must not hide
# what the later steps would have found); the summary lists each step and
# the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
steps=()
failed=0
step() { # NAME CMD...
    local name=$1 t0=$SECONDS rc=0
    shift
    echo "=== [test.sh] $name"
    "$@" || rc=$?
    steps+=("$(printf '%-26s %s (%ss)' "$name" "$([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)")" $((SECONDS - t0)))")
    [ $rc = 0 ] || failed=1
}
step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step "cargo test" cargo test --workspace --no-fail-fast
# tests/parity.rs's figure (its report lists every case and both stderrs).
report=target/$(rustc -vV | sed -n 's/^host: //p')/tmp/parity-report.txt
[ -f "$report" ] && echo "=== [test.sh] $(head -1 "$report") (report: $report)"
step conformance bash conformance/run.sh --compare
if [ -z "${HULL_TEST_NO_VM:-}" ]; then
    # The debug hull the tests above built (static; see .cargo/config.toml),
    # and their test binaries, reused in the guest.
    hull=target/$(rustc -vV | sed -n 's/^host: //p')/debug/hull
    step "guest: cgroup v2 checks" env HULL_VM_HULL="$hull" bash tests/vm/check-v2.sh
    step "guest: cargo tests" env HULL_VM_HULL="$hull" CARGO_TARGET_DIR_VM="$PWD/target" \
        bash tests/vm/cargo-tests.sh
    step "guest: systemd, no D-Bus" env HULL_VM_HULL="$hull" bash tests/vm/run.sh bash tests/systemd-nodbus.sh
    step "guest: CRIU round trip" env HULL_VM_HULL="$hull" bash tests/vm/run.sh bash tests/criu-guest.sh
    step "guest: AppArmor profiles" env HULL_VM_HULL="$hull" bash tests/vm/run.sh bash tests/apparmor-guest.sh
fi
echo "=== [test.sh] summary"
printf '  %s\n' "${steps[@]}"
[ -f "$report" ] && echo "  $(head -1 "$report")"
exit $failed
