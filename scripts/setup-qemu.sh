#!/usr/bin/env bash
# Prepare this machine for real QEMU guests (presplit's real backend).
#
# Idempotent: installs the Debian packages only when one is missing, downloads
# and unpacks (never installs) a Debian cloud kernel only when the cache lacks
# it, and builds the busybox initramfs only when its inputs changed. A second
# run does nothing and takes about a second.
#
#   PRESPLIT_CACHE   cache root (default /var/cache/presplit); files go to $PRESPLIT_CACHE/guest
#   PRESPLIT_KERNEL  a specific linux-image-*-cloud-amd64 package (default: what
#                    the linux-image-cloud-amd64 meta-package points at)
set -euo pipefail

CACHE="${PRESPLIT_CACHE:-/var/cache/presplit}/guest"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(qemu-system-x86 qemu-utils busybox-static iproute2 lz4 cpio)

log() { echo "setup-qemu: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- packages -------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null \
        || die "apt-get install ${PACKAGES[*]} failed"
fi

# --- kernel ---------------------------------------------------------------
mkdir -p "$CACHE/kernel"
if [[ -f "$CACHE/kernel.release" && -z "${PRESPLIT_KERNEL:-}" ]]; then
    release="$(cat "$CACHE/kernel.release")"
else
    pkg="${PRESPLIT_KERNEL:-}"
    if [[ -z "$pkg" ]]; then
        pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null \
            | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)"
        if [[ -z "$pkg" ]]; then
            apt-get update -qq || die "apt-get update failed"
            pkg="$(apt-cache depends linux-image-cloud-amd64 \
                | sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)"
        fi
        [[ -n "$pkg" ]] || die "cannot resolve linux-image-cloud-amd64 to a kernel package"
    fi
    release="${pkg#linux-image-}"
fi

kdir="$CACHE/kernel/$release"
if [[ ! -f "$kdir/boot/vmlinuz-$release" ]]; then
    log "downloading linux-image-$release"
    dl="$(mktemp -d)"
    trap 'rm -rf "$dl"' EXIT
    # apt drops privileges to _apt, which cannot write into mktemp's 0700 dir.
    chmod 755 "$dl"; chown _apt "$dl" 2>/dev/null || true
    (cd "$dl" && apt-get download -qq "linux-image-$release") \
        || die "apt-get download linux-image-$release failed"
    rm -rf "$kdir.tmp"
    dpkg-deb -x "$dl"/linux-image-"$release"_*.deb "$kdir.tmp" || die "dpkg-deb -x failed"
    # Keep only what a guest needs: the kernel and its modules.
    rm -rf "$kdir.tmp/usr" "$kdir.tmp/etc"
    rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
fi
echo "$release" > "$CACHE/kernel.release.tmp" && mv "$CACHE/kernel.release.tmp" "$CACHE/kernel.release"

# --- initramfs ------------------------------------------------------------
initrd="$(PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" \
    python3 -m presplit.backends.qemu.guest_image --cache "$CACHE")" \
    || die "building the initramfs failed"
log "ready: kernel $release, initramfs $initrd"
