"""CloudSim's host overload detectors (Beloglazov & Buyya, CCPE 2012, section 5).

Every detector answers, for an array of hosts at once, "is this host
overloaded, possibly after adding this guest?" from the what-if view:
THR compares requested MIPS to a fixed threshold; IQR and MAD derive an
adaptive threshold from the spread of the host's utilisation history; LR and
LRR extrapolate a least-squares line through the last 10 history samples to
the end of the longest migration. The adaptive ones fall back to THR 0.7 while
the history is too short, as CloudSim's do.
"""

from __future__ import annotations

import math

import numpy as np

FALLBACK_THRESHOLD = 0.7
LR_WINDOW = 10  # samples the regression looks at ("responsive enough to the latest values")
SPREAD_MIN_SAMPLES = 12  # IQR and MAD need this many history samples


def _state(view, hosts: np.ndarray, guest: int | None):
    """Requested MIPS fraction, combined history and its trimmed length, with the guest added."""
    total = view.total[hosts]
    req = view.req[hosts]
    hist = view.hist[hosts]
    length = view.hist_len[hosts]
    if guest is not None:
        req = req + view.requested[guest]
        hist = hist + view.g_hist_mips[guest][None, :] / total[:, None]
        length = np.maximum(length, view.g_hist_len[guest])
    return req / total, hist, length


class Threshold:
    def __init__(self, threshold: float) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"THR threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold

    def overloaded(self, view, hosts: np.ndarray, guest: int | None = None) -> np.ndarray:
        load, _, _ = _state(view, hosts, guest)
        return load > self.threshold


class _Adaptive:
    """Shared shape of the history-based detectors: a rule per host, THR 0.7 when history is short."""

    min_samples = SPREAD_MIN_SAMPLES

    def __init__(self, safety: float) -> None:
        if safety < 0:
            raise ValueError(f"safety parameter must be >= 0, got {safety}")
        self.safety = safety

    def overloaded(self, view, hosts: np.ndarray, guest: int | None = None) -> np.ndarray:
        load, hist, length = _state(view, hosts, guest)
        out = load > FALLBACK_THRESHOLD
        enough = length >= self.min_samples
        if enough.any():
            idx = np.flatnonzero(enough)
            out[idx] = self._rule(view, hosts[idx], guest, load[idx], hist[idx], length[idx])
        return out


class _SpreadThreshold(_Adaptive):
    """IQR and MAD: overloaded when load > 1 - safety x spread of the host's history."""

    def _rule(self, view, hosts, guest, load, hist, length):
        out = np.empty(len(hosts), dtype=bool)
        for n in np.unique(length):  # histories of one length at a time, as arrays
            rows = np.flatnonzero(length == n)
            out[rows] = load[rows] > 1.0 - self.safety * self._spread(hist[rows, :n])
        return out


class InterQuartileRange(_SpreadThreshold):
    @staticmethod
    def _spread(data: np.ndarray) -> np.ndarray:
        n = data.shape[1]
        data = np.sort(data, axis=1)
        # CloudSim's quartile positions: round(0.25 (n + 1)) and round(0.75 (n + 1)), 1-based.
        q1 = math.floor(0.25 * (n + 1) + 0.5) - 1
        q3 = math.floor(0.75 * (n + 1) + 0.5) - 1
        return data[:, q3] - data[:, q1]


class MedianAbsoluteDeviation(_SpreadThreshold):
    @staticmethod
    def _spread(data: np.ndarray) -> np.ndarray:
        med = np.median(data, axis=1)
        return np.median(np.abs(data - med[:, None]), axis=1)


class LocalRegression(_Adaptive):
    """LR: predicted utilisation x safety >= 1. LRR is the same in CloudSim 3.0.3.

    CloudSim's "loess" weights are tricube weights that it only applies when
    40 % of them are zero, which never happens for 10 points, so the fit is
    ordinary least squares on x = 1..10 (oldest to newest).
    """

    min_samples = LR_WINDOW

    def _rule(self, view, hosts, guest, load, hist, length):
        y = hist[:, :LR_WINDOW][:, ::-1]  # oldest first
        x = np.arange(1, LR_WINDOW + 1, dtype=np.float64)
        xc = x - x.mean()
        slope = (y - y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
        max_ram = view.max_ram[hosts]
        if guest is not None:
            max_ram = np.maximum(max_ram, view.g_ram[guest])
        steps = np.ceil(max_ram / view.mig_mbps[hosts] / view.interval_s)
        predicted = y.mean(axis=1) + slope * (LR_WINDOW + steps - x.mean())
        return predicted * self.safety >= 1.0
