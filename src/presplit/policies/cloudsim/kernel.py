"""Loads the C placement kernel (``_placement.c``) and binds a view's arrays to it.

The kernel is built by ``pip install`` (setup.py). It is required: there is no
silent slow path; a missing build fails loudly with the command that fixes it.
"""

from __future__ import annotations

import ctypes
import itertools
import importlib.util

import numpy as np

from presplit.model.hardware import power_at

DETECTOR_CODES = {"Threshold": 0, "LocalRegression": 1, "InterQuartileRange": 2, "MedianAbsoluteDeviation": 3}

_dbl = ctypes.POINTER(ctypes.c_double)
_i64 = ctypes.POINTER(ctypes.c_int64)
_u8 = ctypes.POINTER(ctypes.c_uint8)


class ViewStruct(ctypes.Structure):
    _fields_ = [
        ("n_hosts", ctypes.c_int64), ("hist_width", ctypes.c_int64),
        ("pe", _dbl), ("avail", _dbl), ("ram_free", _dbl), ("alloc", _dbl), ("total", _dbl),
        ("req", _dbl), ("power_now", _dbl), ("tables", _dbl), ("hist", _dbl), ("hist_len", _i64),
        ("max_ram", _dbl), ("mig_mbps", _dbl), ("type", _i64), ("n_types", ctypes.c_int64),
        ("interval_s", ctypes.c_double),
        ("enforce_ram", ctypes.c_int64), ("detector", ctypes.c_int64), ("param", ctypes.c_double),
    ]


def _load():
    spec = importlib.util.find_spec("presplit.policies.cloudsim._placement")
    if spec is None or not spec.origin:
        raise ImportError("presplit's C placement kernel is not built; run `pip install -e .` in the repository")
    lib = ctypes.CDLL(spec.origin)
    lib.find_host.restype = ctypes.c_int64
    # Addresses go in as plain integers: building ctypes pointers costs more than the search.
    lib.find_host.argtypes = [ctypes.POINTER(ViewStruct), ctypes.c_void_p, ctypes.c_double, ctypes.c_double,
                              ctypes.c_void_p, ctypes.c_int64, ctypes.c_double]
    lib.overloaded_hosts.restype = None
    lib.overloaded_hosts.argtypes = [ctypes.POINTER(ViewStruct), _i64, ctypes.c_int64, _u8]
    return lib


LIB = _load()


_DTYPES = {_dbl: np.float64, _i64: np.int64, _u8: np.bool_}


def ptr(array: np.ndarray, kind):
    """The address of an array's data, after checking it is what the C side reads."""
    if not array.flags.c_contiguous:
        raise ValueError("kernel arrays must be C-contiguous")
    if array.dtype != _DTYPES[kind] and not (kind is _u8 and array.dtype == np.uint8):
        raise TypeError(f"kernel array has dtype {array.dtype}, expected {np.dtype(_DTYPES[kind])}")
    return array.ctypes.data_as(kind)


def detector_code(detector) -> tuple[int, float]:
    name = type(detector).__name__
    if name not in DETECTOR_CODES:
        raise TypeError(f"the placement kernel has no detector {name}")
    param = detector.threshold if name == "Threshold" else detector.safety
    return DETECTOR_CODES[name], float(param)


SELECTOR_CODES = {"MinimumMigrationTime": 0, "MinimumUtilisation": 1, "RandomSelection": 2}


class StepStruct(ctypes.Structure):
    _fields_ = [
        ("n_hosts", ctypes.c_int64), ("n_guests", ctypes.c_int64), ("hist_width", ctypes.c_int64),
        ("pe", _dbl), ("total", _dbl), ("tables", _dbl), ("power_now", _dbl), ("util_stale", _dbl),
        ("mig_mbps", _dbl), ("type", _i64), ("n_types", ctypes.c_int64), ("interval_s", ctypes.c_double),
        ("enforce_ram", ctypes.c_int64), ("ram_free", _dbl),
        ("r", _dbl), ("detect_r", _dbl), ("ram", _dbl), ("mips", _dbl), ("g_hist", _dbl),
        ("g_hist_len", _i64), ("in_migration", _u8), ("keep", ctypes.c_double), ("reserve", ctypes.c_double),
        ("detector", ctypes.c_int64), ("selector", ctypes.c_int64), ("param", ctypes.c_double),
        ("list_ptr", _i64), ("list_guest", _i64), ("list_incoming", _u8),
        ("uniform", _dbl), ("n_uniform", ctypes.c_int64),
    ]


LIB.optimise_step.restype = ctypes.c_int64
LIB.optimise_step.argtypes = [ctypes.POINTER(StepStruct), _i64, ctypes.c_int64]


def selector_code(selector) -> int | None:
    """The kernel's code for a selector, or None when only the Python path has it (MC)."""
    return SELECTOR_CODES.get(type(selector).__name__)


def stale_utilisation(engine) -> np.ndarray:
    """Hosts' CPU utilisation as of the last update, as the policies judge "switched off" and power on.

    CloudSim calls a host at 0 % switched off. Where hosts are on while they hold guests (the
    realistic model), a host holding only idle guests is on: it gets a utilisation just above 0, so
    it may be emptied and may receive guests, at its idle power.
    """
    e = engine
    util = e.h_util_mips / e.h_total
    util = np.where((util > 1.0) & (util < 1.01), 1.0, util)
    if e.model.hosts_on_with_guests:
        util = np.where((util == 0.0) & (e.host_counts() > 0), 1e-12, util)
    return util


def optimise_step(engine, detector, selector) -> list[tuple[int, int]]:
    """One decision step of a CloudSim migrating policy, computed by the C kernel.

    Takes the engine's current placement, returns the moves in CloudSim's
    order; the engine's state is not touched.
    """
    e = engine
    m = e.model
    det, param = detector_code(detector)
    sel = selector_code(selector)
    if sel is None:
        raise TypeError(f"the step kernel has no selector {type(selector).__name__}")
    list_ptr = np.zeros(e.n_hosts + 1, dtype=np.int64)
    np.cumsum(np.array(list(map(len, e.lists)), dtype=np.int64), out=list_ptr[1:])
    list_guest = np.array(list(itertools.chain.from_iterable(e.lists)), dtype=np.int64)
    list_incoming = np.zeros(len(list_guest), dtype=np.uint8)
    if e.incoming:
        incoming = set(e.incoming)
        for h in {h for _, h in e.incoming}:
            for i in range(list_ptr[h], list_ptr[h + 1]):
                list_incoming[i] = (int(list_guest[i]), h) in incoming
    util_stale = stale_utilisation(e)
    power_now = power_at(e.h_power, util_stale)
    g_hist = np.ascontiguousarray(e.history * e.g_mips[:, None])
    nz = e.history != 0
    g_hist_len = np.where(nz.any(axis=1), e.history.shape[1] - np.argmax(nz[:, ::-1], axis=1), 0).astype(np.int64)
    ram_free = e.ram_free.copy()
    in_migration = e.in_migration.view(np.uint8)
    host_type = np.ascontiguousarray(e.fleet.host_type_of, dtype=np.int64)
    uniform = (selector.rng.random(4 * e.n_guests + 64) if sel == SELECTOR_CODES["RandomSelection"]
               else np.zeros(1))
    step = StepStruct(
        e.n_hosts, e.n_guests, e.history.shape[1],
        ptr(e.h_pe, _dbl), ptr(e.h_total, _dbl), ptr(e.h_power, _dbl), ptr(power_now, _dbl),
        ptr(util_stale, _dbl), ptr(e.h_mbps, _dbl), ptr(host_type, _i64), int(host_type.max()) + 1,
        m.interval_s, int(m.enforce_ram), ptr(ram_free, _dbl),
        ptr(e.requested, _dbl), ptr(e.requested, _dbl), ptr(e.g_ram, _dbl), ptr(e.g_mips, _dbl),
        ptr(g_hist, _dbl), ptr(g_hist_len, _i64), ptr(in_migration, _u8),
        1.0 - m.source_degradation, m.destination_reservation, det, sel, param,
        ptr(list_ptr, _i64), ptr(list_guest, _i64), ptr(list_incoming, _u8), ptr(uniform, _dbl), len(uniform),
    )
    capacity = 4 * e.n_guests + 64
    while True:
        moves = np.zeros(2 * capacity, dtype=np.int64)
        n = LIB.optimise_step(ctypes.byref(step), ptr(moves, _i64), capacity)
        if n >= 0:
            return [(int(g), int(h)) for g, h in moves[: 2 * n].reshape(-1, 2)]
        if n == -2:
            raise RuntimeError("random selection ran out of random numbers in one step")
        capacity *= 4
        if capacity > 1_000 * (e.n_guests + 64):
            raise MemoryError("the placement kernel could not allocate its work space")
