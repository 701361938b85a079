"""The one registry shape (presplit.registry) and the policies and forecasters that use it,
down to a real entry point of an installed distribution."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest
from click.testing import CliRunner

from presplit.errors import InputError
from presplit.registry import Entry, Registry


class Oops(InputError):
    pass


def test_register_get_create_and_listing_order():
    reg = Registry("widget")
    reg.register("b", lambda: "B", summary="  the   second\n letter ")
    reg.register("a", lambda x=1: ("A", x))
    assert reg.names() == ["b", "a"] and list(reg) == ["b", "a"] and len(reg) == 2
    assert "a" in reg and "c" not in reg
    assert reg.get("b")() == "B" and reg["b"]() == "B" and reg.create("a", x=5) == ("A", 5)
    assert reg.entry("b") == Entry("b", reg.get("b"), "the second letter", "built-in")
    assert [e.name for e in reg.entries()] == ["b", "a"]


def test_duplicates_and_bad_names_are_refused():
    reg = Registry("widget")
    reg.register("a", object)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", object)
    for bad in ("", " a", "a "):
        with pytest.raises(ValueError, match="is not a name"):
            reg.register(bad, object)


def test_unknown_names_list_the_known_ones_and_suggest_the_closest():
    reg = Registry("widget", error=Oops)
    for n in ("window-mean", "window-quantile", "last"):
        reg.register(n, object)
    with pytest.raises(Oops, match=r"unknown widget 'window-quantil' \(did you mean 'window-quantile'\?\); "
                                   r"known: window-mean, window-quantile, last"):
        reg.get("window-quantil")
    with pytest.raises(Oops) as err:
        reg.get("zzz")
    assert "did you mean" not in str(err.value) and isinstance(err.value, InputError)


def test_decorator_form_and_lazy_builtins_load_once():
    calls = []

    def builtins():
        calls.append(1)
        reg.register("late", object, summary="registered by the loader")

    reg = Registry("widget", builtins=builtins)

    @reg.register("early", summary="a decorated factory")
    def early():
        return "E"

    assert early() == "E" and calls == []  # registering does not load the built-ins
    assert reg.names() == ["early", "late"] and reg.names() == ["early", "late"] and calls == [1]


# --------------------------------------------------------------------------- a real installed distribution

PLUGIN = '''
"""Acme's presplit plugins."""
from presplit.forecast.baselines import LastValue


class Hold(LastValue):
    """Acme's flat forecast: the last value held over the horizon."""


class Idle:
    """Acme: first fit, no migrations."""

    engine = "cloudsim"
    migrates = False

    def place_initial(self, engine):
        from presplit.policies.api import first_fit

        first_fit(engine)

    def optimise(self, engine):
        return []


def widget():
    return "acme widget"
'''


@pytest.fixture
def acme(tmp_path, monkeypatch):
    """A distribution 'acme-presplit' installed in a folder on sys.path: a .dist-info with METADATA and
    entry_points.txt, found by importlib.metadata like any pip-installed package."""
    site = tmp_path / "site"
    info = site / "acme_presplit-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-presplit\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [presplit.policies]
        acme-idle = acme_plugins:Idle

        [presplit.forecasters]
        acme-hold = acme_plugins:Hold
        acme-missing = acme_plugins_gone:Nothing

        [presplit.test-widgets]
        acme = acme_plugins:widget
        broken = acme_plugins:nothing_here
        """))
    (site / "acme_plugins.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("acme_plugins", None)


def test_a_registry_finds_an_installed_entry_point_and_names_a_broken_one(acme):
    reg = Registry("widget", group="presplit.test-widgets", error=Oops)
    reg.register("builtin", object)
    assert reg.names() == ["builtin", "acme", "broken"] and "acme" in reg
    assert reg.create("acme") == "acme widget"
    assert reg.entry("acme").origin == "entry point acme = acme_plugins:widget (acme-presplit)"
    with pytest.raises(Oops) as err:
        reg.get("broken")
    text = str(err.value)
    assert "\n" not in text and "widget 'broken'" in text and "acme_plugins:nothing_here" in text
    assert "(acme-presplit)" in text and "AttributeError" in text


def test_built_in_names_win_over_entry_points(acme, monkeypatch):
    reg = Registry("widget", group="presplit.test-widgets")
    reg.register("acme", lambda: "built-in")
    assert reg.create("acme") == "built-in" and list(reg.shadowed()) == ["acme"]
    assert reg.names().count("acme") == 1


def test_unreadable_metadata_does_not_break_the_builtins(monkeypatch):
    def broken(**kw):
        raise RuntimeError("damaged site-packages")

    monkeypatch.setattr(metadata, "entry_points", broken)
    reg = Registry("widget", group="presplit.test-widgets")
    reg.register("a", object)
    assert reg.names() == ["a"]


def test_an_installed_policy_is_found_by_make_policy_and_listed(acme):
    from presplit.cli.main import cli
    from presplit.policies import engines, make_policy

    assert type(make_policy("acme-idle")).__name__ == "Idle" and engines("acme-idle") == ("cloudsim",)
    listing = CliRunner().invoke(cli, ["policies", "--json", "-"])
    assert listing.exit_code == 0, listing.output
    rows = {(e["name"], e["engine"]): e for e in json.loads(listing.stdout)}
    assert rows["acme-idle", "cloudsim"]["source"] == "entry point acme-idle = acme_plugins:Idle (acme-presplit)"
    assert rows["acme-idle", "cloudsim"]["summary"] == "Acme: first fit, no migrations."


def test_an_installed_forecaster_is_found_by_make_forecaster_and_listed(acme):
    from presplit.cli.main import cli
    from presplit.forecast import create, names
    from presplit.forecast.decision import forecaster_names, make_forecaster

    assert "acme-hold" in names() and "acme-hold" in forecaster_names()
    assert type(create("acme-hold")).__name__ == "Hold"
    tick = make_forecaster("acme-hold", horizon=3).at(np.full((2, 40), 5.0), 40)
    assert tick.name == "acme-hold" and np.allclose(tick.upper(tick.rows()), 5.0)
    listing = CliRunner().invoke(cli, ["forecast", "models", "--json", "-"])
    assert listing.exit_code == 0, listing.output
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["acme-hold"]["about"] == "Acme's flat forecast: the last value held over the horizon"
    assert rows["acme-hold"]["source"] == "entry point acme-hold = acme_plugins:Hold (acme-presplit)"
    assert "source" not in rows["online-ses"]
    assert "ModuleNotFoundError" in rows["acme-missing"]["error"]  # listed, with why it cannot run


def test_a_broken_forecaster_entry_point_is_one_line_naming_it(acme):
    from presplit.forecast import ForecastError, create
    from presplit.forecast.decision import make_forecaster

    with pytest.raises(ForecastError) as err:
        create("acme-missing")
    text = str(err.value)
    assert "\n" not in text and "forecast model 'acme-missing'" in text
    assert "entry point acme-missing = acme_plugins_gone:Nothing (acme-presplit)" in text
    assert "ModuleNotFoundError" in text
    with pytest.raises(ForecastError, match="acme_plugins_gone"):  # before any run, not at its first tick
        make_forecaster("acme-missing")


def test_policy_and_forecaster_registries_are_registries():
    from presplit.forecast.registry import MODELS
    from presplit.policies.registry import CLOUDSIM_POLICIES, DOMAIN_POLICIES, PLUGINS

    assert MODELS.group == "presplit.forecasters" and PLUGINS.group == "presplit.policies"
    assert list(DOMAIN_POLICIES) == ["evacuate", "presplit"]
    assert list(CLOUDSIM_POLICIES) == ["npa", "dvfs", "presplit-consolidate"]
    assert all(e.summary for e in [*CLOUDSIM_POLICIES.entries(), *DOMAIN_POLICIES.entries()])


def test_the_backend_shape_a_lazy_builtin_and_the_layers_own_error():
    """How backends/base.py can use it: 'qemu' registered as a function that imports its module when
    called (listing names imports nothing), unknown names raise BackendError."""
    from presplit.backends.base import BackendError

    imported = []

    def qemu(**kw):
        imported.append(kw)  # stands for: from presplit.backends.qemu.backend import factory
        return "a qemu backend"

    backends = Registry("backend", group="presplit.backends", error=BackendError)
    backends.register("qemu", qemu, summary="real hosts: QEMU guests in cgroup domains")
    assert "qemu" in backends and backends.names() == ["qemu"] and imported == []
    assert backends.get("qemu")(scenario="s") == "a qemu backend" and imported == [{"scenario": "s"}]
    with pytest.raises(BackendError, match=r"unknown backend 'qemo' \(did you mean 'qemu'\?\); known: qemu"):
        backends.get("qemo")
