"""Install anywhere: the core install (no extras) runs the main job, and a command whose extra is missing says which.

The slow test builds presplit from a copy of this checkout into a fresh virtual
environment (no system site-packages), without extras, exactly as a user's
``pip install .`` does (build isolation, so setuptools comes from the index;
the C kernel needs a compiler and the Python headers), then runs the installed
``presplit``. The fast tests check the same promises in this process, with the
heavy packages hidden.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.errors import InputError
from presplit.extras import EXTRAS, MissingExtraError, install_hint, require

REPO = Path(__file__).resolve().parents[1]
CORE_LIMIT_MB = 200
# Every package an extra brings (top-level module names); none may be needed by the core.
HEAVY = ("pyarrow", "lightgbm", "scipy", "matplotlib", "dask", "distributed", "psycopg", "fastapi", "starlette",
         "uvicorn", "httptools", "uvloop", "prometheus_client", "httpx", "statsforecast")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PRESPLIT_DATA", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


# --------------------------------------------------------------------------- fast: the error line


def test_require_names_the_extra_and_how_to_install_it():
    require("service", "json", "os")  # present: nothing happens
    with pytest.raises(MissingExtraError) as info:
        require("service", "json", "presplit_no_such_module_xyz")
    exc = info.value
    assert isinstance(exc, InputError) and exc.exit_code == 2
    text = str(exc)
    assert "this command needs the 'service' extra" in text
    assert "presplit_no_such_module_xyz is not installed" in text
    assert "pip install" in text and "[service]'" in text
    assert "\n" not in text
    with pytest.raises(ValueError):
        require("no-such-extra", "json")


def test_install_hint_points_at_this_installation():
    for extra in EXTRAS:
        hint = install_hint(extra)
        assert hint.startswith(("pip install", f"{sys.executable} -m pip install"))
        assert hint.endswith(f"[{extra}]'")


def test_every_extra_in_the_code_is_declared_in_pyproject():
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
    everything = " ".join(declared["all"])
    assert all(extra in everything for extra in EXTRAS)
    assert any("presplit[all]" in req for req in declared["test"])
    core = " ".join(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    assert not [m for m in ("pyarrow", "lightgbm", "matplotlib", "dask", "psycopg", "fastapi", "uvicorn",
                            "prometheus", "httpx") if m in core]


@pytest.mark.parametrize("args, extra", [
    (["serve", "--db", "sqlite:///unused.db"], "service"),
    (["report", "results.parquet", "--out", "report.html"], "report"),
    (["simulate", "--scenario", "bighost-patch", "--policy", "evacuate"], "parquet"),
])
def test_cli_reports_a_missing_extra_in_one_line(monkeypatch, tmp_path, args, extra):
    import importlib.util

    real = importlib.util.find_spec
    hidden = {"fastapi", "uvicorn", "prometheus_client", "pyarrow", "matplotlib"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] in hidden else real(name, *a, **k))
    for mod in [m for m in sys.modules if m.startswith(("presplit.traces.samples", "presplit.traces.delimited",
                                                         "presplit.traces.long_table", "presplit.traces.bitbrains"))]:
        monkeypatch.delitem(sys.modules, mod)  # re-imported: their require runs at import
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"presplit {args[0]}: error: this command needs the '{extra}' extra"), lines[0]
    assert f"[{extra}]'" in lines[0]


CORE_ONLY = textwrap.dedent("""
    import importlib.abc, sys
    HEAVY = {heavy!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {{name!r}} (hidden: core-only test)", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from presplit.cli.main import cli
    try:
        cli(sys.argv[1:])
    finally:
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & HEAVY)
        assert not loaded, loaded
""")


def test_core_commands_run_without_any_heavy_package(tmp_path):
    """``presplit --help``, ``simulate`` on the bundled PlanetLab day and ``run --scenario cloudsim``, heavy packages hidden."""
    script = tmp_path / "core_only.py"
    script.write_text(CORE_ONLY.format(heavy=set(HEAVY)))

    def presplit(*args):
        return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=_env(), capture_output=True,
                              text=True, timeout=300)

    out = presplit("--help")
    assert out.returncode == 0 and "simulate" in out.stdout, out.stderr
    out = presplit("simulate", "--policy", "lr-mmt:1.2", "--json", "rows.json")
    assert out.returncode == 0, out.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["policy"] for r in rows] == ["lr-mmt:1.2"] and rows[0]["energy_kwh"] > 0
    out = presplit("run", "--scenario", "cloudsim", "--db", f"sqlite:///{tmp_path / 'j.db'}", "--until", "1h",
                   "--quiet")
    assert out.returncode == 0, out.stderr
    out = presplit("serve", "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert out.returncode == 2 and "needs the 'service' extra" in out.stderr, out.stderr


# --------------------------------------------------------------------------- slow: a real fresh install


def _source_copy(dest: Path) -> Path:
    """The files a build reads, copied (so a build here never races one in the working tree)."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info", ".*"))
    return dest


def _du_mb(folder: Path) -> float:
    """Disk usage in MiB, as ``du -s`` counts it (allocated blocks, hard links once)."""
    seen, blocks = set(), 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                blocks += st.st_blocks
    return blocks * 512 / 2**20


@pytest.mark.slow
def test_fresh_core_install_runs_the_main_job_and_names_missing_extras(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    python, presplit = venv / "bin" / "python", venv / "bin" / "presplit"

    src = _source_copy(tmp_path / "src-copy")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(src)], env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    site = next((venv / "lib").glob("python3*/site-packages"))
    size = _du_mb(site)
    print(f"\ncore install: {size:.0f} MiB of site-packages in a fresh venv")
    assert size <= CORE_LIMIT_MB, f"core install is {size:.0f} MiB, more than {CORE_LIMIT_MB}"
    # No extra's package came in with the core.
    check = "import importlib.util as u, sys; sys.exit(','.join(m for m in sys.argv[1:] if u.find_spec(m)) or None)"
    found = subprocess.run([str(python), "-c", check, *HEAVY], env=_env(), capture_output=True, text=True)
    assert found.returncode == 0, f"installed with the core: {found.stderr.strip()}"
    # The bundled data went into the package.
    assert (site / "presplit" / "data" / "bitbrains" / "rnd_2013-7_first7d.parquet").stat().st_size > 5_000_000
    assert (site / "presplit" / "data" / "README.md").is_file()

    work = tmp_path / "work"
    work.mkdir()

    def run(*args, timeout=300):
        return subprocess.run([str(presplit), *args], cwd=work, env=_env(), capture_output=True, text=True,
                              timeout=timeout)

    out = run("--help")
    assert out.returncode == 0 and "serve" in out.stdout, out.stderr
    out = run("simulate", "--policy", "lr-mmt:1.2", "--json", "rows.json")
    assert out.returncode == 0, out.stderr
    rows = json.loads((work / "rows.json").read_text())
    assert len(rows) == 1 and rows[0]["policy"] == "lr-mmt:1.2" and rows[0]["trace"] == "20110303"
    assert rows[0]["energy_kwh"] > 0 and rows[0]["migrations"] > 0
    out = run("run", "--scenario", "cloudsim", "--db", f"sqlite:///{work / 'journal.db'}", "--until", "1h",
              "--quiet")
    assert out.returncode == 0, out.stderr

    out = run("serve", "--help")
    assert out.returncode == 0 and "--listen" in out.stdout, out.stderr
    for args, extra in ((["serve", "--db", f"sqlite:///{work / 'serve.db'}"], "service"),
                        (["report", "results.parquet", "--out", "report.html"], "report"),
                        (["simulate", "--scenario", "bighost-patch", "--policy", "evacuate"], "parquet")):
        out = run(*args)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert lines[0].startswith(f"presplit {args[0]}: error: this command needs the '{extra}' extra"), lines[0]
        assert f"pip install '{src}[{extra}]'" in lines[0], lines[0]
