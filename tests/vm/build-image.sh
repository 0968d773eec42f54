#!/usr/bin/env bash
# Builds the Debian guest for tests/vm/run.sh into OUT_DIR (called by run.sh
# when the cache has no image for the current recipe; see README.md).
#   OUT_DIR/vmlinuz     the cloud kernel (from linux-image-*-cloud-amd64)
#   OUT_DIR/initrd.img  busybox + the virtio modules, switch_root to /dev/vda
#   OUT_DIR/root.img    ext4: debootstrap minbase bookworm + systemd, runc, criu, apparmor
# Everything comes from Debian packages (apt-get download / debootstrap).
set -euo pipefail
OUT_DIR=${1:?usage: build-image.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${HULL_VM_SUITE:-bookworm}
MIRROR=${HULL_VM_MIRROR:-http://deb.debian.org/debian}
KERNEL_META=${HULL_VM_KERNEL:-linux-image-cloud-amd64}
PACKAGES=systemd,systemd-sysv,udev,dbus,kmod,busybox-static,runc,criu,containerd,iptables,iproute2,procps,jq,apparmor,uidmap,dbus-user-session
ROOT_SIZE=2G

need() { command -v "$1" >/dev/null || { echo "build-image: $1 missing (apt-get install $2)" >&2; exit 1; }; }
need debootstrap debootstrap
need depmod kmod
need mkfs.ext4 e2fsprogs
need cpio cpio
[ -x /bin/busybox ] || { echo "build-image: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hull-vm-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { printf '[build-image %s] %s\n' "$(date +%T)" "$*" >&2; }

# --- kernel: the package the meta package points at, unpacked, not installed
KPKG=$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
[ -n "$KPKG" ] || { echo "build-image: cannot resolve $KERNEL_META (apt-get update?)" >&2; exit 1; }
log "kernel package $KPKG"
(cd "$WORK" && apt-get download -q "$KPKG" >/dev/null 2>&1)
mkdir "$WORK/k"
dpkg-deb -x "$WORK"/linux-image-*.deb "$WORK/k"
KVER=$(ls "$WORK/k/lib/modules")
depmod -b "$WORK/k" "$KVER"

# --- initramfs: busybox, virtio modules in depmod order, switch_root
log "initramfs for $KVER"
I="$WORK/initrd"
mkdir -p "$I"/{bin,dev,proc,sys,newroot,modules}
cp /bin/busybox "$I/bin/busybox"
: > "$I/modules/order"
for m in virtio_pci virtio_blk; do
    modprobe -d "$WORK/k" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$I/modules/"
    basename "$ko" >> "$I/modules/order"
done
log "modules: $(tr '\n' ' ' < "$I/modules/order")"
cat > "$I/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "initrd: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
    echo "initrd: cannot mount /dev/vda"; poweroff -f
fi
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot /lib/systemd/systemd
INIT
chmod 755 "$I/init"
(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd.img"

# --- root filesystem
log "debootstrap $SUITE ($PACKAGES)"
R="$WORK/root"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$R" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
mkdir -p "$R/lib/modules"
cp -a "$WORK/k/lib/modules/$KVER" "$R/lib/modules/"
echo hull-vm > "$R/etc/hostname"
printf '127.0.0.1 localhost hull-vm\n' > "$R/etc/hosts"
printf '/dev/vda / ext4 rw,relatime 0 1\n' > "$R/etc/fstab"
passwd -R "$R" -d root >/dev/null 2>&1 || true
rm -f "$R/etc/machine-id"; : > "$R/etc/machine-id"   # systemd fills it at boot
install -m 755 "$HERE/guest-job.sh" "$R/usr/local/sbin/hull-vm-job"
install -m 644 "$HERE/hull-vm-job.service" "$R/etc/systemd/system/hull-vm-job.service"
ln -sf /etc/systemd/system/hull-vm-job.service "$R/etc/systemd/system/multi-user.target.wants/hull-vm-job.service"
# only the job talks on the serial console; nothing else waits on the network
for u in serial-getty@ttyS0.service getty@tty1.service systemd-networkd-wait-online.service \
         systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service \
         systemd-networkd.service systemd-logind.service systemd-user-sessions.service getty.target \
         systemd-update-utmp.service systemd-update-utmp-runlevel.service fstrim.timer \
         systemd-tmpfiles-clean.timer dpkg-db-backup.timer systemd-pstore.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
done
rm -rf "$R/var/cache/apt/archives"/*.deb "$R/var/lib/apt/lists"/*
log "root.img ($(du -sh "$R" | cut -f1))"
mkfs.ext4 -q -F -L hull-vm-root -d "$R" "$WORK/root.img" "$ROOT_SIZE" >/dev/null

mkdir -p "$OUT_DIR"
cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT_DIR/vmlinuz"
mv "$WORK/initrd.img" "$OUT_DIR/initrd.img"
mv "$WORK/root.img" "$OUT_DIR/root.img"
echo "$KPKG $KVER" > "$OUT_DIR/kernel"
log "done: $OUT_DIR"
