"""Fixtures for the real-backend tests: the guest image, a teardown, a 2-host fabric.

Registers the ``qemu`` marker (deselect with ``-m "not qemu"``). The first test
that needs a guest runs ``scripts/setup-qemu.sh`` once per session when the
guest cache is missing (installs QEMU & co. from Debian, fetches the cloud
kernel, builds the initramfs).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "qemu: boots real QEMU guests (needs root, ~1 min on 2 cores)")


@pytest.fixture(scope="session")
def image():
    """The guest image, set up on first use."""
    if os.geteuid() != 0:
        pytest.skip("real-backend tests need root (namespaces, cgroups)")
    from presplit.backends.qemu.guest_image import GuestImageError, guest_image

    try:
        return guest_image()
    except GuestImageError:
        proc = subprocess.run(["bash", str(REPO / "scripts" / "setup-qemu.sh")],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"scripts/setup-qemu.sh failed (exit {proc.returncode}):\n{proc.stderr}")
        return guest_image()


@pytest.fixture(scope="session", autouse=False)
def stale_swept(image):
    """Remove leftovers of crashed earlier runs (only runs whose owner is dead)."""
    from presplit.backends.qemu.cleanup import cleanup_stale

    return cleanup_stale()


@pytest.fixture
def teardown(stale_swept):
    from presplit.backends.qemu.cleanup import Teardown

    # pytest owns SIGINT handling; the signal path is tested in a subprocess.
    with Teardown(handle_signals=False) as td:
        yield td
    assert not td.errors, td.errors


@pytest.fixture(scope="module")
def fabric(stale_swept):
    from presplit.backends.qemu.netns import Fabric

    with Fabric(2, topology="bridge") as fab:
        yield fab
