"""Bad inputs through the real CLI: one line naming file, line or key and what was expected, exit 2, nothing written.

Table-driven: every case builds its own tiny inputs in ``tmp_path`` (a few
Bitbrains rows, a PlanetLab day of two VMs, a small scenario YAML) and runs one
command through ``CliRunner``. Each must fail before any simulation starts, so
every case takes milliseconds. For each case we assert:

- exit code 2 (bad input);
- the output is exactly one line ``presplit <command>: error: ...`` (or, for an
  option click itself refuses, click's ``Error:`` usage message), with no
  traceback;
- the line names the culprit (file and line, column, key path, option, guest);
- nothing was written: the ``--json``/``--out`` target does not exist and the
  files under ``tmp_path`` are exactly those the case created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.scenarios import bundled_planetlab_day

BUNDLED_DAY = bundled_planetlab_day("20110303")

# --------------------------------------------------------------------------- tiny inputs

RAW_COLUMNS = ("Timestamp [ms]", "CPU cores", "CPU capacity provisioned [MHZ]", "CPU usage [MHZ]", "CPU usage [%]",
               "Memory capacity provisioned [KB]", "Memory usage [KB]", "Disk read throughput [KB/s]",
               "Disk write throughput [KB/s]", "Network received throughput [KB/s]",
               "Network transmitted throughput [KB/s]")
LONG_COLUMNS = ("vm_id", "timestamp", "cpu_cores", "cpu_capacity_mhz", "cpu_usage_mhz", "mem_capacity_kb",
                "mem_usage_kb", "disk_read_kbps", "disk_write_kbps", "net_rx_kbps", "net_tx_kbps")
BASE = 1_372_629_600  # 2013-07-01, a multiple of 300


def raw_rows(n=4, *, mem_cap_kb=4_194_304.0):
    """Rows of one Bitbrains VM, as lists of field strings (column order of RAW_COLUMNS)."""
    return [[str(BASE + 300 * i), "2", "5200.0", "1300.0", "25.0", str(mem_cap_kb), "1048576.0", "10.0", "5.0",
             "3.0", "2.0"] for i in range(n)]


def write_raw(path: Path, rows, sep=";\t") -> Path:
    """A raw Bitbrains CSV; ``rows`` are field lists (joined by ``sep``), or strings written as they are."""
    lines = [sep.join(RAW_COLUMNS)] + [r if isinstance(r, str) else sep.join(r) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def raw_with(column: str, value: str, *, row=2):
    """A raw file whose data row ``row`` (0-based; line row + 2) has ``value`` in ``column``."""
    def build(tmp: Path) -> Path:
        rows = raw_rows()
        rows[row][RAW_COLUMNS.index(column)] = value
        return write_raw(tmp / "bb" / "7.csv", rows)
    return build


def long_rows(n=4):
    return [["1", str(BASE + 300 * i), "2", "5200.0", "1300.0", "4194304.0", "1048576.0", "10.0", "5.0", "3.0",
             "2.0"] for i in range(n)]


def long_csv_with(column: str, value: str, *, row=2):
    def build(tmp: Path) -> Path:
        rows = long_rows()
        rows[row][LONG_COLUMNS.index(column)] = value
        path = tmp / "long.csv"
        path.write_text("\n".join([",".join(LONG_COLUMNS)] + [",".join(r) for r in rows]) + "\n")
        return path
    return build


def long_parquet_with(column: str, value: float, *, row=2, n=4):
    def build(tmp: Path) -> Path:
        cols = {name: np.array([float(r[i]) for r in long_rows(n)]) for i, name in enumerate(LONG_COLUMNS)
                if name not in ("vm_id",)}
        cols[column][row] = value
        path = tmp / "long.parquet"
        pq.write_table(pa.table({"vm_id": pa.array(["1"] * n), **cols}), path)
        return path
    return build


def planetlab_day(folder: Path, n_vms=2, *, override: dict | None = None, steps=288) -> Path:
    """A PlanetLab day: one file per VM, ``steps`` integer percents; ``override`` {line (1-based): text} in vm0."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for v in range(n_vms):
        lines = [str(x) for x in rng.integers(5, 60, size=steps)]
        if v == 0:
            for line, text in (override or {}).items():
                lines[line - 1] = text
        (folder / f"vm{v}").write_text("\n".join(lines) + "\n")
    return folder


def planetlab_with(override: dict | None = None, *, steps=288):
    return lambda tmp: planetlab_day(tmp / "day", override=override, steps=steps)


SMALL = """\
name: small
interval_s: 300
hosts:
  - {name: h, count: 2, cores: 4, mips_per_core: 2600, ram_gb: 8, racks: 1,
     power_w: [100, 130, 150, 170, 190, 210, 230, 250, 270, 290, 310]}
services:
  minimal: [{name: vmm, cores: 1, mem_gb: 2}]
migration: {bandwidth_share: 0.5, max_rounds: 30}
fabric: {oversubscription: 3}
patch:
  duration_per_domain: 30m
  calendar:
    groups: {first: ["h-0?"]}
    rules: [{group: first, rrule: "FREQ=DAILY", dtstart: "2013-07-01T01:00", duration: 2h, tz: UTC}]
guests:
  trace: TRACE
  default_size: {cores: 1, ram_gb: 2}
  seed: 1
  arrivals: at-start
"""


def scenario(old: str = "", new: str = "", *, trace: str | Callable = "day"):
    """A small domain scenario (``old`` replaced by ``new``) next to a PlanetLab day it reads."""
    def build(tmp: Path) -> Path:
        if callable(trace):
            path = trace(tmp)
        else:
            path = planetlab_day(tmp / trace) if trace == "day" else tmp / trace
        text = SMALL.replace("TRACE", str(path))
        if old:
            assert old in text, old
            text = text.replace(old, new)
        out = tmp / "small.yaml"
        out.write_text(text)
        return out
    return build


def bitbrains_folder(*, big_mem_kb=None, big_cpu_mhz=None):
    """Three Bitbrains VMs; VM 2 optionally far larger than any host of SMALL (8 GB, 4 x 2600 MIPS)."""
    def build(tmp: Path) -> Path:
        folder = tmp / "vms"
        for vm in (1, 2, 3):
            rows = raw_rows(6, mem_cap_kb=big_mem_kb if (vm == 2 and big_mem_kb) else 2_097_152.0)
            if vm == 2 and big_cpu_mhz:
                for r in rows:
                    r[2] = str(big_cpu_mhz)
            write_raw(folder / f"{vm}.csv", rows)
        return folder
    return build


def write_bytes(name: str, data: bytes):
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return build


def write_text(name: str, text: str):
    def build(tmp: Path) -> Path:
        path = tmp / name
        path.write_text(text)
        return path
    return build


def nothing(tmp: Path) -> None:
    return None


def comma_folder(tmp: Path) -> Path:
    return write_raw(tmp / "bb" / "7.csv", raw_rows(), sep=",").parent


def truncated_raw(tmp: Path) -> Path:
    return write_raw(tmp / "bb" / "7.csv", raw_rows()[:2] + ["1372630200;\t2;\t52"])


def binary_day(tmp: Path) -> Path:
    (tmp / "day").mkdir()
    (tmp / "day" / "vm0").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    return tmp / "day"


def short_bitbrains(tmp: Path) -> Path:
    return write_raw(tmp / "short" / "1.csv", raw_rows(5)).parent


def idle_day(tmp: Path) -> Path:
    folder = tmp / "idle"
    folder.mkdir()
    for v in range(3):
        (folder / f"vm{v}").write_text("0\n" * 288)
    return folder


def make_folder(name: str):
    return lambda tmp: (tmp / name).mkdir()


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """``args`` may hold ``{input}`` (the built input), ``{tmp}`` and ``{day}`` (the bundled PlanetLab day)."""

    id: str
    build: Callable[[Path], Path | None]
    args: str
    needles: tuple[str, ...]
    click_usage: bool = False  # refused by click itself: its "Error:" usage message
    env: dict = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # substrings that must NOT be in the output


SIM = "simulate --policy dvfs --json {tmp}/out.json --trace {input}"

CASES = [
    # --- Bitbrains raw per-VM CSV (";\t"): every resource, negative / NaN / inf / absurd, named by file:line column
    Case("raw-negative-mem-usage", raw_with("Memory usage [KB]", "-5"), SIM,
         ("7.csv:4", "'Memory usage [KB]'", "-5 is negative", "KB from 0")),
    Case("raw-negative-mem-capacity", raw_with("Memory capacity provisioned [KB]", "-4194304"), SIM,
         ("7.csv:4", "'Memory capacity provisioned [KB]'", "negative")),
    Case("raw-nan-disk-read", raw_with("Disk read throughput [KB/s]", "nan"), SIM,
         ("7.csv:4", "'Disk read throughput [KB/s]'", "not a finite number", "KB/s from 0")),
    Case("raw-negative-disk-write", raw_with("Disk write throughput [KB/s]", "-0.5", row=0), SIM,
         ("7.csv:2", "'Disk write throughput [KB/s]'", "negative")),
    Case("raw-inf-net-tx", raw_with("Network transmitted throughput [KB/s]", "inf", row=3), SIM,
         ("7.csv:5", "'Network transmitted throughput [KB/s]'", "not a finite number")),
    Case("raw-negative-net-rx", raw_with("Network received throughput [KB/s]", "-3"), SIM,
         ("7.csv:4", "'Network received throughput [KB/s]'", "negative")),
    Case("raw-negative-cpu-usage", raw_with("CPU usage [MHZ]", "-1300"), SIM,
         ("7.csv:4", "'CPU usage [MHZ]'", "negative", "MHz")),
    Case("raw-absurd-cpu-capacity", raw_with("CPU capacity provisioned [MHZ]", "1e300"), SIM,
         ("7.csv:4", "'CPU capacity provisioned [MHZ]'", "plausible maximum", "10 THz")),
    Case("raw-empty-mem-field", raw_with("Memory usage [KB]", ""), SIM,
         ("7.csv:4", "'Memory usage [KB]'", "empty value")),
    Case("raw-truncated-line", truncated_raw, SIM, ("7.csv:4", "3 fields", "11 fields")),
    Case("raw-comma-separated-folder", comma_folder, SIM, ("7.csv:1", "separated by ','", "not by ';'")),
    Case("raw-comma-separated-file", lambda tmp: write_raw(tmp / "7.csv", raw_rows(), sep=","), SIM,
         ("7.csv:1", "separated by ','")),
    Case("raw-words-in-number", raw_with("CPU usage [MHZ]", "lots"), SIM,
         ("7.csv:4", "not a number: 'lots'")),
    # --- long tables, CSV (file:line) and Parquet (file, row)
    Case("long-csv-negative-disk", long_csv_with("disk_write_kbps", "-1"), SIM,
         ("long.csv:4", "'disk_write_kbps'", "negative")),
    Case("long-csv-nan-mem", long_csv_with("mem_usage_kb", "NaN", row=1), SIM,
         ("long.csv:3", "'mem_usage_kb'", "KB from 0")),
    Case("long-csv-truncated", lambda tmp: write_text("long.csv", ",".join(LONG_COLUMNS) + "\n1,1372629600,2,5200\n")(tmp),
         SIM, ("long.csv:2", "4 fields", "11 fields")),
    Case("parquet-negative-mem-usage", long_parquet_with("mem_usage_kb", -1.0), SIM,
         ("long.parquet", "'mem_usage_kb'", "negative in row 3")),
    Case("parquet-nan-net", long_parquet_with("net_rx_kbps", float("nan"), row=1), SIM,
         ("long.parquet", "'net_rx_kbps'", "not a finite number in row 2")),
    Case("parquet-absurd-mem-capacity", long_parquet_with("mem_capacity_kb", 1e20), SIM,
         ("long.parquet", "'mem_capacity_kb'", "plausible maximum", "row 3")),
    # --- PlanetLab day folders: integers 0..100, 288 per file
    Case("planetlab-over-100", planetlab_with({5: "101"}), SIM, ("vm0:5", "CPU percent 101 out of range", "0-100")),
    Case("planetlab-negative", planetlab_with({7: "-3"}), SIM, ("vm0:7", "-3 out of range")),
    Case("planetlab-words", planetlab_with({9: "abc"}), SIM, ("vm0:9", "not an integer: 'abc'")),
    Case("planetlab-fraction", planetlab_with({3: "12.5"}), SIM, ("vm0:3", "not an integer: '12.5'")),
    Case("planetlab-underscore", planetlab_with({4: "5_0"}), SIM, ("vm0:4", "not an integer: '5_0'")),
    Case("planetlab-truncated", planetlab_with(steps=100), SIM, ("vm0:101", "file ends after 100 values", "288")),
    Case("planetlab-binary", binary_day, SIM, ("vm0:1", "binary data", "PlanetLab")),
    Case("trace-shorter-than-a-day", short_bitbrains, SIM,
         ("--trace", "short", "5 steps", "CloudSim engine replays 24 h", "288 steps")),
    # --- scenario files: not YAML, and values out of range, named by key path
    Case("scenario-random-bytes", write_bytes("rand.yaml", bytes(np.random.default_rng(1).integers(128, 256, 300,
                                                                                                  dtype=np.uint8))),
         "simulate --scenario {input} --json {tmp}/out.json", ("rand.yaml", "not a UTF-8 YAML file")),
    Case("scenario-png", write_bytes("picture.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
         "simulate --scenario {input}", ("picture.png", "not a UTF-8 YAML file")),
    Case("scenario-nul-bytes", write_bytes("nul.yaml", b"name: x\x00\x00"), "explain --scenario {input} --guest 0",
         ("nul.yaml", "NUL byte")),
    Case("scenario-empty", write_text("empty.yaml", ""), "simulate --scenario {input}", ("empty.yaml", "empty file")),
    Case("scenario-list", write_text("list.yaml", "- a\n- b\n"), "simulate --scenario {input}",
         ("list.yaml", "list at top level", "mapping")),
    Case("scenario-bad-yaml", write_text("broken.yaml", "name: [1, 2\n"), "simulate --scenario {input}",
         ("broken.yaml", "not valid YAML at line 2")),
    Case("scenario-negative-count", scenario("count: 2", "count: -3"), "simulate --scenario {input}",
         ("small.yaml", "hosts[0].count", "-3 is negative", "integer >= 1")),
    Case("scenario-fractional-cores", scenario("cores: 4", "cores: 2.5"), "simulate --scenario {input}",
         ("hosts[0].cores", "2.5 is not a whole number", "integer >= 1")),
    Case("scenario-nan-ram", scenario("ram_gb: 8", "ram_gb: .nan"), "simulate --scenario {input}",
         ("hosts[0].ram_gb", "not a finite number")),
    Case("scenario-hosts-not-list", write_text("hosts.yaml", "name: x\nhosts: -3\nguests: {trace: day}\n"),
         "simulate --scenario {input}", ("hosts.yaml", "hosts: -3 is an int", "a list")),
    Case("scenario-negative-interval", scenario("interval_s: 300", "interval_s: -300"), "simulate --scenario {input}",
         ("interval_s", "negative", "> 0")),
    Case("scenario-negative-seed", scenario("seed: 1", "seed: -1"), "simulate --scenario {input}",
         ("guests.seed", "negative", ">= 0")),
    Case("scenario-inf-replicas", scenario("seed: 1", "seed: 1\n  replicas: .inf"), "simulate --scenario {input}",
         ("guests.replicas", "not a finite number")),
    Case("scenario-share-above-one", scenario("bandwidth_share: 0.5", "bandwidth_share: 1.5"),
         "simulate --scenario {input}", ("migration.bandwidth_share", "above the maximum 1", "<= 1")),
    Case("scenario-zero-rounds", scenario("max_rounds: 30", "max_rounds: 0"), "simulate --scenario {input}",
         ("migration.max_rounds", "is zero")),
    Case("scenario-nan-window-duration", scenario("duration: 2h", "duration: .nan"), "simulate --scenario {input}",
         ("patch.calendar.rules[0].duration", "not a finite number")),
    Case("scenario-inf-patch-duration", scenario("duration_per_domain: 30m", "duration_per_domain: .inf"),
         "simulate --scenario {input}", ("patch.duration_per_domain", "not a finite number")),
    Case("scenario-negative-watts", scenario("150, 170", "150, -170"), "simulate --scenario {input}",
         ("hosts[0].power_w[3]", "-170", "finite numbers >= 0")),
    Case("scenario-negative-service-memory", scenario("mem_gb: 2}", "mem_gb: -1}"), "simulate --scenario {input}",
         ("services.minimal[0].mem_gb", "negative")),
    Case("scenario-zero-oversubscription", scenario("oversubscription: 3", "oversubscription: 0"),
         "simulate --scenario {input}", ("fabric.oversubscription", "is zero")),
    Case("scenario-fractional-default-cores", scenario("cores: 1, ram_gb: 2", "cores: 0.5, ram_gb: 2"),
         "simulate --scenario {input}", ("guests.default_size.cores", "not a whole number")),
    Case("scenario-host-smaller-than-services", scenario("mem_gb: 2}", "mem_gb: 9}"), "simulate --scenario {input}",
         ("hosts[0]", "services.minimal take")),
    Case("scenario-huge-host-count", scenario("count: 2", "count: 10000000000"), "simulate --scenario {input}",
         ("hosts[0].count", "above the maximum")),
    # --- a scenario's own trace: named by scenario and key, never as --trace
    Case("scenario-own-trace-missing", scenario(trace="nowhere/trace.parquet"),
         "simulate --scenario {input} --json {tmp}/out.json",
         ("scenario 'small'", "guests.trace", "nowhere/trace.parquet", "not found", "pass --trace PATH"),
         absent=("error: --trace",)),
    Case("explain-own-trace-missing", scenario(trace="nowhere/trace.parquet"),
         "explain --scenario {input} --guest 0", ("scenario 'small'", "guests.trace", "not found"),
         absent=("error: --trace",)),
    Case("bighost-patch-without-data", nothing, "simulate --scenario bighost-patch --policy evacuate",
         ("scenario 'bighost-patch'", "guests.trace", "not found", "PRESPLIT_DATA",
          "bitbrains/rnd_2013-7_first7d.parquet"),
         env={"PRESPLIT_DATA": "/nonexistent-presplit-data"}, absent=("error: --trace",)),
    Case("user-trace-missing-for-scenario", scenario(), "simulate --scenario {input} --trace {tmp}/missing.parquet",
         ("error: --trace", "missing.parquet", "not found")),
    Case("scenario-trace-bad-values", scenario(trace=raw_with("Memory usage [KB]", "-5")),
         "simulate --scenario {input}", ("scenario 'small'", "guests.trace", "7.csv:4", "negative")),
    # --- guests no host can hold
    Case("guest-memory-bigger-than-hosts", scenario(trace=bitbrains_folder(big_mem_kb=16_777_216.0)),
         "simulate --scenario {input} --policy presplit --json {tmp}/out.json",
         ("small.yaml", "guest '2'", "16,384 MB", "6,144 MB", "max_ram_gb")),
    Case("guest-cpu-bigger-than-hosts", scenario(trace=bitbrains_folder(big_cpu_mhz=52_000.0)),
         "explain --scenario {input} --guest 0", ("guest '2'", "MIPS", "cpu_overcommit")),
    # --- policy / scenario engine mismatches
    Case("evacuate-on-cloudsim", nothing, "simulate --policy evacuate --json {tmp}/out.json",
         ("--policy", "policy 'evacuate'", "scenario 'cloudsim'", "domain", "bighost-patch")),
    Case("cloudsim-policy-on-domain-scenario", scenario(), "simulate --scenario {input} --policy lr-mmt:1.2",
         ("policy 'lr-mmt:1.2'", "scenario 'small'", "evacuate, presplit", "--scenario cloudsim")),
    Case("unknown-policy-on-domain-scenario", scenario(), "simulate --scenario {input} --policy bogus",
         ("unknown policy 'bogus'",), absent=("CloudSim engine only",)),
    Case("explain-cloudsim-scenario", nothing, "explain --scenario cloudsim --guest 1",
         ("'cloudsim'", "explain needs a domain scenario")),
    Case("explain-cloudsim-policy", scenario(), "explain --scenario {input} --guest 0 --policy dvfs",
         ("policy 'dvfs'", "domain engine")),
    Case("explain-unknown-guest", scenario(), "explain --scenario {input} --guest nope",
         ("--guest", "no guest 'nope'", "vm0")),
    Case("sweep-domain-policy", nothing, "sweep --policy evacuate --trace {day} --out {tmp}/r.parquet",
         ("policy 'evacuate'", "domain engine")),
    Case("sweep-domain-scenario", scenario(), "sweep --policy dvfs --scenario {input} --out {tmp}/r.parquet",
         ("--scenario", "domain", "CloudSim-engine scenarios")),
    # --- output files in a folder that does not exist: refused before the run
    Case("simulate-json-missing-folder", nothing, "simulate --policy dvfs --json {tmp}/no/dir/out.json",
         ("--json", "no/dir/out.json", "does not exist")),
    Case("simulate-domain-json-missing-folder", scenario(), "simulate --scenario {input} --json {tmp}/no/out.json",
         ("--json", "no/out.json", "does not exist")),
    Case("backtest-json-missing-folder", nothing, "forecast backtest --trace {day} --json {tmp}/no/bt.json",
         ("--json", "no/bt.json", "does not exist")),
    Case("backtest-plot-missing-folder", nothing, "forecast backtest --trace {day} --plot {tmp}/no/bt.png",
         ("--plot", "no/bt.png", "does not exist")),
    Case("forecast-plot-missing-folder", nothing, "forecast plot --trace {day} --out {tmp}/no/p.png",
         ("--out", "no/p.png", "does not exist")),
    Case("bench-json-missing-folder", nothing, "bench tick --guests 100 --hosts 10 --json {tmp}/no/tick.json",
         ("--json", "no/tick.json", "does not exist")),
    Case("sweep-out-missing-folder", nothing, "sweep --policy dvfs --out {tmp}/no/r.parquet",
         ("--out", "no/r.parquet", "does not exist")),
    Case("report-out-missing-folder", nothing, "report {tmp}/r.parquet --out {tmp}/no/report.html",
         ("--out", "no/report.html", "does not exist")),
    Case("json-is-a-folder", make_folder("adir"), "bench tick --guests 10 --hosts 2 --json {tmp}/adir",
         ("--json", "adir", "is a folder")),
    # --- synthetic fleets
    Case("fleet-absurd-vm", raw_with("Memory capacity provisioned [KB]", "1e300"),
         "fleet generate --guests 20 --hosts 10 --seed 1 --from-trace {input} --out {tmp}/fleet",
         ("--from-trace", "7.csv:4", "'Memory capacity provisioned [KB]'", "plausible maximum")),
    Case("fleet-idle-source", idle_day,
         "fleet generate --guests 20 --hosts 10 --seed 1 --from-trace {input} --out {tmp}/fleet",
         ("--from-trace", "idle", "CPU is 0 in every step", "no demand")),
    Case("fleet-too-few-hosts", nothing,
         "fleet generate --guests 50 --hosts 2 --seed 1 --from-trace {day} --out {tmp}/fleet",
         ("--hosts 2", "too few for 50 guests", "at least")),
    Case("fleet-zero-guests", nothing, "fleet generate --guests 0 --hosts 2 --from-trace {day} --out {tmp}/fleet",
         ("--guests", "positive number of guests")),
    Case("fleet-negative-seed", nothing,
         "fleet generate --guests 5 --hosts 5 --seed -4 --from-trace {day} --out {tmp}/fleet", ("--seed", ">= 0")),
    Case("fleet-negative-parquet-source", long_parquet_with("disk_read_kbps", -7.0),
         "fleet generate --guests 5 --hosts 5 --from-trace {input} --out {tmp}/fleet",
         ("long.parquet", "'disk_read_kbps'", "negative")),
    # --- other options
    Case("simulate-negative-seed", nothing, "simulate --policy lr-rs --seed -1 --json {tmp}/out.json",
         ("--seed", ">= 0")),
    Case("backtest-nan-threshold", nothing, "forecast backtest --trace {day} --threshold nan",
         ("--threshold", "not a finite number")),
    Case("bench-zero-guests", nothing, "bench tick --guests 0 --hosts 10", ("--guests",), click_usage=True),
]


COMMANDS = {"simulate", "explain", "forecast", "bench", "sweep", "report", "fleet"}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_the_table_is_large_and_distinct():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    built = case.build(work)
    args = case.args.format(input=built, tmp=work, day=BUNDLED_DAY).split()
    targets = [Path(a) for a in args if a.startswith(str(work)) and Path(a).suffix in (".json", ".parquet", ".png",
                                                                                         ".html")
               and not Path(a).exists()]
    targets += [work / "fleet"]
    before = _tree(work)

    result = CliRunner().invoke(cli, args, env=case.env or None)

    out = result.output
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    if case.click_usage:
        assert lines[-1].startswith("Error:"), out
    else:
        command = args[0]
        assert command in COMMANDS
        assert len(lines) == 1, out
        assert lines[0].startswith(f"presplit {command}") and ": error: " in lines[0], out
        assert "internal error" not in out, out
    for needle in case.needles:
        assert needle in out, (needle, out)
    for needle in case.absent:
        assert needle not in out, (needle, out)
    for target in targets:
        assert not target.exists(), target
    assert _tree(work) == before, "the command wrote or changed files"
