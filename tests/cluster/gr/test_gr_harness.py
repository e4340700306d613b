"""The Group Replication harness works, and shows what a migration tool meets on such a group.

Ordered: the tests that kill members come last (each leaves the group whole again anyway).
"""

from __future__ import annotations

import time

import pymysql
import pytest

ER_OPTION_PREVENTS_STATEMENT = 1290  # --super-read-only on a SECONDARY
ER_BEFORE_DML_VALIDATION_ERROR = 3098  # GR refuses DML on a table without a primary key
FAILOVER_TIMEOUT = 120.0  # member expel timeout (5 s) + detection (5 s) + election, on 2 busy cores


def _secondary(group) -> int:
    return group.secondaries()[0]


def test_three_members_online_exactly_one_primary(replication_group):
    group = replication_group.ensure_running()
    roles = group.wait_online(3)
    assert sorted(roles) == [0, 1, 2]
    assert sorted(roles.values()) == ["PRIMARY", "SECONDARY", "SECONDARY"]
    primary = group.primary()
    for member in group.members:
        assert member.version.startswith("9.7.")
        # every member sees the same 3 ONLINE members and the same PRIMARY
        rows = group.query(member.index, "SELECT MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE "
                                         "FROM performance_schema.replication_group_members")
        assert sorted(rows) == sorted((m.port, "ONLINE", roles[m.index]) for m in group.members)
        assert member.is_alive() and member.pid and member.datadir.is_dir() and member.error_log.is_file()
        assert group.query(member.index, "SELECT @@super_read_only")[0][0] == int(member.index != primary)
    assert group.members[primary].env("x")["MYSQL_PORT"] == str(group.members[primary].port)


def test_write_on_primary_is_read_on_secondary(gr_db):
    group = gr_db.group
    gr_db.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
    gr_db.query("INSERT INTO t VALUES (1, 'from primary')")
    conn = gr_db.connect(_secondary(group))
    try:
        with conn.cursor() as cur:
            # BEFORE: the read waits until the member applied every transaction the group ordered first
            cur.execute("SET SESSION group_replication_consistency = 'BEFORE'")
            cur.execute("SELECT v FROM t WHERE id = 1")
            assert cur.fetchall() == (("from primary",),)
    finally:
        conn.close()
    gr_db.query("INSERT INTO t VALUES (2, 'second')")
    group.sync(gr_db.primary)  # or wait for the primary's GTID set
    for i in group.secondaries():
        assert gr_db.query("SELECT COUNT(*) FROM t", i=i) == [(2,)]


def test_secondary_refuses_writes(gr_db):
    gr_db.query("CREATE TABLE t (id INT PRIMARY KEY)")
    secondary = _secondary(gr_db.group)
    gr_db.group.sync(gr_db.primary)
    with pytest.raises(pymysql.err.OperationalError) as caught:
        gr_db.query("INSERT INTO t VALUES (1)", i=secondary)
    assert caught.value.args[0] == ER_OPTION_PREVENTS_STATEMENT
    assert "super-read-only" in caught.value.args[1]
    with pytest.raises(pymysql.err.OperationalError) as caught:
        gr_db.query("CREATE TABLE u (id INT PRIMARY KEY)", i=secondary)
    assert caught.value.args[0] == ER_OPTION_PREVENTS_STATEMENT


def test_table_without_primary_key_takes_no_rows(gr_db):
    gr_db.query("CREATE TABLE nopk (v INT)")  # the DDL passes ...
    with pytest.raises(pymysql.MySQLError) as caught:  # ... the first row does not
        gr_db.query("INSERT INTO nopk VALUES (1)")
    assert caught.value.args[0] == ER_BEFORE_DML_VALIDATION_ERROR


def test_get_lock_is_node_local(gr_db):
    """Documents the problem: a named lock taken on the primary does not exist on a secondary,
    so GET_LOCK alone cannot keep two runners pointed at different members apart."""
    group = gr_db.group
    holder = group.connect(gr_db.primary)
    other = group.connect(_secondary(group))
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK('ragflow_migrate_gr_test', 0)")
            assert cur.fetchone()[0] == 1
        with other.cursor() as cur:
            cur.execute("SELECT IS_FREE_LOCK('ragflow_migrate_gr_test')")
            assert cur.fetchone()[0] == 1
            cur.execute("SELECT GET_LOCK('ragflow_migrate_gr_test', 0)")
            assert cur.fetchone()[0] == 1  # granted: both "hold" the same lock
            cur.execute("SELECT RELEASE_LOCK('ragflow_migrate_gr_test')")
        with holder.cursor() as cur:  # on the primary itself it is held, as expected
            cur.execute("SELECT IS_USED_LOCK('ragflow_migrate_gr_test') = CONNECTION_ID()")
            assert cur.fetchone()[0] == 1
    finally:
        holder.close()
        other.close()


def test_switch_primary_moves_the_role(gr_db):
    group = gr_db.group
    old = gr_db.primary
    new = _secondary(group)
    group.switch_primary(new)
    try:
        assert group.primary() == new
        assert group.roles()[old] == "SECONDARY"
        gr_db.query("CREATE TABLE t (id INT PRIMARY KEY)", i=new)
        gr_db.query("INSERT INTO t VALUES (1)", i=new)
        with pytest.raises(pymysql.err.OperationalError) as caught:
            gr_db.query("INSERT INTO t VALUES (2)", i=old)
        assert caught.value.args[0] == ER_OPTION_PREVENTS_STATEMENT
    finally:
        group.switch_primary(old)
    assert group.primary() == old


def test_kill_primary_elects_another_and_restart_rejoins(gr_db):
    group = gr_db.group
    old = gr_db.primary
    gr_db.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
    gr_db.query("INSERT INTO t VALUES (1, 'before')")
    group.sync(old)

    began = time.monotonic()
    group.kill(old)
    assert not group.members[old].is_alive()
    new = group.wait_primary(exclude=old, timeout=FAILOVER_TIMEOUT)
    failover = time.monotonic() - began
    assert new != old
    assert sorted(group.wait_online(2)) == sorted(i for i in range(3) if i != old)
    print(f"failover took {failover:.1f}s")

    gr_db.query("INSERT INTO t VALUES (2, 'while down')", i=new)  # the new primary takes writes

    began = time.monotonic()
    group.restart(old, timeout=FAILOVER_TIMEOUT)
    print(f"rejoin took {time.monotonic() - began:.1f}s")
    roles = group.wait_online(3)
    assert roles[old] == "SECONDARY" and roles[new] == "PRIMARY"
    group.sync(new, [old])  # distributed recovery brought what it missed
    assert sorted(gr_db.query("SELECT id, v FROM t", i=old)) == [(1, "before"), (2, "while down")]
    assert "group_replication" in group.error_log(old)


def test_killed_secondary_rejoins_at_once(replication_group):
    """restart() right after kill(): the group still lists the dead incarnation until it is
    expelled, so the first START GROUP_REPLICATION attempts fail; restart() retries."""
    group = replication_group.ensure_running()
    victim = group.secondaries()[-1]
    group.kill(victim)
    began = time.monotonic()
    group.restart(victim, timeout=FAILOVER_TIMEOUT)
    print(f"immediate rejoin took {time.monotonic() - began:.1f}s")
    assert group.wait_online(3)[victim] == "SECONDARY"
