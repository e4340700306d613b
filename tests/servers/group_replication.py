"""A real 3-member single-primary MySQL Group Replication group on loopback, for the test suite.

The members are Oracle MySQL 9.7 servers run by :mod:`harness` from the Debian sid chroot
(``tests/servers/provision.sh``); each has its own datadir copied from the harness's template,
its own SQL port and its own group-communication (XCom) port, all on 127.0.0.1. Member 0
bootstraps the group; members 1 and 2 join it through distributed recovery (binary log,
over TLS: the recovery account uses caching_sha2_password). ``root@127.0.0.1`` without
password exists on every member (it is in the template datadir). Indices are 0-based.

Nothing outlives the Python process: the members are :class:`harness.MySQLServer` objects
(own process group, ``atexit``, ``PR_SET_PDEATHSIG``).

::

    group = ReplicationGroup().start()       # ~10 s (3 mysqld ~1.5 s each, bootstrap, 2 joins)
    p = group.primary()                      # index of the PRIMARY
    group.query(p, "CREATE DATABASE d")
    group.kill(p); group.wait_primary(exclude=p)
    group.restart(p)                         # rejoins as a SECONDARY; waits for 3 ONLINE
    group.stop()

Command line::

    python tests/servers/group_replication.py smoke   # start, print members and timings, stop

Things to know when writing tests against it:

* Every table needs a primary key (or a NOT NULL unique key): GR refuses DML on others
  (error 3098, "The table does not comply with the requirements by an external plugin").
* Secondaries run with ``super_read_only=ON``: writes fail with error 1290.
* ``GET_LOCK`` and other node-local state are not replicated.
* Reads on a secondary may lag: use ``SET SESSION group_replication_consistency='BEFORE'``
  or :meth:`ReplicationGroup.sync`.
* Timings (2 busy cores, the server's default group_replication_member_expel_timeout of 5 s):
  a killed PRIMARY is replaced after ~21 s (UNREACHABLE after 5 s, expelled when the
  suspicions are next processed, up to 15 s later); ``expel_timeout=0`` makes it ~7 s. A
  member that was in the group before takes 8-18 s to join again (XCom), a new one ~2 s.
* 9.7 defaults that differ from 8.0: group_replication_ssl_mode=REQUIRED (XCom over TLS),
  exit_state_action=OFFLINE_MODE, consistency=BEFORE_ON_PRIMARY_FAILOVER.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__:
    from . import harness
else:  # run as a script: python tests/servers/group_replication.py
    import harness  # type: ignore[no-redef]

if TYPE_CHECKING:
    import pymysql.connections

__all__ = ["GroupMember", "GroupReplicationError", "ReplicationGroup", "check_group_replication"]

SIZE = 3
PLUGIN = "group_replication.so"
GROUP_TIMEOUT = float(os.environ.get("RAGFLOW_MIGRATE_GR_TIMEOUT", "180"))
#: The distributed-recovery account (created on every member with the binary log off, so
#: it is no transaction of the group's).
RECOVERY_USER = "gr_recovery"
RECOVERY_PASSWORD = "gr-recovery-pw"
_RECOVERY_ACCOUNT = f"'{RECOVERY_USER}'@'127.0.0.1'"


class GroupReplicationError(harness.ServerError):
    """The group did not form, a member did not join, or no primary was elected in time."""


def check_group_replication(chroot: Path = harness.MYSQL_CHROOT) -> None:
    """Raise :class:`harness.ProvisioningError` unless the chroot's MySQL has the GR plugin."""
    harness.check_mysql_chroot(chroot)
    if not (chroot / "usr/lib/mysql/plugin" / PLUGIN).is_file():
        raise harness.ProvisioningError(
            f"the MySQL in {chroot} has no {PLUGIN} (package mysql-server-core); {harness.PROVISION_HINT}"
        )


class GroupMember(harness.MySQLServer):
    """One member: a harness MySQL server with the group's options."""

    def __init__(self, index: int, gcs_port: int, group_name: str, seeds: Sequence[str],
                 extra_args: Sequence[str] = ()) -> None:
        self.index = index
        self.gcs_port = gcs_port
        self.group_name = group_name
        self.seeds = tuple(seeds)
        self.member_id = ""  # @@server_uuid, known once started
        super().__init__(extra_args=extra_args)
        self.label = f"{harness.LABELS['mysql']} gr#{index}"

    @property
    def local_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def _command(self) -> list[str]:
        # The harness's command with the group's options; self.port is the SQL port by now.
        return [*super()._command(), *self.group_args()]

    def group_args(self) -> list[str]:
        return [
            f"--server-id={self.index + 1}",
            "--gtid-mode=ON",
            "--enforce-gtid-consistency=ON",
            "--log-bin=binlog",  # in the datadir
            "--relay-log=relay-bin",  # else named after the host name (and a warning says so)
            # No --binlog-format=ROW: ROW is the default and the only format GR takes; 9.x still
            # accepts the option but logs "'binlog_format' is deprecated" at every start.
            "--skip-replica-start",
            f"--plugin-load-add={PLUGIN}",
            f"--group-replication-group-name={self.group_name}",
            "--group-replication-start-on-boot=OFF",
            f"--group-replication-local-address={self.local_address}",
            f"--group-replication-group-seeds={','.join(self.seeds)}",
            "--group-replication-single-primary-mode=ON",
            "--group-replication-ip-allowlist=127.0.0.1",
            "--group-replication-recovery-use-ssl=ON",  # caching_sha2_password needs TLS (or an RSA key)
            "--group-replication-message-cache-size=134217728",  # the minimum (default 1 GiB)
            "--report-host=127.0.0.1",
            f"--report-port={self.port}",
            "--performance-schema=ON",  # replication_group_members lives there
            # Speed: binary and redo logs are written at each commit but not fsynced. A SIGKILLed
            # member loses nothing by it (the kernel still holds what the process wrote).
            "--sync-binlog=0",
            "--innodb-flush-log-at-trx-commit=2",
        ]

    def _when_ready(self, conn: pymysql.connections.Connection) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_uuid")
            self.member_id = str(cur.fetchone()[0])


class ReplicationGroup:
    """Three MySQL 9.7 members in one single-primary group. See the module docstring."""

    def __init__(self, size: int = SIZE, *, extra_args: Sequence[str] = (), timeout: float = GROUP_TIMEOUT,
                 expel_timeout: int | None = None) -> None:
        """``extra_args`` go to every member's mysqld. ``expel_timeout`` sets
        group_replication_member_expel_timeout (default: the server's, 5 s; 0 makes a failover
        take ~7 s instead of ~21 s, at the price of expelling a member stalled for 5 s)."""
        check_group_replication()
        if expel_timeout is not None:
            extra_args = (f"--group-replication-member-expel-timeout={int(expel_timeout)}", *extra_args)
        self.size = size
        self.timeout = timeout
        self.group_name = str(uuid.uuid4())
        gcs_ports = self._pick_gcs_ports(size)
        seeds = [f"127.0.0.1:{port}" for port in gcs_ports]
        self.members: list[GroupMember] = []
        try:
            for index in range(size):
                self.members.append(GroupMember(index, gcs_ports[index], self.group_name, seeds, extra_args))
        except BaseException:
            self.stop()
            raise
        self.started = False
        #: seconds: "servers" (mysqld launches), "bootstrap", "join" (all joins), "total"
        self.timings: dict[str, float] = {}

    @staticmethod
    def _pick_gcs_ports(count: int) -> list[int]:
        """Free ports below the ephemeral range (and below the band galera.py uses), picked now
        but bound only at START GROUP_REPLICATION: a kernel-chosen port (a member's SQL port,
        an outgoing connection) cannot take one meanwhile."""
        try:
            ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            ephemeral = 32768
        high = min(19999, ephemeral - 1)
        low = high - 9000
        ports: list[int] = []
        for _ in range(1000 * count):
            port = random.randint(low, high)
            if port not in ports and harness._port_is_free(port):
                ports.append(port)
                if len(ports) == count:
                    return ports
        raise GroupReplicationError(f"no {count} free ports in {low}..{high}")

    def __repr__(self) -> str:
        return f"<ReplicationGroup {self.group_name} ports={[m.port for m in self.members]}>"

    def __enter__(self) -> ReplicationGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ReplicationGroup:
        """Start the servers, bootstrap the group on member 0, join the others; wait for all ONLINE."""
        if self.started:
            return self
        began = time.monotonic()
        try:
            for member in self.members:
                member.start()
                self._prepare_member(member)
            self.timings["servers"] = time.monotonic() - began
            mark = time.monotonic()
            self._bootstrap(self.members[0])
            self.timings["bootstrap"] = time.monotonic() - mark
            mark = time.monotonic()
            for member in self.members[1:]:
                self._join(member)
            self.wait_online(self.size)
            self.timings["join"] = time.monotonic() - mark
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - began
        self.started = True
        return self

    def _prepare_member(self, member: GroupMember) -> None:
        """The recovery account and its channel, local to the member (binary log off)."""
        conn = member.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin = 0")
                cur.execute(f"CREATE USER IF NOT EXISTS {_RECOVERY_ACCOUNT} IDENTIFIED BY '{RECOVERY_PASSWORD}'")
                cur.execute(f"GRANT REPLICATION SLAVE, CONNECTION_ADMIN, BACKUP_ADMIN, GROUP_REPLICATION_STREAM "
                            f"ON *.* TO {_RECOVERY_ACCOUNT}")
                cur.execute("SET SESSION sql_log_bin = 1")
                cur.execute(f"CHANGE REPLICATION SOURCE TO SOURCE_USER = '{RECOVERY_USER}', "
                            f"SOURCE_PASSWORD = '{RECOVERY_PASSWORD}' FOR CHANNEL 'group_replication_recovery'")
        finally:
            conn.close()

    def _bootstrap(self, member: GroupMember) -> None:
        conn = member.connect(read_timeout=self.timeout)
        try:
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL group_replication_bootstrap_group = ON")
                try:
                    cur.execute("START GROUP_REPLICATION")
                finally:
                    cur.execute("SET GLOBAL group_replication_bootstrap_group = OFF")
        except Exception as exc:
            raise GroupReplicationError(f"bootstrapping the group on {member.label} failed: {exc}; "
                                        f"error log {member.error_log}:\n{harness._tail(member.error_log)}") from exc
        finally:
            conn.close()
        self._wait(lambda: self._own_state(member) == "ONLINE", f"{member.label} ONLINE after bootstrap")

    def _join(self, member: GroupMember, timeout: float | None = None) -> None:
        """START GROUP_REPLICATION on ``member``; retried while the group still lists a stale
        incarnation of it (a killed member stays in the view until it is expelled)."""
        import pymysql

        deadline = time.monotonic() + (timeout or self.timeout)
        last: Exception | None = None
        while time.monotonic() < deadline:
            conn = member.connect(read_timeout=self.timeout)
            try:
                with conn.cursor() as cur:
                    cur.execute("START GROUP_REPLICATION")
                return
            except pymysql.MySQLError as exc:
                last = exc
                code = exc.args[0] if exc.args else 0
                if code == 3093:  # ER_GROUP_REPLICATION_RUNNING: it is in already
                    return
                time.sleep(2)
            finally:
                conn.close()
        raise GroupReplicationError(f"{member.label} could not join the group: {last}; error log "
                                    f"{member.error_log}:\n{harness._tail(member.error_log)}")

    def stop(self) -> None:
        """Kill every member and remove its folder (the datadirs are thrown away)."""
        for member in self.members:
            with contextlib.suppress(Exception):
                member.kill()
        for member in self.members:
            with contextlib.suppress(Exception):
                member.cleanup()
        self.started = False

    def ensure_running(self, timeout: float | None = None) -> ReplicationGroup:
        """Bring a group a test left damaged back to every member ONLINE: thaw frozen members,
        restart dead ones, rejoin those that left or were expelled; when no member is ONLINE
        any more, bootstrap again from the member that has every other member's transactions."""
        if not self.started:
            return self.start()
        for member in self.members:
            if member.is_frozen():
                member.thaw()
        if not self.view():
            for member in self.members:
                if not member.is_alive():
                    member.start()
                self._stop_group_replication(member)
            self._bootstrap(self._most_advanced())
        for member in self.members:
            if not member.is_alive():
                member.start()
                self._wait_expelled(member, timeout)
                self._join(member, timeout)
            elif self._own_state(member) not in ("ONLINE", "RECOVERING"):
                self._stop_group_replication(member)
                self._join(member, timeout)
        self.wait_online(self.size, timeout)
        return self

    def _stop_group_replication(self, member: GroupMember) -> None:
        conn = member.connect(read_timeout=self.timeout)
        try:
            with conn.cursor() as cur:
                cur.execute("STOP GROUP_REPLICATION")  # also ends an auto-rejoin in progress
                # group_replication_exit_state_action is OFFLINE_MODE in 9.x (READ_ONLY in 8.0):
                # an expelled member stays in offline_mode after it rejoins unless told otherwise.
                cur.execute("SET GLOBAL offline_mode = OFF")
        finally:
            conn.close()

    def _wait_expelled(self, member: GroupMember, timeout: float | None = None) -> None:
        """After a SIGKILL the group lists the dead incarnation as UNREACHABLE until it expels
        it (detection 5 s + group_replication_member_expel_timeout + up to 15 s until the
        suspicions are next processed). A START GROUP_REPLICATION before that blocks and
        retries inside the server, logging "[GCS] Error connecting to all peers" every 6 s."""

        def gone() -> bool:
            rows = self.view()
            return not rows or all(row["id"] != member.member_id for row in rows)

        self._wait(gone, f"the group to expel the old incarnation of {member.label}", timeout)

    def _most_advanced(self) -> GroupMember:
        executed = {m.index: str(m.query("SELECT @@GLOBAL.gtid_executed")[0][0]) for m in self.members}
        for member in self.members:
            mine = executed[member.index]
            if all(member.query("SELECT GTID_SUBSET(%s, %s)", (other, mine))[0][0] == 1
                   for other in executed.values()):
                return member
        return self.members[0]  # diverged: member 0 wins, the others may fail to join

    def kill(self, i: int) -> None:
        """SIGKILL member ``i`` (the group notices after a few seconds and expels it)."""
        self.members[i].kill()

    def restart(self, i: int, timeout: float | None = None) -> None:
        """Start member ``i`` again (stopping it cleanly first if it runs) on the same port and
        datadir, rejoin the group, wait until every member is ONLINE."""
        member = self.members[i]
        if member.is_alive():
            member.stop()  # a clean shutdown leaves the group first
        member.start()
        self._wait_expelled(member, timeout)
        self._join(member, timeout)
        self.wait_online(self.size, timeout)

    # -- SQL --------------------------------------------------------------------------------
    def connect(self, i: int, database: str | None = None, **kw: Any) -> pymysql.connections.Connection:
        """A root pymysql connection to member ``i`` (autocommit)."""
        return self.members[i].connect(database, **kw)

    def query(self, i: int, sql: str, args: Any = None, *, database: str | None = None) -> list[tuple]:
        """Run one statement on member ``i``; return its rows."""
        return self.members[i].query(sql, args, database=database)

    def env(self, i: int, database: str) -> dict[str, str]:
        return self.members[i].env(database)

    def error_log(self, i: int) -> str:
        """The text of member ``i``'s error log."""
        try:
            return self.members[i].error_log.read_text(errors="replace")
        except OSError:
            return ""

    # -- the group's state --------------------------------------------------------------------
    def _view(self, member: GroupMember) -> list[dict[str, Any]]:
        """replication_group_members as ``member`` sees it (raises when unreachable)."""
        conn = member.connect(connect_timeout=5, read_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT MEMBER_ID, MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE "
                            "FROM performance_schema.replication_group_members")
                return [dict(zip(("id", "host", "port", "state", "role"), row, strict=True))
                        for row in cur.fetchall()]
        finally:
            conn.close()

    def _own_state(self, member: GroupMember) -> str | None:
        if not member.is_alive():
            return None
        with contextlib.suppress(Exception):
            for row in self._view(member):
                if row["id"] == member.member_id:
                    return str(row["state"])
        return None

    def view(self) -> list[dict[str, Any]]:
        """The group's membership as an ONLINE member sees it: dicts with id, host, port,
        state, role and index (None for a member this object does not know). Empty when no
        live member is ONLINE."""
        by_port = {m.port: m.index for m in self.members}
        for member in self.members:
            if not member.is_alive():
                continue
            try:
                rows = self._view(member)
            except Exception:  # noqa: BLE001 - try the next member
                continue
            if any(r["id"] == member.member_id and r["state"] == "ONLINE" for r in rows):
                for row in rows:
                    row["index"] = by_port.get(row["port"])
                return rows
        return []

    def states(self) -> dict[int, str]:
        """index → MEMBER_STATE (ONLINE, RECOVERING, UNREACHABLE, ...) in the current view."""
        return {row["index"]: row["state"] for row in self.view() if row["index"] is not None}

    def roles(self) -> dict[int, str]:
        """index → MEMBER_ROLE (PRIMARY / SECONDARY) of the ONLINE members."""
        return {row["index"]: row["role"] for row in self.view()
                if row["index"] is not None and row["state"] == "ONLINE"}

    def primary(self) -> int:
        """Index of the current PRIMARY (an ONLINE member's view); GroupReplicationError if none."""
        for index, role in self.roles().items():
            if role == "PRIMARY":
                return index
        raise GroupReplicationError(f"the group has no PRIMARY now: {self.view()}")

    def secondaries(self) -> list[int]:
        return sorted(i for i, role in self.roles().items() if role == "SECONDARY")

    def _wait(self, ready: Any, what: str, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            result = ready()
            if result:
                return result
            time.sleep(0.25)
        logs = "\n".join(f"--- {m.label} ({m.error_log}):\n{harness._tail(m.error_log, 12)}" for m in self.members)
        raise GroupReplicationError(f"timed out after {timeout or self.timeout:.0f}s waiting for {what}; "
                                    f"view: {self.view()}\n{logs}")

    def wait_online(self, n: int | None = None, timeout: float | None = None) -> dict[int, str]:
        """Wait until (at least) ``n`` members (default: all) are ONLINE; return :meth:`roles`."""
        n = self.size if n is None else n

        def ready() -> dict[int, str] | None:
            rows = self.view()
            online = [r for r in rows if r["state"] == "ONLINE"]
            if len(online) >= n and any(r["role"] == "PRIMARY" for r in online):
                return {r["index"]: r["role"] for r in online}
            return None

        return self._wait(ready, f"{n} ONLINE members", timeout)

    def wait_primary(self, exclude: int | None = None, timeout: float | None = None) -> int:
        """Wait until an ONLINE PRIMARY other than ``exclude`` exists; return its index."""

        def ready() -> int | None:
            for index, role in self.roles().items():
                if role == "PRIMARY" and index != exclude:
                    return index + 1  # truthy for index 0
            return None

        return self._wait(ready, f"a PRIMARY other than {exclude}", timeout) - 1

    def switch_primary(self, i: int, timeout: float | None = None) -> None:
        """Make member ``i`` the PRIMARY (``group_replication_set_as_primary``)."""
        member = self.members[i]
        conn = self.connect(self.primary(), read_timeout=timeout or self.timeout)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT group_replication_set_as_primary(%s)", (member.member_id,))
        finally:
            conn.close()
        self._wait(lambda: self.roles().get(i) == "PRIMARY", f"{member.label} to become PRIMARY", timeout)

    def sync(self, source: int, targets: Sequence[int] | None = None, timeout: float | None = None) -> None:
        """Wait until ``targets`` (default: the other ONLINE members) applied every transaction
        ``source`` has (WAIT_FOR_EXECUTED_GTID_SET)."""
        gtids = str(self.query(source, "SELECT @@GLOBAL.gtid_executed")[0][0])
        limit = timeout or self.timeout
        for target in targets if targets is not None else [i for i in self.roles() if i != source]:
            row = self.query(target, "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", (gtids, limit))
            if row[0][0] != 0:
                raise GroupReplicationError(f"member {target} did not apply {gtids} within {limit:.0f}s")


def _main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else "smoke"
    if command != "smoke":
        print(__doc__, file=sys.stderr)
        return 2
    began = time.monotonic()
    group = ReplicationGroup()
    try:
        group.start()
        print(f"group {group.group_name}: {group.size} members ONLINE in {group.timings['total']:.1f}s "
              f"(servers {group.timings['servers']:.1f}s, bootstrap {group.timings['bootstrap']:.1f}s, "
              f"joins {group.timings['join']:.1f}s)")
        roles = group.roles()
        for m in group.members:
            print(f"  #{m.index} {m.version} sql 127.0.0.1:{m.port} xcom {m.local_address} pid {m.pid} "
                  f"{roles.get(m.index, '?')} uuid {m.member_id}")
    finally:
        mark = time.monotonic()
        group.stop()
        print(f"stopped in {time.monotonic() - mark:.1f}s; total {time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(_main(sys.argv[1:]))
