"""The Group Replication harness works, and shows what a migration tool meets on such a group.

Ordered: the tests that kill members come last (each leaves the group whole again anyway).
"""

from __future__ import annotations

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


# Switching and killing the primary, and a member's rejoin, are exercised by test_gr_lock.py.
