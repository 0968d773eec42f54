#!/usr/bin/env bash
# Build hull, make a busybox bundle, and run a container from it.
# Usage (as root): bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
if [ ! -x /bin/busybox ]; then
  apt-get install -y -qq busybox-static >/dev/null
fi
cargo build --release --quiet
HULL="$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/hull"
work=$(mktemp -d /tmp/hull-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/mybox/rootfs/bin" "$work/mybox/rootfs/etc"
cp /bin/busybox "$work/mybox/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/mybox/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/mybox/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/mybox/rootfs/etc/group"
cd "$work/mybox"
"$HULL" spec
# A non-interactive demo: no terminal, a short script instead of a shell.
sed -i 's/"terminal": true/"terminal": false/' config.json
sed -i 's|^\(\s*\)"sh"$|\1"sh", "-c", "echo hello from $(hostname): pid $$, uid $(id -u); grep -E \\"^Cap(Eff\|Bnd)\\" /proc/self/status; ls /dev"|' config.json
echo "+ hull run mybox"
set +e
"$HULL" --root "$work/state" run mybox
code=$?
set -e
echo "container exited with $code"
exit $code
