#!/bin/sh
# Inside the guest (installed as /usr/local/sbin/hull-vm-job): mounts the
# share disk, runs its job with output on the serial console, prints the exit
# marker run.sh looks for, and powers off whatever happens.
stty -F /dev/ttyS0 -onlcr 2>/dev/null || true
mkdir -p /share
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if mount /dev/vdb /share && [ -x /share/job ]; then
    echo "HULL_VM_BOOTED $(cut -d' ' -f1 /proc/uptime)"
    cd /share && PATH=/share/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root ./job
    rc=$?
else
    echo "hull-vm-job: no /share/job on /dev/vdb"
    rc=125
fi
sync
echo "HULL_VM_EXIT=$rc"
sync
umount /share 2>/dev/null
systemctl poweroff -ff
