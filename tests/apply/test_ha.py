"""High availability on a PostgreSQL journal: kill the leader mid-plan, the standby takes over and finishes.

The test starts its own PostgreSQL server (scripts/setup-postgres.sh, a
session fixture). Controller A takes the advisory-lock lease and runs;
controller B starts on the same journal and world and waits. A is killed
with SIGKILL once the journal shows it mid-run; B must hold the lease within
a few seconds, reconcile A's open plan and run to the end, with the world and
journal as sound as after a single controller's crash.
"""

from __future__ import annotations

import signal
import time

import numpy as np
import sqlalchemy as sa
from apply_support import check_journal, check_world, popen_cli, small_scenario

from presplit.apply import Journal


def test_leader_killed_mid_plan_standby_takes_over(tmp_path, postgres_server):
    url = postgres_server.rsplit("/", 1)[0] + "/ha"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("DROP DATABASE IF EXISTS ha"))
        c.execute(sa.text("CREATE DATABASE ha"))
    admin.dispose()
    scen = small_scenario(tmp_path, hosts=8, horizon="24h", replicas=1.5)
    world = tmp_path / "world.db"
    args = ["run", "--backend", "sim", "--scenario", str(scen), "--db", url, "--world", str(world)]
    journal = Journal(url)
    a = popen_cli(*args)
    deadline = time.time() + 60
    while journal.get_meta("leader") is None and time.time() < deadline:
        time.sleep(0.01)
    leader_a = journal.get_meta("leader")["controller"]
    b = popen_cli(*args)
    assert b.stdout.readline().strip() == "another controller holds the lease; waiting to take over"
    assert journal.get_meta("leader")["controller"] == leader_a
    with journal.engine.connect() as c:  # kill A while a plan of its is running, if one comes soon
        for _ in range(2000):
            if c.execute(sa.text("SELECT count(*) FROM plans WHERE status = 'running'")).scalar():
                break
            time.sleep(0.002)
    a.send_signal(signal.SIGKILL)
    killed = time.time()
    a.wait(timeout=30)
    while journal.get_meta("leader")["controller"] == leader_a:
        assert time.time() - killed < 10, "the standby did not take over within 10 s"
        time.sleep(0.02)
    takeover_s = time.time() - killed
    out, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    assert takeover_s < 5.0, f"take-over took {takeover_s:.1f} s"
    print(f"take-over in {takeover_s:.2f} s")
    placed = check_world(world)
    assert len(placed) > 0
    check_journal(url, finished=True)
    controllers = {p["controller"] for p in journal.plans()}
    assert leader_a in controllers and len(controllers) == 2, controllers
    assert journal.get_meta("last_tick") == 86400 - 300
    assert np.isfinite(takeover_s)
    journal.close()
