"""Bad input to the controller's commands and stores: one clear line, the right exit code, nothing changed.

Table-driven: each case is a command line run through the real CLI (click's
runner, in process) against a folder that holds a good journal and world
store from a short run, a file of random bytes, an empty file, profiles and
scenarios with bad values. Each case asserts the exit code (2: bad input, 1:
a store that cannot be used), that the output is one line naming the input
and what was expected (never a traceback), and that every file in the folder
is byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.service.demo import demo_scenario

# (id, command line with {d} for the folder, exit code, text the message must hold)
CASES = [
    # ------------------------------------------------------------ options
    ("interval-nan", "run --scenario {d}/demo.yaml --db {d}/good.db --interval nan", 2, "not finite"),
    ("interval-inf", "run --scenario {d}/demo.yaml --db {d}/good.db --interval inf", 2, "not finite"),
    ("interval-zero", "run --scenario {d}/demo.yaml --db {d}/good.db --interval 0s", 2, "not a positive duration"),
    ("interval-words", "run --scenario {d}/demo.yaml --db {d}/good.db --interval soon", 2, "cannot read duration"),
    ("until-nan", "run --scenario {d}/demo.yaml --db {d}/good.db --until nan", 2, "not finite"),
    ("until-negative", "run --scenario {d}/demo.yaml --db {d}/good.db --until -5", 2, "negative"),
    ("fail-fraction-2", "run --scenario {d}/demo.yaml --db {d}/good.db --fail-fraction 2", 2, "between 0 and 1"),
    ("fail-fraction-neg", "run --scenario {d}/demo.yaml --db {d}/good.db --fail-fraction -0.5", 2, "between 0 and 1"),
    ("fail-fraction-nan", "run --scenario {d}/demo.yaml --db {d}/good.db --fail-fraction nan", 2, "between 0 and 1"),
    ("unknown-scenario", "run --scenario nosuch --db {d}/good.db", 2, "nosuch"),
    ("binary-scenario", "run --scenario {d}/binary.yaml --db {d}/good.db", 2, "binary.yaml"),
    # ------------------------------------------------------------ profiles (the same schema as PUT /api/profile)
    ("profile-target-negative", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-target.yaml", 2,
     "policies[0].args.target"),
    ("profile-target-nan", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-nan.yaml", 2,
     "not a finite number"),
    ("profile-max-total-negative", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-maxneg.yaml", 2,
     "args.max_total"),
    ("profile-max-total-fraction", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-maxfrac.yaml", 2,
     "fractional part"),
    ("profile-spare-negative", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-spare.yaml", 2,
     "args.spare_hosts"),
    ("profile-evacuate-high", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-high.yaml", 2,
     "args.high"),
    ("profile-interval-nan", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-interval.yaml", 2,
     "interval"),
    ("profile-needs-forecasts", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-needs.yaml", 2,
     "not a tunable parameter"),
    ("profile-string-number", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-string.yaml", 2,
     "is not a number"),
    ("profile-bool-number", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-bool.yaml", 2,
     "is not a number"),
    ("profile-shares-crossed", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-shares.yaml", 2,
     "min_migration_share"),
    ("profile-cap-fraction", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/p-cap.yaml", 2,
     "caps.total"),
    ("profile-not-yaml", "run --scenario {d}/demo.yaml --db {d}/good.db --profile {d}/binary.yaml", 2, "binary.yaml"),
    # a CloudSim-engine policy with arguments: the error names its argument, not the other world
    ("profile-cloudsim-args", "run --scenario cloudsim --db {d}/cs.db --profile {d}/p-lrmmt.yaml", 2,
     "policies[0].args.safety: policy 'lr-mmt' takes no arguments on the CloudSim engine"),
    ("profile-cloudsim-presplit-args", "run --scenario cloudsim --db {d}/cs.db --profile {d}/p-target-ok.yaml", 2,
     "policy 'presplit' takes no arguments on the CloudSim engine"),
    # ------------------------------------------------------------ journal URLs and files
    ("db-unsupported-url", "run --scenario {d}/demo.yaml --db mysql://u@127.0.0.1/x", 1, "unsupported journal URL"),
    ("db-sqlite-no-path", "run --scenario {d}/demo.yaml --db sqlite://", 1, "needs a file path"),
    ("db-folder-missing", "run --scenario {d}/demo.yaml --db {d}/nofolder/j.db", 1, "does not exist"),
    ("db-postgres-unreachable", "run --scenario {d}/demo.yaml --db postgresql://nobody@127.0.0.1:1/x", 1,
     "cannot connect"),
    ("db-random-bytes", "run --scenario {d}/demo.yaml --db {d}/random.db", 1, "not a database"),
    ("state-random-bytes", "state --db {d}/random.db", 1, "not a database"),
    ("state-missing", "state --db {d}/missing.db", 1, "no such file"),
    ("state-not-a-journal", "state --db {d}/good.db.world", 1, "holds no presplit journal"),
    ("state-unsupported-url", "state --db redis://127.0.0.1/0", 1, "unsupported journal URL"),
    # ------------------------------------------------------------ stores that do not belong together
    ("journal-other-scenario", "run --scenario {d}/other.yaml --db {d}/good.db", 1, "belongs to scenario 'demo'"),
    ("journal-other-trace", "run --scenario {d}/demo.yaml --db {d}/good.db --trace {d}/other-trace", 1,
     "belongs to scenario 'demo'"),
    ("world-missing", "run --scenario {d}/demo.yaml --db {d}/good.db --world {d}/gone.world", 1,
     "is missing or empty"),
    ("world-empty", "run --scenario {d}/demo.yaml --db {d}/good.db --world {d}/empty.world", 1,
     "is missing or empty"),
    ("world-random-bytes", "run --scenario {d}/demo.yaml --db {d}/good.db --world {d}/random.db", 1,
     "not a database"),
    ("world-of-another-journal", "run --scenario {d}/demo.yaml --db {d}/fresh.db --world {d}/good.db.world", 1,
     "belongs to another journal"),
    ("world-with-emptied-journal", "run --scenario {d}/demo.yaml --db {d}/emptied.db --world {d}/good.db.world", 1,
     "belongs to another journal"),
    ("world-is-a-journal", "run --scenario {d}/demo.yaml --db {d}/good.db --world {d}/good.db", 1, "world"),
    # ------------------------------------------------------------ simulate and friends
    ("simulate-json-missing-folder", "simulate --policy dvfs --json {d}/nofolder/out.json", 2, "nofolder"),
    ("simulate-bad-policy", "simulate --policy nosuch-policy", 2, "nosuch-policy"),
]


def _tree(folder: Path) -> dict[str, str]:
    out = {}
    for root, _dirs, names in os.walk(folder):
        for n in names:
            p = Path(root) / n
            if p.suffix == ".lease" or n.endswith(("-wal", "-shm")):
                continue  # the lease file and SQLite's side files are not the stores' content
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    text = demo_scenario(d / "scen").read_text()  # the trace path in it is absolute
    (d / "demo.yaml").write_text(text)
    (d / "other.yaml").write_text(text.replace("name: demo", "name: other"))
    from presplit.service.demo import write_trace

    write_trace(d / "other-trace", seed=8)
    runner = CliRunner()
    for db in ("good.db", "emptied.db"):
        res = runner.invoke(cli, ["run", "--scenario", str(d / "demo.yaml"), "--db", str(d / db), "--until", "30m",
                                  "--quiet"])
        assert res.exit_code == 0, res.output
    import sqlite3

    db = sqlite3.connect(d / "emptied.db")  # a journal whose history was lost
    with db:
        for table in ("events", "actions", "plans", "meta"):
            db.execute(f"DELETE FROM {table}")
    db.close()
    (d / "emptied.db.world").unlink()
    res = runner.invoke(cli, ["run", "--scenario", str(d / "demo.yaml"), "--db", str(d / "fresh.db"), "--world",
                              str(d / "fresh.world"), "--until", "5m", "--quiet"])
    assert res.exit_code == 0, res.output
    # fresh.db is bound to fresh.world; the cases point it at good.db.world.
    (d / "random.db").write_bytes(os.urandom(20000))
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 8)
    (d / "empty.world").write_bytes(b"")
    profiles = {
        "p-target": "policies: [{name: presplit, args: {target: -5}}]",
        "p-nan": "policies: [{name: presplit, args: {target: .nan}}]",
        "p-maxneg": "policies: [{name: presplit, args: {max_total: -4}}]",
        "p-maxfrac": "policies: [{name: presplit, args: {max_total: 2.5}}]",
        "p-spare": "policies: [{name: presplit, args: {spare_hosts: -10}}]",
        "p-high": "policies: [{name: evacuate, args: {high: -1}}]",
        "p-interval": "policies: [presplit]\ninterval: nan",
        "p-needs": "policies: [{name: presplit, args: {needs_forecasts: false}}]",
        "p-string": "policies: [{name: presplit, args: {target: '0.8'}}]",
        "p-bool": "policies: [{name: presplit, args: {spare_hosts: true}}]",
        "p-shares": "policies: [{name: presplit, args: {min_migration_share: 0.8, max_migration_share: 0.2}}]",
        "p-cap": "policies: [presplit]\ncaps: {total: 2.5}",
        "p-lrmmt": "policies: [{name: lr-mmt, args: {safety: 1.3}}]",
        "p-target-ok": "policies: [{name: presplit, args: {target: 0.9}}]",
    }
    for name, body in profiles.items():
        (d / f"{name}.yaml").write_text(body + "\n")
    return d


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line_and_changes_nothing(folder, case, monkeypatch):
    _, line, code, text = case
    monkeypatch.chdir(folder)
    before = _tree(folder)
    res = CliRunner().invoke(cli, line.format(d=folder).split())
    out = res.output.strip()
    assert res.exit_code == code, out
    assert "Traceback" not in out and "internal error" not in out, out
    assert text in out, out
    assert len([ln for ln in out.splitlines() if ln.strip()]) <= 4, out  # click's usage errors add a usage line
    assert _tree(folder) == before, "a refused command changed a store"


def test_the_cases_cover_enough_ground():
    assert len(CASES) >= 40


def test_debug_shows_the_traceback(folder):
    res = CliRunner().invoke(cli, ["--debug", "state", "--db", str(folder / "random.db")])
    assert res.exit_code != 0 and res.exception is not None and "not a database" in str(res.exception)


def test_new_journal_starts_afresh_and_keeps_the_old_world(tmp_path):
    scen = demo_scenario(tmp_path / "scen")
    db = tmp_path / "j.db"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--scenario", str(scen), "--db", str(db), "--until", "10m"]).exit_code == 0
    other = tmp_path / "other.yaml"
    other.write_text(scen.read_text().replace("name: demo", "name: other"))
    refused = runner.invoke(cli, ["run", "--scenario", str(other), "--db", str(db), "--until", "10m"])
    assert refused.exit_code == 1 and "--new-journal" in refused.output
    res = runner.invoke(cli, ["run", "--scenario", str(other), "--db", str(db), "--until", "10m", "--new-journal"])
    assert res.exit_code == 0, res.output
    assert "started afresh" in res.output
    assert list(tmp_path.glob("j.db.world.old-*")), "the old world store is kept, renamed"
