#!/usr/bin/env bash
# hull's Rust integration tests, run as root inside the cgroup v2 + systemd
# guest against the hull binary run.sh ships (HULL_TEST_RUNTIME=/share/bin/hull):
#
#   bash tests/vm/cargo-tests.sh                 # the suites below (SUITES)
#   bash tests/vm/cargo-tests.sh cgroups exec    # chosen test targets
#   HULL_VM_FILTER=restore bash tests/vm/cargo-tests.sh containerd   # and tests
#
# Builds the test binaries on the host (CARGO_TARGET_DIR_VM, default
# /tmp/t-vm, debug) and the static C probe the security tests use (the guest
# has no compiler) and tests/fixtures, ships them in /share/extra, runs each binary in the
# guest (one boot) and exits non-zero if any test failed. `HULL_VM_HULL`
# picks the hull binary (see run.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# Every suite that needs no container engine (docker, podman are not in
# the guest; they run on the host), and of the shim's (SHIM_SUITES, package
# containerd-shim-hull): containerd's, for the checkpoint → restore round
# trip that needs CRIU (the guest has Debian's containerd).
SUITES="lifecycle runtime_core cgroups cgroups_v2_tree exec security seccomp cve hooks terminal_fds container_view errors differential validation_parity mounts_userns checkpoint rootless"
SHIM_SUITES="containerd"
if [ -n "${HULL_VM_GUEST:-}" ]; then
    rc=0
    export HULL_TEST_RUNTIME=/share/bin/hull HULL_TEST_PROBE=/share/extra/probe \
        HULL_TEST_FIXTURES=/share/extra/fixtures HULL_TEST_SHIM=/share/extra/containerd-shim-hull-v2
    for t in /share/extra/*; do
        case $(basename "$t") in probe|fixtures|containerd-shim-hull-v2) continue ;; esac
        echo "=== $(basename "$t")"
        "$t" --test-threads=2 --color never "$@" 2>&1 || { rc=1; echo "=== FAILED: $(basename "$t")"; }
    done
    echo "=== cargo tests in the guest: $([ $rc = 0 ] && echo passed || echo FAILED)"
    exit $rc
fi
REPO=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR_VM:-/tmp/t-vm}
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
[ $# -gt 0 ] || set -- $SUITES $SHIM_SUITES
args=()
shim_args=()
for t in "$@"; do
    case " $SHIM_SUITES " in
        *" $t "*) shim_args+=(--test "$t") ;;
        *) args+=(--test "$t") ;;
    esac
done
build() { # CARGO_ARGS...: the test binaries and the shim binary, as JSON lines
    echo "[cargo-tests] cargo test --no-run $*" >&2
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo test --no-run "$@" --message-format=json 2>/dev/null)
}
json=$( { [ ${#args[@]} = 0 ] || build "${args[@]}"; } &&
    { [ ${#shim_args[@]} = 0 ] || build -p containerd-shim-hull "${shim_args[@]}"; })
bins=$(jq -r 'select(.reason=="compiler-artifact" and .profile.test==true and .executable!=null) | .executable' <<<"$json")
shim=$(jq -r 'select(.reason=="compiler-artifact" and .target.name=="containerd-shim-hull-v2" and .profile.test==false and .executable!=null) | .executable' <<<"$json" | head -1)
[ -n "$bins" ] || { echo "[cargo-tests] no test binaries built" >&2; exit 1; }
dir=$(mktemp -d /tmp/hull-vm-tests.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for b in $bins; do cp "$b" "$dir/$(basename "$b" | sed 's/-[0-9a-f]*$//')"; done
[ -z "$shim" ] || cp "$shim" "$dir/containerd-shim-hull-v2"
cc -static -O1 -o "$dir/probe" "$REPO/tests/fixtures/probe.c"
cp -a "$REPO/tests/fixtures" "$dir/fixtures"
rc=0
HULL_VM_EXTRA="$(ls -d "$dir"/*)" bash "$HERE/run.sh" bash tests/cargo-tests.sh ${HULL_VM_FILTER:-} || rc=$?
exit $rc
