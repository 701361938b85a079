"""``presplit fleet generate``: determinism, shape, the resampling method, and refusing bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scale.synthetic import read_manifest, resample
from presplit.scenarios import bundled_planetlab_day
from presplit.traces import load_trace

from .conftest import generate


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        result = generate(tmp_path / name, "20110306", seed=seed, guests=120, hosts=90)
        assert result.exit_code == 0, result.output
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_shape_manifest_and_readable_trace(tmp_path):
    out = tmp_path / "big"
    assert generate(out, "20110303", seed=3, guests=1500, hosts=1200).exit_code == 0
    scenario = read_manifest(out)
    assert scenario.hosts == 1200 and scenario.manifest["seed"] == 3 and scenario.manifest["guests"] == 1500
    wl = load_trace(scenario.trace)  # a plain PlanetLab day folder: the ordinary reader takes it
    assert wl.usage.shape == (1500, 288, 1)
    assert wl.guest_ids == tuple(sorted(wl.guest_ids))  # file order is generation order
    # More guests than the source has, yet no two are identical series.
    assert len({row.tobytes() for row in wl.usage[:, :, 0]}) > 1450  # all-idle sources may repeat
    provenance = (out / "provenance.csv").read_text().splitlines()
    assert len(provenance) == 1501 and provenance[0] == "guest,source_guest,shift_steps"


def test_each_guest_is_a_shifted_source_series(tmp_path):
    source = load_trace(bundled_planetlab_day("20110309"))
    exact = resample(source, 300, seed=11, max_shift=4, jitter=0.0)
    cpu = source.resource("cpu")
    for g in range(300):
        expected = np.roll(cpu[exact.source_index[g]], exact.shift[g])
        np.testing.assert_array_equal(exact.workload.resource("cpu")[g], expected)
    assert np.abs(exact.shift).max() <= 4 and len(set(exact.shift.tolist())) > 1
    # With jitter the series stay close to their source: burstiness and shape survive.
    noisy = resample(source, 300, seed=11, max_shift=4, jitter=0.05)
    np.testing.assert_array_equal(noisy.source_index, exact.source_index)
    a, b = exact.workload.resource("cpu"), noisy.workload.resource("cpu")
    busy = a.std(axis=1) > 0.02
    corr = [np.corrcoef(a[g], b[g])[0, 1] for g in np.flatnonzero(busy)]
    assert np.median(corr) > 0.95
    # The fleet-wide daily shape (the cross-guest, time-of-day part) is kept at hourly resolution.
    hourly_src = cpu[exact.source_index].mean(axis=0).reshape(24, 12).mean(axis=1)
    hourly_syn = b.mean(axis=0).reshape(24, 12).mean(axis=1)
    assert np.corrcoef(hourly_src, hourly_syn)[0, 1] > 0.95


def _bitbrains_long(path, guests=4, steps=50):
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(guests), steps)
    cap = np.repeat(rng.uniform(2000, 6000, guests), steps)
    pq.write_table(pa.table({
        "vm_id": pa.array((g + 1).astype(str)),
        "timestamp": np.tile(1_372_629_600 + 300.0 * np.arange(steps), guests),
        "cpu_capacity_mhz": cap,
        "cpu_usage_mhz": cap * rng.uniform(0, 1, guests * steps),
        "mem_capacity_kb": np.full(guests * steps, 8_000_000.0),
        "mem_usage_kb": rng.uniform(1e5, 8e6, guests * steps),
        "disk_read_kbps": rng.uniform(0, 100, guests * steps),
        "disk_write_kbps": rng.uniform(0, 100, guests * steps),
        "net_rx_kbps": rng.uniform(0, 10, guests * steps),
        "net_tx_kbps": rng.uniform(0, 10, guests * steps),
    }), path)


def test_multi_resource_source_becomes_a_long_parquet_that_reads_back(tmp_path):
    src = tmp_path / "bb.parquet"
    _bitbrains_long(src)
    out = tmp_path / "bb-x9"
    result = CliRunner().invoke(cli, ["fleet", "generate", "--guests", "9", "--hosts", "5", "--from-trace",
                                      str(src), "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scenario = read_manifest(out)
    assert scenario.manifest["trace_format"] == "parquet-long" and scenario.trace.name == "trace.parquet"
    back = load_trace(scenario.trace)
    expected = resample(load_trace(src), 9, seed=2).workload
    assert back.resources == expected.resources and back.usage.shape == (9, 50, 4)
    np.testing.assert_allclose(back.usage, expected.usage, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(back.capacity[:, :2], expected.capacity[:, :2])


@pytest.mark.parametrize("args, needle", [
    (["--guests", "0", "--hosts", "5"], "positive number of guests"),
    (["--guests", "5", "--hosts", "0"], "positive number of hosts"),
    (["--guests", "5", "--hosts", "5", "--seed", "-1"], "seed >= 0"),
])
def test_bad_counts_exit_2_and_write_nothing(tmp_path, args, needle):
    out = tmp_path / "x"
    result = CliRunner().invoke(cli, ["fleet", "generate", *args, "--from-trace",
                                      str(bundled_planetlab_day("20110303")), "--out", str(out)])
    assert result.exit_code == 2 and needle in result.output
    assert not out.exists()


def test_bad_source_and_existing_output_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["fleet", "generate", "--guests", "5", "--hosts", "5",
                                      "--from-trace", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--from-trace" in result.output
    assert not (tmp_path / "x").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    result = generate(tmp_path / "taken", "20110303", guests=5, hosts=5)
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_manifest_is_json_with_counts_and_seed(tmp_path):
    assert generate(tmp_path / "m", "20110303", seed=9, guests=7, hosts=4).exit_code == 0
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert {k: manifest[k] for k in ("guests", "hosts", "seed", "steps")} == {"guests": 7, "hosts": 4, "seed": 9,
                                                                            "steps": 288}
