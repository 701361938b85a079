#!/bin/busybox sh
# presplit guest init (PID 1 of a busybox initramfs).
#
# Owns: the guest side of the real backend. It reads its workload from the
# kernel command line (presplit.* options, written by guest_image.Workload),
# starts that workload and prints a heartbeat on the console (ttyS0):
#
#   HB <counter> <guest-uptime-s> <current-cpu-duty-%>
#
# The host reads the heartbeat from the serial log: a counter that keeps
# rising across a live migration, and host-clock gaps between beats, show
# whether the guest kept running.
#
# Options (all optional):
#   presplit.mode=idle|cpu|dirty|steps   workload (default idle)
#   presplit.dirty_mib=N                 MiB rewritten in a loop (mode=dirty)
#   presplit.dirty_rate=N                MiB/s cap for dirtying, 0 = flat out
#   presplit.steps=D1,D2,...             CPU duty cycle % per step (mode=steps;
#                                        a ramp is expanded into steps by the host)
#   presplit.step_ms=N                   length of one step (default 1000)
#   presplit.hb_ms=N                     heartbeat period (default 200)
#   presplit.modules=0|1                 load the virtio modules (default 1)

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mode=idle; dirty_mib=0; dirty_rate=0; steps=""; step_ms=1000; hb_ms=200; modules=1
for opt in $(cat /proc/cmdline); do
    case "$opt" in
        presplit.mode=*) mode="${opt#*=}" ;;
        presplit.dirty_mib=*) dirty_mib="${opt#*=}" ;;
        presplit.dirty_rate=*) dirty_rate="${opt#*=}" ;;
        presplit.steps=*) steps="${opt#*=}" ;;
        presplit.step_ms=*) step_ms="${opt#*=}" ;;
        presplit.hb_ms=*) hb_ms="${opt#*=}" ;;
        presplit.modules=*) modules="${opt#*=}" ;;
    esac
done

# Order matters: each module needs the symbols of the ones before it.
if [ "$modules" = 1 ]; then
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon; do
        [ -f "/lib/modules/$m.ko" ] && insmod "/lib/modules/$m.ko" 2>/dev/null
    done
fi

# Centiseconds since boot, without forking (/proc/uptime has 10 ms resolution).
now_cs() {
    read up _ < /proc/uptime
    cs="${up%.*}${up#*.}"
    # strip leading zeros so $((...)) does not read the number as octal
    while [ "${cs#0}" != "$cs" ] && [ "${#cs}" -gt 1 ]; do cs="${cs#0}"; done
}

# Spin for duty% of a 200 ms period, sleep for the rest.
duty_period() {
    duty=$1
    busy=$((duty * 20 / 100))
    if [ "$busy" -gt 0 ]; then
        now_cs; end=$((cs + busy))
        while [ "$cs" -lt "$end" ]; do now_cs; done
    fi
    rest=$((20 - busy))
    [ "$rest" -gt 0 ] && usleep $((rest * 10000))
}

echo 0 > /tmp/duty
case "$mode" in
    cpu)
        echo 100 > /tmp/duty
        ( while :; do :; done ) &
        ;;
    dirty)
        # Non-zero data: QEMU sends zero pages as a flag only, so dirtying
        # with zeros would make migration look cheaper than it is.
        dd if=/dev/urandom of=/tmp/block bs=1048576 count=1 2>/dev/null
        (
            while :; do
                i=0
                while [ "$i" -lt "$dirty_mib" ]; do
                    dd if=/tmp/block of=/tmp/dirty bs=1048576 count=1 seek=$i conv=notrunc 2>/dev/null
                    i=$((i + 1))
                    [ "$dirty_rate" -gt 0 ] && usleep $((1000000 / dirty_rate))
                done
            done
        ) &
        ;;
    steps)
        (
            while :; do
                for d in $(echo "$steps" | tr ',' ' '); do
                    echo "$d" > /tmp/duty
                    now_cs; step_end=$((cs + step_ms / 10))
                    while [ "$cs" -lt "$step_end" ]; do duty_period "$d"; now_cs; done
                done
            done
        ) &
        ;;
esac

echo "PRESPLIT-READY mode=$mode kernel=$(uname -r) mem_kib=$(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"

n=0
hb_us=$((hb_ms * 1000))
while :; do
    n=$((n + 1))
    read up _ < /proc/uptime
    read d < /tmp/duty
    echo "HB $n $up $d"
    usleep "$hb_us"
done
