"""The Galera test harness itself: a real 3-node MariaDB Galera cluster on loopback."""

from __future__ import annotations

import pymysql
import pytest


def test_three_nodes_synced_in_one_primary_component(galera):
    statuses = galera.wait_synced()
    assert sorted(statuses) == [1, 2, 3]
    for i, status in statuses.items():
        assert status["wsrep_local_state_comment"] == "Synced", i
        assert status["wsrep_cluster_size"] == "3", i
        assert status["wsrep_cluster_status"] == "Primary", i
        assert status["wsrep_ready"] == "ON", i
    assert len({s["wsrep_cluster_state_uuid"] for s in statuses.values()}) == 1
    for node in galera.nodes:
        assert galera.query(node.index, "SELECT @@wsrep_on, @@wsrep_node_name") == [(1, f"node{node.index}")]
        assert node.version.startswith("10.11.")
        assert "[ERROR]" not in galera.error_log(node.index)


def test_database_create_and_drop_replicate(galera):
    name = "g_create_drop_probe"
    galera.create_database(name)
    try:
        for i in (1, 2, 3):
            rows = galera.query(i, "SELECT default_collation_name FROM information_schema.schemata "
                                   "WHERE schema_name = %s", (name,))
            assert rows == [("utf8mb4_unicode_ci",)], i
        galera.query(2, f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY) ENGINE=InnoDB")
    finally:
        galera.drop_database(name)
    for i in (1, 2, 3):
        assert galera.query(i, "SHOW DATABASES LIKE %s", (name,)) == [], i


def test_row_written_on_node1_is_read_on_node3(galera_db):
    galera_db.query(1, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB")
    galera_db.query(1, "INSERT INTO t VALUES (1, 'from node 1')")
    conn = galera_db.connect(3)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")  # causal read: wait until node 3 applied it
            cur.execute("SELECT id, v FROM t")
            assert cur.fetchall() == ((1, "from node 1"),)
    finally:
        conn.close()
    assert galera_db.envs[3]["MYSQL_PORT"] == str(galera_db.cluster.node(3).port)
    assert {env["MYSQL_DBNAME"] for env in galera_db.envs.values()} == {galera_db.name}


def test_get_lock_is_node_local(galera):
    """GET_LOCK is not replicated: two sessions on two nodes both "hold" the same named lock.
    (The problem the product's cluster-wide run lock solves.)"""
    lock = "ragflow_migrate_galera_probe"
    one, two = galera.connect(1), galera.connect(2)
    try:
        with one.cursor() as c1, two.cursor() as c2:
            c1.execute("SELECT GET_LOCK(%s, 0)", (lock,))
            assert c1.fetchone() == (1,)
            c2.execute("SELECT IS_FREE_LOCK(%s), IS_USED_LOCK(%s)", (lock, lock))
            assert c2.fetchone() == (1, None)  # node 2 knows nothing of node 1's lock
            c2.execute("SELECT GET_LOCK(%s, 0)", (lock,))
            assert c2.fetchone() == (1,)  # ... and grants it a second time
            c1.execute("SELECT RELEASE_LOCK(%s)", (lock,))
            c2.execute("SELECT RELEASE_LOCK(%s)", (lock,))
    finally:
        one.close()
        two.close()


def test_killed_node_rejoins_and_catches_up(galera_db):
    cluster = galera_db.cluster
    galera_db.query(1, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB")
    galera_db.query(1, "INSERT INTO t VALUES (1, 'before the kill')")
    old_pid = cluster.node(3).pid

    cluster.kill(3)  # returns once nodes 1 and 2 agree on a 2-node cluster
    assert not cluster.node(3).is_alive()
    for i in (1, 2):
        status = cluster.status(i)
        assert (status["wsrep_cluster_size"], status["wsrep_local_state_comment"]) == ("2", "Synced"), i
    with pytest.raises(pymysql.err.OperationalError):
        cluster.connect(3, connect_timeout=2).close()
    galera_db.query(1, "INSERT INTO t VALUES (2, 'while node 3 was down')")
    galera_db.query(2, "INSERT INTO t VALUES (3, 'written on node 2')")
    galera_db.query(2, "CREATE TABLE t2 (id INT PRIMARY KEY) ENGINE=InnoDB")

    offset = cluster.error_log_offset(3)
    node = cluster.restart(3)
    assert node.pid != old_pid
    assert node.last_transfer == "IST"  # its recovered position let a donor send just the missing writesets
    assert "Synchronized with group" in cluster.error_log_since(3, offset)
    for i, status in cluster.wait_synced(size=3).items():
        assert (status["wsrep_cluster_size"], status["wsrep_local_state_comment"]) == ("3", "Synced"), i
    conn = galera_db.connect(3)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SELECT id, v FROM t ORDER BY id")
            assert [row[0] for row in cur.fetchall()] == [1, 2, 3]
            cur.execute("SHOW TABLES")
            assert sorted(row[0] for row in cur.fetchall()) == ["t", "t2"]
    finally:
        conn.close()
    galera_db.query(3, "INSERT INTO t VALUES (4, 'from the rejoined node')")
    conn = galera_db.connect(1)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SELECT COUNT(*) FROM t")
            assert cur.fetchone() == (4,)
    finally:
        conn.close()
