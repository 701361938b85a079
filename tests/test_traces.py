"""Trace readers: PlanetLab, Bitbrains raw CSV, long table, and the load_trace dispatcher."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from presplit.traces import TraceError, load_trace, read_bitbrains_csv, read_long_table, read_planetlab

HERE = Path(__file__).resolve().parent
BUNDLED_RAW = HERE / "data" / "bitbrains" / "14.csv"
PLANETLAB_DAY = HERE.parent / "src" / "presplit" / "data" / "planetlab" / "20110303"
SHARED_BITBRAINS = HERE.parent.parent / "shared" / "data" / "bitbrains"

RAW_HEADER = (
    "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\t"
    "Memory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\t"
    "Disk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]"
)
LONG_HEADER = ("vm_id,timestamp,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb,"
               "disk_read_kbps,disk_write_kbps,net_rx_kbps,net_tx_kbps")
BASE = 1_000_000_200  # a multiple of 300, so slot boundaries are easy to reason about
assert BASE % 300 == 0


def raw_row(ts, cpu_cap=2000.0, cpu_use=500.0, mem_cap_kb=2048.0 * 1024, mem_use_kb=1024.0 * 1024,
            disk=(1.0, 2.0), net=(3.0, 4.0)) -> str:
    cores = 1
    pct = 100.0 * cpu_use / cpu_cap if cpu_cap else 0.0
    fields = [ts, cores, cpu_cap, cpu_use, pct, mem_cap_kb, mem_use_kb, *disk, *net]
    return ";\t".join(str(f) for f in fields)


def write_raw(path: Path, rows: list[str], header: str = RAW_HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def write_long_csv(path: Path, rows: list[tuple], header: str = LONG_HEADER) -> Path:
    lines = [header] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def long_row(vm, ts, cpu_cap=2000.0, cpu_use=500.0, mem_cap_kb=2048.0 * 1024, mem_use_kb=1024.0 * 1024):
    return (vm, ts, 1, cpu_cap, cpu_use, mem_cap_kb, mem_use_kb, 1.0, 2.0, 3.0, 4.0)


@pytest.fixture
def shared_bitbrains() -> Path:
    if not (SHARED_BITBRAINS / "rnd_2013-7_first7d.parquet").is_file():
        pytest.skip(f"shared Bitbrains data not present at {SHARED_BITBRAINS}")
    return SHARED_BITBRAINS


# --- PlanetLab ---------------------------------------------------------------


def test_planetlab_bundled_day_shape_and_order():
    w = read_planetlab(PLANETLAB_DAY)
    names = sorted(p.name for p in PLANETLAB_DAY.iterdir() if p.is_file())
    assert w.guest_ids == tuple(names)
    assert w.usage.shape == (len(names), 288, 1)
    assert w.resources == ("cpu",)
    first = [int(x) for x in (PLANETLAB_DAY / names[0]).read_text().split()]
    np.testing.assert_allclose(w.usage[0, :, 0], np.array(first) / 100.0)
    assert 0.0 <= w.usage.min() and w.usage.max() <= 1.0


def _planetlab_folder(tmp_path: Path, values: dict[str, list[str]]) -> Path:
    folder = tmp_path / "day"
    folder.mkdir()
    for name, lines in values.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def test_planetlab_short_file_names_file_and_line(tmp_path):
    folder = _planetlab_folder(tmp_path, {"vm_a": ["5"] * 288, "vm_b": ["5"] * 100})
    with pytest.raises(TraceError) as err:
        read_planetlab(folder)
    assert err.value.path.endswith("vm_b")
    assert err.value.line == 101
    assert "vm_b:101" in str(err.value) and "288" in str(err.value)


def test_planetlab_long_file_names_file_and_line(tmp_path):
    folder = _planetlab_folder(tmp_path, {"vm_a": ["5"] * 289})
    with pytest.raises(TraceError, match=r"vm_a:289: .*288"):
        read_planetlab(folder)


def test_planetlab_non_integer_names_file_and_line(tmp_path):
    lines = ["5"] * 288
    lines[41] = "abc"
    folder = _planetlab_folder(tmp_path, {"vm_a": lines})
    with pytest.raises(TraceError, match=r"vm_a:42: not an integer: 'abc'"):
        read_planetlab(folder)


def test_planetlab_empty_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="empty folder"):
        read_planetlab(tmp_path / "empty")
    with pytest.raises(TraceError, match="no such"):
        read_planetlab(tmp_path / "nope")


def test_planetlab_binary_file_is_a_trace_error(tmp_path):
    folder = tmp_path / "day"
    folder.mkdir()
    (folder / "vm_a").write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(TraceError, match="vm_a"):
        read_planetlab(folder)


# --- Bitbrains raw CSV: the real format ---------------------------------------


def test_bundled_raw_file_shape_units_and_capacity():
    w = read_bitbrains_csv(BUNDLED_RAW)
    assert w.guest_ids == ("14",)
    assert w.resources == ("cpu", "mem", "disk", "net")
    assert w.units == {"cpu": "fraction", "mem": "MB", "disk": "KB/s", "net": "KB/s"}
    assert w.interval_s == 300
    assert w.usage.shape[0] == 1 and w.usage.shape[2] == 4
    assert np.isfinite(w.usage).all()
    cpu = w.resource("cpu")
    assert 0.0 <= cpu.min() and cpu.max() <= 1.0
    # VM 14 is a 1-core 2.6 GHz, 2 GB VM.
    np.testing.assert_allclose(w.capacity[0, :2], [2599.999666, 2048.0])
    assert np.isnan(w.capacity[0, 2:]).all()


def test_bundled_raw_file_timestamps_are_seconds():
    w = read_bitbrains_csv(BUNDLED_RAW)
    # Seconds: July 2013. Read as ms they would be January 1970.
    july_2013, august_2013 = 1_372_636_800, 1_375_315_200
    assert july_2013 <= w.start_epoch_s < august_2013
    assert w.start_epoch_s % 300 == 0
    # 420 non-zero-capacity rows about 300 s apart cover ~420 slots, not ~0.4.
    assert 400 <= w.n_steps <= 440


def test_bundled_raw_file_drops_leading_zero_capacity_rows():
    # The file starts with 8 all-zero rows (VM not yet running); the grid starts at the first real one.
    w = read_bitbrains_csv(BUNDLED_RAW)
    lines = BUNDLED_RAW.read_text().splitlines()[1:]
    first_real = next(int(line.split(";")[0]) for line in lines if float(line.split(";")[2]) > 0)
    assert w.start_epoch_s == first_real // 300 * 300
    assert w.resource("mem").min() > 0


# --- Bitbrains raw CSV: hand-made examples -----------------------------------


def test_regularisation_on_hand_made_example(tmp_path):
    folder = tmp_path / "vms"
    folder.mkdir()
    write_raw(folder / "1.csv", [
        raw_row(BASE + 10, cpu_use=400.0),    # slot 0
        raw_row(BASE + 200, cpu_use=800.0),   # slot 0 -> mean cpu (0.2 + 0.4) / 2
        # slot 1 empty -> carried forward
        raw_row(BASE + 610, cpu_use=3000.0, mem_use_kb=512.0 * 1024),  # slot 2, cpu clipped to 1
    ])
    write_raw(folder / "2.csv", [
        raw_row(BASE + 300 + 5, cpu_use=1000.0, disk=(10.0, 20.0), net=(0.5, 0.25)),  # slot 1
        raw_row(BASE + 900 + 299, cpu_use=0.0),                                       # slot 3
    ])
    w = read_bitbrains_csv(folder)
    assert w.guest_ids == ("1", "2")
    assert w.start_epoch_s == BASE
    assert w.n_steps == 4  # union of [slot 0, 2] and [slot 1, 3]
    np.testing.assert_allclose(w.resource("cpu")[0], [0.3, 0.3, 1.0, 1.0])
    np.testing.assert_allclose(w.resource("cpu")[1], [0.5, 0.5, 0.5, 0.0])  # leading gap backward
    np.testing.assert_allclose(w.resource("mem")[0], [1024.0, 1024.0, 512.0, 512.0])
    np.testing.assert_allclose(w.resource("disk")[1], [30.0, 30.0, 30.0, 3.0])
    np.testing.assert_allclose(w.resource("net")[1], [0.75, 0.75, 0.75, 7.0])
    np.testing.assert_allclose(w.capacity[:, :2], [[2000.0, 2048.0], [2000.0, 2048.0]])


def test_grid_aligns_to_interval_multiples(tmp_path):
    f = write_raw(tmp_path / "1.csv", [raw_row(BASE + 299), raw_row(BASE + 300), raw_row(BASE + 1199)])
    w = read_bitbrains_csv(f)
    assert w.start_epoch_s == BASE and w.n_steps == 4
    w = read_bitbrains_csv(f, interval_s=600)
    assert w.start_epoch_s == BASE and w.n_steps == 2 and w.interval_s == 600


def test_duplicate_timestamps_keep_first(tmp_path):
    f = write_raw(tmp_path / "7.csv", [
        raw_row(BASE, cpu_use=200.0),
        raw_row(BASE, cpu_use=1800.0),  # duplicate: dropped, not averaged in
        raw_row(BASE + 300, cpu_use=600.0),
    ])
    w = read_bitbrains_csv(f)
    np.testing.assert_allclose(w.resource("cpu")[0], [0.1, 0.3])


def test_zero_capacity_rows_are_dropped(tmp_path):
    f = write_raw(tmp_path / "7.csv", [
        raw_row(BASE, cpu_cap=0.0, cpu_use=0.0),           # zero CPU capacity
        raw_row(BASE + 300, cpu_use=1000.0),
        raw_row(BASE + 600, mem_cap_kb=0.0, cpu_use=0.0),  # zero memory capacity
        raw_row(BASE + 900, cpu_use=200.0),
    ])
    w = read_bitbrains_csv(f)
    assert w.start_epoch_s == BASE + 300  # the zero row does not open the grid
    np.testing.assert_allclose(w.resource("cpu")[0], [0.5, 0.5, 0.1])


def test_guest_with_only_zero_capacity_is_dropped(tmp_path):
    folder = tmp_path / "vms"
    folder.mkdir()
    write_raw(folder / "1.csv", [raw_row(BASE)])
    write_raw(folder / "2.csv", [raw_row(BASE, cpu_cap=0.0, cpu_use=0.0)])
    assert read_bitbrains_csv(folder).guest_ids == ("1",)


def test_only_zero_capacity_rows_is_an_error(tmp_path):
    f = write_raw(tmp_path / "1.csv", [raw_row(BASE, cpu_cap=0.0, cpu_use=0.0)])
    with pytest.raises(TraceError, match="no usable rows"):
        read_bitbrains_csv(f)


def test_ids_sort_numerically_when_all_integers(tmp_path):
    folder = tmp_path / "vms"
    folder.mkdir()
    for stem in ("10", "9", "2"):
        write_raw(folder / f"{stem}.csv", [raw_row(BASE)])
    assert read_bitbrains_csv(folder).guest_ids == ("2", "9", "10")
    write_raw(folder / "a.csv", [raw_row(BASE)])
    assert read_bitbrains_csv(folder).guest_ids == ("10", "2", "9", "a")


def test_blank_lines_are_ignored(tmp_path):
    f = tmp_path / "1.csv"
    f.write_text(RAW_HEADER + "\n" + raw_row(BASE) + "\n\n" + raw_row(BASE + 300) + "\n\n")
    assert read_bitbrains_csv(f).n_steps == 2


# --- Bitbrains raw CSV: errors ------------------------------------------------


def test_raw_non_numeric_value_names_file_line_and_column(tmp_path):
    rows = [raw_row(BASE + 300 * i) for i in range(5)]
    rows[3] = rows[3].replace("500.0", "oops", 1)  # CPU usage [MHZ] of data row 4 = line 5
    f = write_raw(tmp_path / "3.csv", rows)
    with pytest.raises(TraceError) as err:
        read_bitbrains_csv(f)
    e = err.value
    assert e.path == str(f) and e.line == 5 and e.column == "CPU usage [MHZ]"
    assert "3.csv:5 column 'CPU usage [MHZ]': not a number: 'oops'" in str(e)


@pytest.mark.parametrize("bad", ["", "nan", "inf"])
def test_raw_empty_or_non_finite_value_names_line_and_column(tmp_path, bad):
    rows = [raw_row(BASE), raw_row(BASE + 300)]
    fields = rows[1].split(";\t")
    fields[6] = bad  # Memory usage [KB]
    rows[1] = ";\t".join(fields)
    f = write_raw(tmp_path / "3.csv", rows)
    with pytest.raises(TraceError) as err:
        read_bitbrains_csv(f)
    assert err.value.line == 3 and err.value.column == "Memory usage [KB]"


def test_raw_wrong_field_count_names_line(tmp_path):
    f = write_raw(tmp_path / "3.csv", [raw_row(BASE), "1000000500;\t1;\t2.0"])
    with pytest.raises(TraceError, match=r"3\.csv:3: 3 fields \(expected 11 fields"):
        read_bitbrains_csv(f)


def test_raw_unknown_header_column(tmp_path):
    f = write_raw(tmp_path / "3.csv", [raw_row(BASE)], header=RAW_HEADER.replace("CPU usage [%]", "CPU load"))
    with pytest.raises(TraceError) as err:
        read_bitbrains_csv(f)
    assert err.value.line == 1 and err.value.column == "CPU load"
    assert "unknown column" in str(err.value) and "Timestamp [ms]" in str(err.value)


def test_raw_missing_header_column(tmp_path):
    header = RAW_HEADER.replace(";\tNetwork transmitted throughput [KB/s]", "")
    f = write_raw(tmp_path / "3.csv", [";\t".join(raw_row(BASE).split(";\t")[:10])], header=header)
    with pytest.raises(TraceError, match="column 'Network transmitted throughput \\[KB/s\\]': column missing"):
        read_bitbrains_csv(f)


def test_raw_header_without_data_rows(tmp_path):
    f = write_raw(tmp_path / "3.csv", [])
    with pytest.raises(TraceError, match=r"3\.csv:2: header but no data rows"):
        read_bitbrains_csv(f)


def test_raw_empty_file(tmp_path):
    f = tmp_path / "3.csv"
    f.write_text("")
    with pytest.raises(TraceError, match=r"3\.csv:1: empty file"):
        read_bitbrains_csv(f)


def test_raw_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        read_bitbrains_csv(tmp_path / "404.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="no .csv files"):
        read_bitbrains_csv(tmp_path / "empty")


def test_raw_ms_timestamps_are_rejected_not_allocated(tmp_path):
    # Someone "fixes" the header's claim and writes milliseconds: the grid would be 1000x too long.
    f = write_raw(tmp_path / "1.csv", [raw_row(0), raw_row(BASE * 1000)])
    with pytest.raises(TraceError, match="column 'timestamp'.*seconds"):
        read_bitbrains_csv(f)


def test_one_bad_file_fails_the_whole_folder(tmp_path):
    folder = tmp_path / "vms"
    folder.mkdir()
    write_raw(folder / "1.csv", [raw_row(BASE)])
    write_raw(folder / "2.csv", [raw_row(BASE).replace(str(BASE), "soon")])
    with pytest.raises(TraceError, match=r"2\.csv:2 column 'Timestamp \[ms\]'"):
        read_bitbrains_csv(folder)


# --- long table ---------------------------------------------------------------


def test_long_csv_matches_raw_reader(tmp_path):
    folder = tmp_path / "vms"
    folder.mkdir()
    write_raw(folder / "1.csv", [raw_row(BASE + 10, cpu_use=400.0), raw_row(BASE + 610, cpu_use=3000.0)])
    write_raw(folder / "12.csv", [raw_row(BASE + 305, cpu_use=1000.0), raw_row(BASE + 305, cpu_use=5.0),
                                  raw_row(BASE + 900, cpu_cap=0.0, cpu_use=0.0)])
    long = write_long_csv(tmp_path / "long.csv", [
        long_row(12, BASE + 305, cpu_use=1000.0), long_row(1, BASE + 10, cpu_use=400.0),
        long_row(12, BASE + 305, cpu_use=5.0), long_row(12, BASE + 900, cpu_cap=0.0, cpu_use=0.0),
        long_row(1, BASE + 610, cpu_use=3000.0),
    ])
    a, b = read_bitbrains_csv(folder), read_long_table(long)
    assert a.guest_ids == b.guest_ids == ("1", "12")
    assert a.start_epoch_s == b.start_epoch_s
    np.testing.assert_array_equal(a.usage, b.usage)
    np.testing.assert_array_equal(a.capacity, b.capacity)
    assert a.units == b.units


def test_long_parquet_matches_long_csv(tmp_path):
    rows = [long_row(3, BASE), long_row(3, BASE + 300, cpu_use=100.0), long_row(20, BASE + 600)]
    csv_file = write_long_csv(tmp_path / "t.csv", rows)
    names = LONG_HEADER.split(",")
    table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
    pq.write_table(table, tmp_path / "t.parquet")
    a, b = read_long_table(csv_file), read_long_table(tmp_path / "t.parquet")
    assert a.guest_ids == b.guest_ids == ("3", "20")
    np.testing.assert_array_equal(a.usage, b.usage)


def test_long_string_ids_sort_as_strings(tmp_path):
    f = write_long_csv(tmp_path / "t.csv", [long_row("vm-b", BASE), long_row("vm-a", BASE), long_row("10", BASE)])
    assert read_long_table(f).guest_ids == ("10", "vm-a", "vm-b")


def test_long_unknown_column_names_it_and_lists_expected(tmp_path):
    f = write_long_csv(tmp_path / "t.csv", [(*long_row(1, BASE), 9)], header=LONG_HEADER + ",gpu_usage")
    with pytest.raises(TraceError) as err:
        read_long_table(f)
    msg = str(err.value)
    assert err.value.column == "gpu_usage" and err.value.line == 1
    assert "unknown column" in msg and "vm_id" in msg and "net_tx_kbps" in msg


def test_long_parquet_unknown_column(tmp_path):
    pq.write_table(pa.table({"vm_id": [1], "when": [BASE]}), tmp_path / "t.parquet")
    with pytest.raises(TraceError, match=r"t\.parquet column 'when': unknown column \(expected columns vm_id"):
        read_long_table(tmp_path / "t.parquet")


def test_long_missing_column(tmp_path):
    header = LONG_HEADER.replace(",net_tx_kbps", "")
    f = write_long_csv(tmp_path / "t.csv", [long_row(1, BASE)[:-1]], header=header)
    with pytest.raises(TraceError, match="column 'net_tx_kbps': missing column"):
        read_long_table(f)


def test_long_csv_non_numeric_names_line_and_column(tmp_path):
    rows = [long_row(1, BASE), long_row(1, BASE + 300)]
    rows[1] = (*rows[1][:7], "n/a", *rows[1][8:])
    f = write_long_csv(tmp_path / "t.csv", rows)
    with pytest.raises(TraceError, match=r"t\.csv:3 column 'disk_read_kbps': not a number: 'n/a'"):
        read_long_table(f)


def test_long_csv_header_without_rows(tmp_path):
    with pytest.raises(TraceError, match="header but no data rows"):
        read_long_table(write_long_csv(tmp_path / "t.csv", []))


def test_long_parquet_null_value_names_row_and_column(tmp_path):
    names = LONG_HEADER.split(",")
    data = {n: [v, v] for n, v in zip(names, long_row(1, BASE))}
    data["mem_usage_kb"] = [1.0, None]
    pq.write_table(pa.table(data), tmp_path / "t.parquet")
    with pytest.raises(TraceError, match=r"column 'mem_usage_kb': missing value in row 2"):
        read_long_table(tmp_path / "t.parquet")


def test_long_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        read_long_table(tmp_path / "nope.parquet")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(TraceError, match="unknown file type '.txt'"):
        read_long_table(tmp_path / "t.txt")


# --- load_trace -----------------------------------------------------------------


def test_load_trace_dispatches_every_kind(tmp_path):
    assert load_trace(PLANETLAB_DAY).usage.shape[1:] == (288, 1)
    assert load_trace(BUNDLED_RAW).guest_ids == ("14",)
    folder = tmp_path / "vms"
    folder.mkdir()
    shutil.copy(BUNDLED_RAW, folder / "14.csv")
    write_raw(folder / "3.csv", [raw_row(1_375_100_000)])
    assert load_trace(folder).guest_ids == ("3", "14")
    long = write_long_csv(tmp_path / "long.csv", [long_row(5, BASE)])
    assert load_trace(long).guest_ids == ("5",)
    names = LONG_HEADER.split(",")
    pq.write_table(pa.table({n: [v] for n, v in zip(names, long_row(6, BASE))}), tmp_path / "t.parquet")
    assert load_trace(tmp_path / "t.parquet").guest_ids == ("6",)


def test_load_trace_unknown_or_missing_says_what_is_accepted(tmp_path):
    for bad in (tmp_path / "missing", tmp_path / "x.json"):
        if bad.suffix:
            bad.write_text("{}")
        with pytest.raises(TraceError, match="expected a PlanetLab day folder.*Bitbrains.*parquet"):
            load_trace(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="empty folder.*PlanetLab"):
        load_trace(tmp_path / "empty")
    words = tmp_path / "words"
    words.mkdir()
    (words / "readme").write_text("hello\n")
    with pytest.raises(TraceError, match="cannot tell the trace kind"):
        load_trace(words)


def test_load_trace_routes_bad_files_to_the_precise_error(tmp_path):
    day = _planetlab_folder(tmp_path, {"vm_a": ["7"] * 10})
    with pytest.raises(TraceError, match=r"vm_a:11: "):
        load_trace(day)
    f = write_raw(tmp_path / "1.csv", [raw_row(BASE)], header=RAW_HEADER.replace("CPU cores", "Cores"))
    with pytest.raises(TraceError, match="column 'Cores': unknown column"):
        load_trace(f)


# --- real shared data (skipped when ../shared is absent) -------------------------


def test_shared_parquet_reads_fast_and_matches_raw(shared_bitbrains):
    t0 = time.perf_counter()
    w = read_long_table(shared_bitbrains / "rnd_2013-7_first7d.parquet")
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"parquet took {elapsed:.2f} s"
    # 429 VMs in the file; 38 and 54 have only zero-capacity rows and are dropped.
    assert w.usage.shape == (427, 7 * 288, 4)
    assert "38" not in w.guest_ids and "54" not in w.guest_ids
    ids = [int(g) for g in w.guest_ids]
    assert ids == sorted(ids)
    assert np.isfinite(w.usage).all()
    assert w.start_epoch_s == 1_372_629_600
    raw_folder = shared_bitbrains / "raw-2013-7-sample"
    if raw_folder.is_dir():
        raw = read_bitbrains_csv(raw_folder / "1.csv")
        np.testing.assert_allclose(w.usage[0], raw.usage[0, : w.n_steps])


def test_shared_raw_folder(shared_bitbrains):
    folder = shared_bitbrains / "raw-2013-7-sample"
    if not folder.is_dir():
        pytest.skip("raw sample not present")
    w = load_trace(folder)
    assert w.guest_ids == tuple(str(i) for i in range(1, 21))
    assert w.usage.shape == (20, 30 * 288, 4)
    assert np.isfinite(w.usage).all()
