"""The guest image: kernel, busybox initramfs and the workload's command line.

Owns where the guest's files live (the cache prepared by
``scripts/setup-qemu.sh``), building the initramfs from busybox, the virtio
modules of the cached kernel and ``guest_init.sh``, and turning a
:class:`Workload` into kernel command-line options that the init script reads.

The initramfs is keyed by a hash of everything that goes into it, so a changed
init script or kernel gives a new file and an unchanged one is reused.

Run ``python -m presplit.backends.qemu.guest_image [--cache DIR]`` to build
the initramfs and print its path (the setup script does this).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from presplit.errors import PresplitError

#: Load order matters: each module needs the symbols of the ones before it.
VIRTIO_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_balloon",
)

#: Below ~80 MiB the cloud kernel panics while unpacking the initramfs.
MIN_GUEST_MIB = 96

SETUP_HINT = "run scripts/setup-qemu.sh (or set PRESPLIT_CACHE to its cache)"


class GuestImageError(PresplitError, RuntimeError):
    """The guest's kernel or initramfs is missing or could not be built."""


def cache_dir() -> Path:
    """The guest cache: ``${PRESPLIT_CACHE:-/var/cache/presplit}/guest``."""
    return Path(os.environ.get("PRESPLIT_CACHE", "/var/cache/presplit")) / "guest"


@dataclass(frozen=True)
class Workload:
    """What the guest does, encoded as ``presplit.*`` kernel options.

    ``mode`` is one of ``idle``, ``cpu`` (one busy loop), ``dirty`` (rewrite
    ``dirty_mib`` MiB in a loop, optionally capped at ``dirty_rate`` MiB/s)
    and ``steps`` (CPU duty cycle in % per step, each ``step_ms`` long,
    repeating).
    """

    mode: str = "idle"
    dirty_mib: int = 0
    dirty_rate: int = 0
    steps: tuple[int, ...] = ()
    step_ms: int = 1000
    heartbeat_ms: int = 200

    def __post_init__(self) -> None:
        if self.mode not in ("idle", "cpu", "dirty", "steps"):
            raise ValueError(f"unknown workload mode {self.mode!r}")
        if self.mode == "dirty" and self.dirty_mib <= 0:
            raise ValueError("mode 'dirty' needs dirty_mib > 0")
        if self.mode == "steps" and not self.steps:
            raise ValueError("mode 'steps' needs at least one step")
        if any(not 0 <= d <= 100 for d in self.steps):
            raise ValueError(f"duty cycles must be 0..100 %, got {self.steps}")
        if not 50 <= self.heartbeat_ms <= 1000:
            raise ValueError("heartbeat_ms must be within 50..1000")

    @classmethod
    def idle(cls) -> Workload:
        return cls()

    @classmethod
    def cpu(cls) -> Workload:
        return cls(mode="cpu")

    @classmethod
    def dirty(cls, mib: int, rate_mib_s: int = 0) -> Workload:
        return cls(mode="dirty", dirty_mib=mib, dirty_rate=rate_mib_s)

    @classmethod
    def duty_steps(cls, duties: list[int] | tuple[int, ...], step_ms: int = 1000) -> Workload:
        return cls(mode="steps", steps=tuple(int(d) for d in duties), step_ms=step_ms)

    @classmethod
    def ramp(cls, start: int, end: int, n_steps: int, step_ms: int = 1000) -> Workload:
        """A linear CPU ramp from ``start`` to ``end`` % in ``n_steps`` steps."""
        if n_steps < 2:
            return cls.duty_steps([end], step_ms)
        duties = [round(start + (end - start) * i / (n_steps - 1)) for i in range(n_steps)]
        return cls.duty_steps(duties, step_ms)

    def kernel_args(self) -> list[str]:
        args = [f"presplit.mode={self.mode}", f"presplit.hb_ms={self.heartbeat_ms}"]
        if self.mode == "dirty":
            args += [f"presplit.dirty_mib={self.dirty_mib}", f"presplit.dirty_rate={self.dirty_rate}"]
        if self.mode == "steps":
            args += [
                "presplit.steps=" + ",".join(str(d) for d in self.steps),
                f"presplit.step_ms={self.step_ms}",
            ]
        return args


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest: kernel, initramfs, and the kernel release they match."""

    kernel: Path
    initrd: Path
    kernel_release: str

    def append(self, workload: Workload | None = None) -> str:
        """The ``-append`` string: serial console, quiet boot, the workload."""
        base = [
            "console=ttyS0",
            "quiet",
            "loglevel=1",
            "panic=-1",  # reboot at once on panic; QEMU runs with -no-reboot so it exits
            "rdinit=/init",
            "mitigations=off",  # speculative-execution fixes only slow TCG down
        ]
        return " ".join(base + (workload or Workload()).kernel_args())


def find_kernel(cache: Path | None = None) -> tuple[Path, Path, str]:
    """(vmlinuz, modules dir, release) of the kernel unpacked by the setup script."""
    cache = cache or cache_dir()
    release_file = cache / "kernel.release"
    if not release_file.is_file():
        raise GuestImageError(f"no guest kernel in {cache}: {SETUP_HINT}")
    release = release_file.read_text().strip()
    root = cache / "kernel" / release
    vmlinuz = root / "boot" / f"vmlinuz-{release}"
    modules = root / "lib" / "modules" / release
    if not vmlinuz.is_file() or not modules.is_dir():
        raise GuestImageError(f"guest kernel {release} incomplete under {root}: {SETUP_HINT}")
    return vmlinuz, modules, release


def _module_paths(modules_dir: Path, names: tuple[str, ...]) -> list[Path]:
    found = {p.stem: p for p in modules_dir.rglob("*.ko")}
    missing = [n for n in names if n not in found]
    if missing:
        raise GuestImageError(f"kernel modules {missing} not found under {modules_dir}")
    return [found[n] for n in names]


def _check_static(binary: Path) -> None:
    # A dynamically linked busybox would need its libc in the initramfs; the
    # interpreter path sits in the first few KiB of such an ELF file.
    if b"/lib64/ld-linux" in binary.read_bytes()[:8192]:
        raise GuestImageError(f"{binary} is dynamically linked; install busybox-static")


def build_initramfs(
    cache: Path | None = None,
    *,
    busybox: Path = Path("/bin/busybox"),
    modules: tuple[str, ...] = VIRTIO_MODULES,
) -> Path:
    """Build (or reuse) the gzip'd newc initramfs and return its path."""
    cache = cache or cache_dir()
    _, modules_dir, release = find_kernel(cache)
    if not busybox.is_file():
        raise GuestImageError(f"{busybox} not found: {SETUP_HINT}")
    _check_static(busybox)
    init_text = resources.files(__package__).joinpath("guest_init.sh").read_bytes()
    module_files = _module_paths(modules_dir, modules)

    digest = hashlib.sha256()
    for part in [init_text, busybox.read_bytes(), release.encode()] + [p.read_bytes() for p in module_files]:
        digest.update(hashlib.sha256(part).digest())
    out = cache / f"initramfs-{digest.hexdigest()[:16]}.cpio.gz"
    if out.is_file():
        return out

    with tempfile.TemporaryDirectory(prefix="presplit-initramfs-") as tmp:
        root = Path(tmp)
        for d in ("bin", "lib/modules", "proc", "sys", "dev", "tmp"):
            (root / d).mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        (root / "bin" / "sh").symlink_to("busybox")
        (root / "init").write_bytes(init_text)
        (root / "init").chmod(0o755)
        for p in module_files:
            shutil.copy2(p, root / "lib" / "modules" / p.name)
        # find | cpio -o -H newc | gzip, as the kernel's initramfs docs describe;
        # the file list is sorted so equal inputs give an equal archive.
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        proc = subprocess.run(
            [str(busybox), "cpio", "-o", "-H", "newc"],
            cwd=root,
            input=("\n".join(["."] + names) + "\n").encode(),
            capture_output=True,
        )
        if proc.returncode != 0:
            raise GuestImageError(
                f"building initramfs failed ({busybox} cpio -o -H newc, exit {proc.returncode}): "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        tmp_out = out.with_name(out.name + f".{os.getpid()}.tmp")
        tmp_out.write_bytes(gzip.compress(proc.stdout, compresslevel=6, mtime=0))
        tmp_out.rename(out)  # atomic: concurrent builders never see half a file
    return out


def guest_image(cache: Path | None = None) -> GuestImage:
    """The cached kernel plus an up-to-date initramfs."""
    cache = cache or cache_dir()
    vmlinuz, _, release = find_kernel(cache)
    return GuestImage(kernel=vmlinuz, initrd=build_initramfs(cache), kernel_release=release)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="guest cache dir")
    args = parser.parse_args(argv)
    print(guest_image(args.cache).initrd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
