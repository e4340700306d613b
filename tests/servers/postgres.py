"""A throwaway PostgreSQL 15 server for the test suite (Debian's packages, no pg_ctl daemon).

:class:`PostgresServer` is a :class:`harness.Server` (same lifecycle and bookkeeping: a free TCP
port on 127.0.0.1, its own process group, the harness's ``atexit`` hook, ``start``/``stop``/
``kill``/``restart``/``freeze``/``thaw``/``cleanup``, ``with``) whose SQL side speaks PostgreSQL
through the tool's driver, psycopg 3.

* ``initdb -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N`` into ``<basedir>/data``; the folder
  ``/tmp/ragflow-migrate-postgres-XXXX`` belongs to user ``postgres`` (the server refuses to run
  as root). C.UTF-8 is the reference schemas' collation (../shared/ragflow-schema/postgres-15).
* pg_hba: the socket and ``postgres`` over TCP are trusted (as the MySQL harness's ``root``
  without password); every other role must give its password over TCP (scram-sha-256), so
  :meth:`create_user` makes accounts whose password matters.
* The server is ``postgres`` itself, not ``pg_ctl`` (which would detach it from this process):
  ``setpriv`` switches to ``postgres`` before exec, then sets the parent-death signal (a uid
  change clears one set earlier), so a SIGKILLed test process still takes it along. Its socket
  lies in the basedir (``-k``); it listens on 127.0.0.1 only. ``fsync`` and ``full_page_writes``
  are off (they matter when the machine crashes, not the server); ``synchronous_commit`` stays
  on, so a killed server keeps every commit it acknowledged.
* :meth:`stop` is PostgreSQL's *fast* shutdown (SIGINT: sessions are ended, then a checkpoint):
  the harness's SIGTERM would be the *smart* one, which waits for every client to leave.
  :meth:`kill` SIGKILLs the whole process group; the next start runs crash recovery.
  :meth:`freeze` stops the whole group (the postmaster alone would leave its backends serving).
* :meth:`load_sql` runs ``psql`` (the reference files are plain ``pg_dump`` scripts) in one
  transaction, stopping at the first error.

Command line::

    python tests/servers/postgres.py smoke   # start, load fresh v0.27.0, print version and timings; stop
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    from . import harness
except ImportError:  # run as a script: tests/servers is sys.path[0]
    import harness  # type: ignore[no-redef]

if TYPE_CHECKING:
    import psycopg

__all__ = ["BINDIR", "LABEL", "PostgresServer", "advisory_key", "running", "start_postgres"]

BINDIR = Path(os.environ.get("RAGFLOW_MIGRATE_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
LABEL = "postgres-15"
EXPECTED_SERIES = "15."
SERVICE_USER = "postgres"
PROVISION_HINT = "PostgreSQL 15 comes from Debian: `apt-get install -y --no-install-recommends postgresql-15`"

#: Server options (beyond port, socket folder and datadir): loopback only, test durability, room
#: for the suites' concurrent sessions.
SERVER_OPTIONS = (
    "listen_addresses=127.0.0.1",
    "max_connections=200",
    # Durable against a killed server (the kill suites), not against a crashed machine: fsync and
    # full-page writes guard against the latter only. synchronous_commit stays on: off, a SIGKILL
    # loses commits still in the WAL buffers.
    "fsync=off",
    "full_page_writes=off",
    "logging_collector=off",
    "log_line_prefix=%m [%p] %q%u@%d ",
)

#: Who may connect how: the socket and the superuser over TCP without a password (the harness
#: and the tool's tests), every other role with its password.
PG_HBA = """\
# written by tests/servers/postgres.py
local   all   all                        trust
host    all   postgres   127.0.0.1/32    trust
host    all   all        127.0.0.1/32    scram-sha-256
"""

_TAG = re.compile(r"^[A-Z][A-Z ]*[A-Z](?: \d+)*$")  # a command tag psql prints: "CREATE TABLE", "INSERT 0 1"


def advisory_key(name: str = "init_database_tables") -> int:
    """RAGFlow's advisory-lock key for a lock name: int(md5(name).hexdigest(), 16) % (2**31 - 1)."""
    import hashlib

    return int(hashlib.md5(name.encode("utf-8")).hexdigest(), 16) % (2**31 - 1)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _service_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise harness.ProvisioningError(f"no user {SERVICE_USER!r} (made by postgresql-common); {PROVISION_HINT}") from None
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


class PostgresServer(harness.Server):
    flavor = "postgres"
    label = LABEL

    def __init__(self, basedir: str | os.PathLike[str] | None = None, *, extra_args: Sequence[str] = ()) -> None:
        for tool in ("initdb", "postgres", "psql"):
            if not (BINDIR / tool).is_file():
                raise harness.ProvisioningError(f"PostgreSQL 15 is not installed ({BINDIR / tool} is missing); "
                                                f"{PROVISION_HINT}")
        self._as_root = os.geteuid() == 0
        if self._as_root:
            _service_ids()
            if not shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin"):
                raise harness.ProvisioningError("setpriv (util-linux) is missing: it runs the server as postgres")
        super().__init__(basedir, extra_args=extra_args)
        if len(str(self.socket_file)) > 100:  # sun_path holds 108 bytes
            raise harness.ServerError(f"socket path too long: {self.socket_file}; use a shorter basedir")

    # -- paths ----------------------------------------------------------------------------------
    def _make_basedir(self, basedir: str | os.PathLike[str] | None) -> Path:
        if basedir is None:
            path = harness._new_owned_dir(Path(tempfile.gettempdir()), "ragflow-migrate-postgres-")
        else:
            path = Path(basedir)
            path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            uid, gid = _service_ids()
            os.chown(path, uid, gid)  # the server writes its socket and log here
        return path

    @property
    def socket_path(self) -> Path:
        """The socket *folder* (``-k``), as libpq's ``host`` takes it."""
        return self.basedir

    @property
    def socket_file(self) -> Path:
        return self.basedir / f".s.PGSQL.{self.port or 65535}"

    @property
    def error_log(self) -> Path:
        return self.basedir / "postgres.log"

    # -- lifecycle ------------------------------------------------------------------------------
    def _as_service_user(self, *, pdeathsig: bool) -> list[str]:
        if not self._as_root:
            return []
        uid, gid = _service_ids()
        cmd = [shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin") or "setpriv",
               f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        if pdeathsig:
            cmd.append("--pdeathsig=KILL")  # after the uid change, which clears an earlier one
        return [*cmd, "--"]

    def _popen_env(self) -> dict[str, str]:
        return {"PATH": f"{BINDIR}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
                "HOME": str(self.basedir)}

    def _initialise(self) -> None:
        shutil.rmtree(self.datadir, ignore_errors=True)
        cmd = [*self._as_service_user(pdeathsig=False), str(BINDIR / "initdb"), "-D", str(self.datadir),
               "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "-N"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self._popen_env(), check=False, timeout=300,
                              cwd=self.basedir)
        if proc.returncode != 0:
            raise harness.ServerError(f"initdb failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                                      f"{proc.stderr[-3000:]}")
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(PG_HBA)
        if self._as_root:
            uid, gid = _service_ids()
            os.chown(hba, uid, gid)

    def _command(self) -> list[str]:
        threaded = threading.current_thread() is not threading.main_thread()
        options = [arg for option in SERVER_OPTIONS for arg in ("-c", option)]
        return [*self._as_service_user(pdeathsig=not threaded), str(BINDIR / "postgres"),
                "-D", str(self.datadir), "-p", str(self.port), "-k", str(self.socket_path),
                *options, *self.extra_args]

    def _launch_and_wait(self) -> None:
        log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
        with open(self.error_log, "ab") as out:
            threaded = threading.current_thread() is not threading.main_thread()
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self._popen_env(), cwd=self.basedir, start_new_session=True,
                preexec_fn=None if threaded else harness._child_setup,
            )
        self.pid = self._proc.pid  # setpriv execs the server: the pid is the postmaster's
        self._frozen = False
        with harness._LIVE_LOCK:
            harness._LIVE.add(self)
        deadline = time.monotonic() + harness.START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self._log_since(log_offset)
                self._reap()
                if "Address already in use" in log:
                    raise harness._PortInUse()
                raise harness.ServerError(f"{self.label} exited with code {self._proc.returncode} while starting on "
                                          f"port {self.port}; log {self.error_log}:\n{log}")
            try:
                conn = self.connect(connect_timeout=2)
            except Exception as exc:  # noqa: BLE001 - not ready yet ("the database system is starting up")
                last_error = exc
                time.sleep(0.03)
                continue
            try:
                self.version = str(conn.execute("SHOW server_version").fetchone()[0])
            finally:
                conn.close()
            if not self.version.startswith(EXPECTED_SERIES):
                import warnings

                warnings.warn(f"{self.label} runs {self.version}: not the {EXPECTED_SERIES}x the reference "
                              f"schemas in {self.schema_folder} were made with", stacklevel=3)
            return
        self.kill()
        raise harness.ServerError(f"{self.label} did not accept connections on port {self.port} within "
                                  f"{harness.START_TIMEOUT:.0f}s (last error: {last_error}); log {self.error_log}:\n"
                                  f"{harness._tail(self.error_log)}")

    #: Fast shutdown: SIGINT ends the open sessions (SIGTERM, "smart", would wait for them).
    STOP_SIGNAL = signal.SIGINT

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers."""
        if not self.is_alive():
            raise harness.ServerError(f"{self.label} is not running")
        os.killpg(self.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        self._frozen = True
        self._wait_state(stopped=True)

    def thaw(self) -> None:
        if self.is_alive():
            os.killpg(self.pid, signal.SIGCONT)  # type: ignore[arg-type]
            self._wait_state(stopped=False)
        self._frozen = False

    # -- SQL ------------------------------------------------------------------------------------
    def _connect_raw(self, **kw: Any) -> psycopg.Connection:
        return self.connect(**kw)

    def connect(self, database: str | None = None, user: str = "postgres", password: str = "",
                **kw: Any) -> psycopg.Connection:
        """A psycopg 3 connection over TCP (autocommit unless ``autocommit=False``); ``database``
        defaults to ``postgres``. Extra keywords are libpq's (``application_name=...``)."""
        import psycopg

        kw.setdefault("connect_timeout", 10)
        kw.setdefault("autocommit", True)
        return psycopg.connect(host=self.host, port=self.port, dbname=database or "postgres", user=user,
                               password=password, sslmode="disable", **kw)

    def query(self, sql: str, args: Any = None, *, database: str | None = None) -> list[tuple]:
        """Run one statement on a new superuser connection; return its rows ([] when it has none)."""
        with self.connect(database) as conn:
            cur = conn.execute(sql, args)
            return list(cur.fetchall()) if cur.description is not None else []

    def create_database(self, name: str, collation: str = "C.UTF-8") -> str:
        """UTF8 with LC_COLLATE and LC_CTYPE ``collation``, from template0 (as the reference's)."""
        self.query(f"CREATE DATABASE {_quote_ident(name)} ENCODING 'UTF8' LC_COLLATE {_quote_str(collation)} "
                   f"LC_CTYPE {_quote_str(collation)} TEMPLATE template0")
        return name

    def drop_database(self, name: str) -> None:
        """Drop it even while sessions are connected (they are ended)."""
        self.query(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def load_sql(self, database: str | None, path_or_text: str | os.PathLike[str]) -> int:
        """Run a script (a file path, or SQL text) with psql in one transaction, stopping at the
        first error; return the number of statements (the command tags psql printed).

        An error names the script and psql's own message (file, line, statement)."""
        text, name = harness._read_script(path_or_text)
        from_file = name != "<sql text>"  # psql's messages then name the file and line
        cmd = [str(BINDIR / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password",
               "-h", str(self.socket_path), "-p", str(self.port), "-U", "postgres", "-d", database or "postgres",
               "-f", name if from_file else "-"]
        proc = subprocess.run(cmd, input=None if from_file else text, capture_output=True, text=True, check=False,
                              timeout=600,
                              env={**self._popen_env(), "PGAPPNAME": "ragflow-migrate-tests-load",
                                   "PGOPTIONS": "-c client_min_messages=warning"})
        if proc.returncode != 0:
            raise harness.ServerError(f"{self.label}: {name}: psql failed (exit {proc.returncode}):\n"
                                      f"{proc.stderr.strip()[-3000:]}")
        return sum(1 for line in proc.stdout.splitlines() if _TAG.match(line) and line not in ("BEGIN", "COMMIT"))

    def create_user(self, name: str, password: str, grants: Sequence[str] = (), host: str = "%") -> str:
        """Create the login role ``name`` with ``password`` (checked over TCP); each grant is a whole
        statement or what follows GRANT, e.g. ``"CONNECT ON DATABASE db TO {user}"`` (``{user}``
        is replaced by the quoted role). ``host`` is MySQL's and ignored. Returns the role."""
        role = _quote_ident(name)
        self.query(f"CREATE ROLE {role} LOGIN PASSWORD {_quote_str(password)}")
        for grant in grants:
            statement = grant if re.match(r"^\s*(GRANT|ALTER|REVOKE)\s", grant, re.I) else f"GRANT {grant}"
            self.query(statement.replace("{user}", role))
        return name

    def drop_user(self, name: str, host: str = "%") -> None:
        self.query(f"DROP ROLE IF EXISTS {_quote_ident(name)}")

    def env(self, database: str, user: str = "postgres", password: str = "") -> dict[str, str]:
        """RAGFlow's DB_TYPE and POSTGRES_* variables pointing at this server."""
        return {
            "DB_TYPE": "postgres",
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DBNAME": database,
        }


def start_postgres(basedir: str | os.PathLike[str] | None = None, **kw: Any) -> PostgresServer:
    server = PostgresServer(basedir, **kw)
    try:
        return server.start()
    except BaseException:
        server.cleanup()
        raise


@contextlib.contextmanager
def running(basedir: str | os.PathLike[str] | None = None, **kw: Any) -> Iterator[PostgresServer]:
    """``with running() as pg:`` a server for the block, stopped and removed after."""
    server = start_postgres(basedir, **kw)
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.cleanup()


def _main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else "smoke"
    if command != "smoke":
        print(__doc__, file=sys.stderr)
        return 2
    started = time.monotonic()
    with running() as pg:
        print(f"{pg.label}: {pg.version} on port {pg.port}, pid {pg.pid}: start {pg.start_seconds:.2f}s "
              f"(initdb {pg.init_seconds:.2f}s)")
        reference = pg.schema_file("v0.27.0")
        t = time.monotonic()
        pg.create_database("smoke")
        statements = pg.load_sql("smoke", reference)
        tables = pg.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database="smoke")[0][0]
        print(f"  {reference.name}: {statements} statements, {tables} tables in {time.monotonic() - t:.2f}s")
        t = time.monotonic()
    print(f"stopped in {time.monotonic() - t:.2f}s (total {time.monotonic() - started:.2f}s)")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(_main(sys.argv[1:]))
