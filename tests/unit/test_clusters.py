"""Pure logic of the cluster support: topology facts, TOI classification, write-set caps, the
lease's liveness rules, and the cluster settings."""

from __future__ import annotations

import time

import pytest

from ragflow_migrate.config import load_settings
from ragflow_migrate.db import cluster_lock, topology
from ragflow_migrate.db.topology import Node, Topology
from ragflow_migrate.errors import ConfigError
from ragflow_migrate.schema import toi

ENV = {"MYSQL_HOST": "db"}


def test_majority_and_clustered():
    assert Topology(kind=topology.GALERA, cluster_size=3).majority == 2
    assert Topology(kind=topology.GALERA, cluster_size=2).majority == 2
    assert Topology(kind=topology.GALERA, cluster_size=5).majority == 3
    assert Topology(kind=topology.GALERA).clustered
    assert not Topology(kind=topology.GROUP_REPLICATION, single_primary=True).clustered
    assert Topology(kind=topology.GROUP_REPLICATION, single_primary=False).clustered
    assert not Topology().clustered and not Topology(kind=topology.REPLICA).clustered


def test_group_replication_names_its_primary():
    topo = Topology(kind=topology.GROUP_REPLICATION, role="SECONDARY",
                    nodes=(Node("10.0.0.1:3306", "a", "ONLINE", "SECONDARY"), Node("10.0.0.2:3306", "b", "ONLINE",
                                                                                   "PRIMARY")))
    assert topo.primary.address == "10.0.0.2:3306"
    fields = topo.as_fields()
    assert fields["mode"] == "single-primary" and fields["role"] == "SECONDARY" and len(fields["members"]) == 2


def test_write_set_caps_lower_the_batch_only_on_galera():
    assert Topology().cap_batch(5000) == 5000
    assert Topology(kind=topology.GALERA).cap_batch(5000) == 5000  # 0: no limit
    assert Topology(kind=topology.GALERA, max_ws_rows=1000).cap_batch(5000) == 250  # a merge page is 4 batches
    assert Topology(kind=topology.GALERA, max_ws_size=2 ** 31 - 1).cap_batch(5000) == 5000
    small = Topology(kind=topology.GALERA, max_ws_size=1024 * 1024)
    assert small.cap_batch(5000) == 1024 * 1024 // (4 * topology.ROW_BYTES_BOUND)
    assert Topology(kind=topology.GALERA, max_ws_rows=1).cap_batch(5000) == 1


@pytest.mark.parametrize(("sql", "table"), [
    ("ALTER TABLE `document` ADD INDEX `document_x` (`x`)", "document"),
    ("ALTER TABLE `tenant` MODIFY COLUMN `llm_id` VARCHAR(256) NOT NULL", "tenant"),
    ("ALTER TABLE `tenant_llm` DROP PRIMARY KEY, ADD PRIMARY KEY (`id`)", "tenant_llm"),
    ("ALTER TABLE `user` ADD UNIQUE INDEX `user_email` (`email`)", "user"),
    ("ALTER TABLE `we``ird` CONVERT TO CHARACTER SET utf8mb4", "we`ird"),
    ("ALTER TABLE `task` ADD COLUMN `x` INT NULL", None),
    ("ALTER TABLE `task` DROP INDEX `task_x`", None),
    ("ALTER TABLE `task` RENAME COLUMN `a` TO `b`", None),
    ("CREATE TABLE `t` (`id` INT PRIMARY KEY, KEY `k` (`id`))", None),
])
def test_which_ddl_holds_a_galera_cluster(sql, table):
    assert toi.blocking_table(sql) == table


def test_toi_only_on_galera_in_toi_mode():
    class Server:
        def __init__(self, topo):
            self.topology = topo

    assert toi.on_toi(Server(Topology(kind=topology.GALERA, osu_method="TOI")))
    assert not toi.on_toi(Server(Topology(kind=topology.GALERA, osu_method="RSU")))
    assert not toi.on_toi(Server(Topology()))
    assert not toi.on_toi(Server(None))


def test_node_keys_separate_nodes_and_keep_single_servers_unchanged():
    assert cluster_lock.node_key("") == 0
    a, b = cluster_lock.node_key("0c3e1f20-aaaa"), cluster_lock.node_key("7d9b2a11-bbbb")
    assert a != b and a % 2 ** 32 == 0 and 0 < a < 2 ** 63 and 0 < b < 2 ** 63


def _lease(**kw):
    base = dict(token=4, run_id="r1", instance="pod-a", node_id="n1", node_address="10.0.0.1:3306", connection_id=7,
                node_locked=True, beat=3, held_s=10, beat_age_s=2)
    return cluster_lock.Lease(**{**base, **kw})


def _lock(ttl="60s", members=None, locked_nodes=()):
    settings = load_settings({"lease_ttl": ttl}, ENV)
    lock = cluster_lock.ClusterLock(settings, None, "r2", Topology(kind=topology.GALERA, cluster_size=3))
    lock.node_locks = [(cluster_lock._Node(n, f"{n}:3306", settings), None) for n in locked_nodes]
    lock._members = members
    return lock


def test_a_lease_is_free_or_its_holder_provably_gone_or_it_lives():
    assert _lock()._free_or_dead(_lease(run_id=None), None, time.monotonic()) == ""
    # we hold the holder's node lock: its session is gone
    assert "node lock is ours" in _lock(locked_nodes=("n1", "n2"))._free_or_dead(_lease(), None, time.monotonic())
    # ... unless it never held node locks (a lease-only holder)
    assert _lock(locked_nodes=("n1",))._free_or_dead(_lease(node_locked=False), None, time.monotonic()) is None
    # its node left the cluster (every member reached)
    assert "no longer a member" in _lock(members={"n2", "n3"})._free_or_dead(_lease(), None, time.monotonic())
    assert _lock(members={"n1", "n2", "n3"})._free_or_dead(_lease(), None, time.monotonic()) is None
    # heartbeat: only after the same (token, beat) has been seen for the whole TTL, by our clock
    lock = _lock(ttl="5s")
    assert lock._free_or_dead(_lease(), (4, 3), time.monotonic() - 4) is None
    assert "no heartbeat for 5s" in lock._free_or_dead(_lease(), (4, 3), time.monotonic() - 6)
    assert lock._free_or_dead(_lease(beat=4), (4, 3), time.monotonic() - 6) is None  # it beat meanwhile


def test_a_stale_lease_is_reported_as_such():
    assert _lease(beat_age_s=90).describe(60)["stale"] is True
    assert "stale" not in _lease(beat_age_s=5).describe(60)


def test_cluster_settings():
    settings = load_settings({}, {**ENV, "RAGFLOW_MIGRATE_CLUSTER_NODES": "10.0.0.1:3306, galera-1.galera:3306"})
    assert settings.cluster_nodes == ("10.0.0.1:3306", "galera-1.galera:3306")
    assert settings.lease_ttl == 60 and settings.blocking_ddl_rows == 1_000_000 and not settings.allow_blocking_ddl
    for bad in ("10.0.0.1", "host:99999", ",", ":3306"):
        with pytest.raises(ConfigError, match="CLUSTER_NODES"):
            load_settings({}, {**ENV, "RAGFLOW_MIGRATE_CLUSTER_NODES": bad})
    with pytest.raises(ConfigError, match="BLOCKING_DDL_ROWS"):
        load_settings({}, {**ENV, "RAGFLOW_MIGRATE_BLOCKING_DDL_ROWS": "0"})
