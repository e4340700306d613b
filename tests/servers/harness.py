"""Throwaway MariaDB 10.11 and Oracle MySQL 9.7 servers for the real-server test suite.

Each :class:`Server` is a private server process on 127.0.0.1 with a free TCP port, its own
datadir in a temporary folder, and an account ``root`` without password reachable over TCP.

* MariaDB 10.11 runs from the host's Debian packages (``mariadb-install-db`` + ``mariadbd``).
* MySQL 9.7 runs inside the Debian sid chroot that ``tests/servers/provision.sh`` builds
  (``chroot /srv/ragflow-migrate/mysql-sid /usr/sbin/mysqld ...``); its datadir and socket live
  in the chroot's ``/tmp``; clients reach it over TCP (the chroot shares the host network).
  A datadir is not initialised per server: ``mysqld --initialize-insecure`` runs once per
  MySQL version into a template (cached inside the chroot), which each server copies.

Stray servers do not outlive the Python process that started them: each server runs in its
own process group, an ``atexit`` hook kills what is still running, and (when started from the
main thread) the kernel kills the server when its parent dies (``PR_SET_PDEATHSIG``), which
also covers a SIGKILLed test process.

Command line (used by provision.sh; needs no third-party module)::

    python tests/servers/harness.py prepare   # build the MySQL template datadir now
    python tests/servers/harness.py smoke     # start both servers, print versions and timings
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pymysql is imported lazily: `harness.py prepare` runs without the venv
    import pymysql.connections

__all__ = [
    "FLAVORS",
    "LABELS",
    "PROVISION_HINT",
    "ProvisioningError",
    "Server",
    "ServerError",
    "MariaDBServer",
    "MySQLServer",
    "prepare_mysql_template",
    "running",
    "schema_path",
    "schema_root",
    "split_sql",
    "start_server",
]

SRV = Path(os.environ.get("RAGFLOW_MIGRATE_SRV", "/srv/ragflow-migrate"))
MYSQL_CHROOT = Path(os.environ.get("RAGFLOW_MIGRATE_MYSQL_CHROOT", str(SRV / "mysql-sid")))
CHROOT_MARKER = ".ragflow-migrate-chroot"  # written by provision.sh into a chroot that works
PROVISION_HINT = "run `sudo bash tests/servers/provision.sh` (or `make servers`) once on this machine"

FLAVORS = ("mariadb", "mysql")
LABELS = {"mariadb": "mariadb-10.11", "mysql": "mysql-9.7"}
EXPECTED_SERIES = {"mariadb": "10.11.", "mysql": "9.7."}

#: Options both servers run with (those the reference schemas were made with, plus test sizing).
COMMON_ARGS = (
    "--no-defaults",  # must stay first: never read /etc/mysql/*.cnf of the system server
    "--user=root",
    "--bind-address=127.0.0.1",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--max-connections=1000",
    "--innodb-buffer-pool-size=64M",
)

START_TIMEOUT = float(os.environ.get("RAGFLOW_MIGRATE_SERVER_START_TIMEOUT", "120"))
STOP_TIMEOUT = 60.0
KEEP_DATADIRS = os.environ.get("RAGFLOW_MIGRATE_KEEP_DATADIRS", "") not in ("", "0")

_ROOT_ACCOUNT_SQL = (
    # skip-name-resolve: root@localhost matches only socket clients; TCP clients come as 127.0.0.1.
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\n"
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n"
)


class ServerError(RuntimeError):
    """A server could not be started, stopped or reached."""


class ProvisioningError(ServerError):
    """This machine lacks what the servers need: run tests/servers/provision.sh."""


def shared_root() -> Path:
    """The folder holding RAGFlow's facts (``ragflow-schema/``, ``ragflow-data/``), read, never copied.

    ``$RAGFLOW_MIGRATE_SHARED`` when set; else ``shared/`` beside the repository (CI lays it beside
    its clone), else ``/work/shared``.
    """
    if os.environ.get("RAGFLOW_MIGRATE_SHARED"):
        return Path(os.environ["RAGFLOW_MIGRATE_SHARED"])
    repo = Path(__file__).resolve().parents[2]
    for candidate in (repo.parent / "shared", repo / "shared"):
        if (candidate / "ragflow-schema").is_dir():
            return candidate
    return Path("/work/shared")


def schema_root() -> Path:
    """The folder holding ``mariadb-10.11/`` and ``mysql-9.7/`` reference schemas
    (``$RAGFLOW_SCHEMA_DIR`` when set, else :func:`shared_root`'s ``ragflow-schema``)."""
    if os.environ.get("RAGFLOW_SCHEMA_DIR"):
        return Path(os.environ["RAGFLOW_SCHEMA_DIR"])
    return shared_root() / "ragflow-schema"


def schema_path(label: str, release: str, kind: str = "fresh") -> Path:
    """``<schema_root>/<label>/<kind>-<release>.sql``; ``release`` may omit the ``v``.

    For ``kind="upgrade"``, ``release`` is ``v0.20.0-to-v0.27.0``, or just the source release
    ``v0.20.0`` when exactly one file starts with it. The path may not exist.
    """
    folder = schema_root() / label
    release = release if release.startswith("v") else "v" + release
    path = folder / f"{kind}-{release}.sql"
    if not path.is_file() and kind != "fresh" and "-to-" not in release:
        matches = sorted(folder.glob(f"{kind}-{release}-to-*.sql"))
        if len(matches) == 1:
            return matches[0]
    return path


# ---------------------------------------------------------------------------------------------
# Process bookkeeping: every live server is killed when this Python process exits.

_LIVE: set[Server] = set()  # strong references: a forgotten server is still killed at exit
_LIVE_LOCK = threading.Lock()
_PR_SET_PDEATHSIG = 1


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - not glibc
        return None


_LIBC = _libc()
_PRCTL = _LIBC.prctl if _LIBC is not None else None  # resolved now, not in the forked child


def _child_setup() -> None:  # runs in the child between fork and exec: keep it minimal
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _kill_all_at_exit() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for srv in servers:
        with contextlib.suppress(Exception):
            srv.kill()
    for srv in servers:
        with contextlib.suppress(Exception):
            srv.cleanup()
    _release_chroot_proc()


atexit.register(_kill_all_at_exit)


def _pick_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _proc_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (R, S, T, Z, ...) or None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0]


def _process_identity(pid: int) -> str | None:
    """"<pid> <start time>": tells a live process from a later one that reuses its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid} {stat[stat.rindex(')') + 2 :].split()[19]}"


_OWNER_FILE = "owner"


def _new_owned_dir(parent: Path, prefix: str) -> Path:
    """mkdtemp, marked with this process as its owner; first removes the folders with that
    prefix whose owner died without cleaning up (a SIGKILLed test run), unless a server still
    runs from them."""
    with contextlib.suppress(OSError):
        for old in parent.glob(prefix + "*"):
            owner = old / _OWNER_FILE
            try:
                recorded = owner.read_text().strip()
            except OSError:
                continue  # not one of ours, or being created right now
            if _process_identity(int(recorded.split()[0])) == recorded:
                continue
            server_pid = old / "mysqld.pid"
            with contextlib.suppress(OSError, ValueError):
                if _proc_state(int(server_pid.read_text().split()[0])) not in (None, "Z"):
                    continue
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (path / _OWNER_FILE).write_text(str(_process_identity(os.getpid())) + "\n")
    return path


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# The MySQL chroot: /proc mounted while any process of any session uses it.
#
# Each Python process that runs chroot servers holds a shared flock on a file in the chroot for
# its lifetime; /proc is mounted under a short exclusive "mutex" lock. At exit, a process that
# can upgrade to an exclusive lock is the last user and unmounts /proc.

_PROC_LOCK_FD: int | None = None
_PROC_ROOT: Path | None = None  # the chroot whose users-lock _PROC_LOCK_FD holds


def _flock_file(path: Path, mode: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, mode)
    return fd


def _proc_mounted(root: Path) -> bool:
    target = str(root / "proc")
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts if len(line.split()) > 2)


def check_mysql_chroot(root: Path = MYSQL_CHROOT) -> None:
    if not (root / CHROOT_MARKER).is_file() or not (root / "usr/sbin/mysqld").exists():
        raise ProvisioningError(
            f"MySQL 9.7 is not provisioned: no working chroot at {root} ({PROVISION_HINT})"
        )
    if os.geteuid() != 0:
        raise ProvisioningError("MySQL 9.7 runs in a chroot, which needs root; run the tests as root")


def _use_chroot_proc(root: Path = MYSQL_CHROOT) -> None:
    global _PROC_LOCK_FD, _PROC_ROOT
    check_mysql_chroot(root)
    if _PROC_LOCK_FD is None:
        _PROC_LOCK_FD = _flock_file(root / ".ragflow-migrate-proc.users", fcntl.LOCK_SH)
        _PROC_ROOT = root
    elif _PROC_ROOT != root:
        raise ServerError(f"this process already runs servers in {_PROC_ROOT}; one chroot per process")
    mutex = _flock_file(root / ".ragflow-migrate-proc.mutex", fcntl.LOCK_EX)
    try:
        if not _proc_mounted(root):
            subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True,
                           capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise ProvisioningError(f"cannot mount /proc in {root}: {exc.stderr.strip()}") from None
    finally:
        os.close(mutex)


def _chroot_processes(root: Path) -> list[int]:
    """Pids of processes whose root directory is the chroot (servers of any session or tool)."""
    target = str(root)
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry.name}/root") == target and _proc_state(int(entry.name)) != "Z":
                    pids.append(int(entry.name))
    return pids


def _release_chroot_proc() -> None:
    """At exit: unmount the chroot's /proc if no other harness process and no process at all
    (a server started by other means included) still uses the chroot."""
    global _PROC_LOCK_FD, _PROC_ROOT
    if _PROC_LOCK_FD is None or _PROC_ROOT is None:
        return
    fd, root = _PROC_LOCK_FD, _PROC_ROOT
    _PROC_LOCK_FD = _PROC_ROOT = None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another harness process still uses the chroot
        mutex = _flock_file(root / ".ragflow-migrate-proc.mutex", fcntl.LOCK_EX)
        try:
            if _proc_mounted(root) and not _chroot_processes(root):
                subprocess.run(["umount", str(root / "proc")], check=False, capture_output=True)
        finally:
            os.close(mutex)
    finally:
        os.close(fd)


def _chroot_mysqld_version(root: Path = MYSQL_CHROOT) -> str:
    out = subprocess.run(
        ["chroot", str(root), "/usr/sbin/mysqld", "--no-defaults", "--version"],
        capture_output=True, text=True, env=_CHROOT_ENV, check=False,
    )
    match = re.search(r"Ver (\d+\.\d+\.\d+\S*)", out.stdout)
    if not match:
        raise ProvisioningError(
            f"the chroot's mysqld does not run ({out.stderr.strip() or out.stdout.strip()}); {PROVISION_HINT}"
        )
    return match.group(1)


_CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": "/root"}

# ---------------------------------------------------------------------------------------------
# The MySQL template datadir: `mysqld --initialize-insecure` once per version and init options.

#: Server options that shape the files of a datadir (the template must be made with them too).
MYSQL_DATADIR_ARGS = ("--innodb-redo-log-capacity=32M",)
_MYSQL_INIT_SQL = (
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED WITH caching_sha2_password BY '';\n"
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n"
)
_TEMPLATES = Path("var/lib/ragflow-migrate")  # inside the chroot: rebuilt with it


def _template_key(version: str) -> str:
    digest = hashlib.sha256(("\n".join(MYSQL_DATADIR_ARGS) + _MYSQL_INIT_SQL).encode()).hexdigest()[:10]
    return f"template-{version}-{digest}"


def prepare_mysql_template(root: Path = MYSQL_CHROOT, *, verbose: bool = False) -> Path:
    """Return the host path of a ready template datadir, building it (once, locked) if needed."""
    _use_chroot_proc(root)
    version = _chroot_mysqld_version(root)
    templates = root / _TEMPLATES
    templates.mkdir(parents=True, exist_ok=True)
    final = templates / _template_key(version)
    if (final / "READY").is_file():
        return final / "data"
    lock = _flock_file(templates / ".lock", fcntl.LOCK_EX)
    try:
        if (final / "READY").is_file():  # another process built it while we waited
            return final / "data"
        for stale in templates.glob(".build-*"):  # builds run under this lock: leftovers of a crash
            shutil.rmtree(stale, ignore_errors=True)
        started = time.monotonic()
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=templates))
        inner = "/" + str(build.relative_to(root))
        (build / "init.sql").write_text(_MYSQL_INIT_SQL)
        cmd = [
            "chroot", str(root), "/usr/sbin/mysqld", "--no-defaults", "--initialize-insecure", "--user=root",
            f"--datadir={inner}/data", f"--init-file={inner}/init.sql", f"--log-error={inner}/init.log",
            *MYSQL_DATADIR_ARGS,
        ]
        proc = subprocess.run(cmd, env=_CHROOT_ENV, capture_output=True, text=True, check=False,
                              timeout=600, preexec_fn=_child_setup)
        if proc.returncode != 0:
            log = _tail(build / "init.log", 40)
            shutil.rmtree(build, ignore_errors=True)
            raise ServerError(f"mysqld --initialize-insecure failed (exit {proc.returncode}):\n{log}\n{proc.stderr}")
        (build / "READY").write_text(f"mysqld {version}, {time.monotonic() - started:.1f}s\n")
        os.rename(build, final)
        if verbose:
            print(f"mysql template {final.name}: initialised in {time.monotonic() - started:.1f}s")
        return final / "data"
    finally:
        os.close(lock)


# ---------------------------------------------------------------------------------------------
# SQL scripts


def split_sql(text: str) -> list[str]:
    """Split a script into statements at ``;`` outside quotes and comments.

    Understands '...' and "..." strings (backslash escapes, doubled quotes), `identifiers`,
    ``-- `` and ``#`` comments (dropped) and ``/* ... */`` comments (kept: ``/*!...*/`` is
    executable). Empty statements are dropped; no DELIMITER support (none is needed here).
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`":
            j = i + 1
            while j < n:
                d = text[j]
                if d == "\\" and c != "`":
                    j += 2
                    continue
                if d == c:
                    if j + 1 < n and text[j + 1] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            buf.append(text[i : j + 1])
            i = j + 1
        elif c == "-" and text.startswith("--", i) and (i + 2 >= n or text[i + 2] in " \t\r\n"):
            j = text.find("\n", i)
            i = n if j < 0 else j  # keep the newline
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            buf.append(text[i:j])
            i = j
        elif c == ";":
            stmt = "".join(buf).strip()
            if stmt:
                statements.append(stmt)
            buf = []
            i += 1
        else:
            j = i + 1
            while j < n and text[j] not in "'\"`-#/;":
                j += 1
            buf.append(text[i:j])
            i = j
    stmt = "".join(buf).strip()
    if stmt:
        statements.append(stmt)
    return statements


def _read_script(path_or_text: str | os.PathLike[str]) -> tuple[str, str]:
    """(text, name for messages). A str is a path when it names an existing file, else SQL."""
    if isinstance(path_or_text, os.PathLike):
        path = Path(path_or_text)
        return path.read_text(encoding="utf-8"), str(path)
    text = str(path_or_text)
    if "\n" not in text and ";" not in text and len(text) < 4096:
        path = Path(text)
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
        if text.endswith(".sql"):
            raise FileNotFoundError(f"no SQL file {text}")
    return text, "<sql text>"


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _quote_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------


class Server:
    """One throwaway server process. Create with :func:`start_server` (or a subclass + start())."""

    flavor: str = ""
    label: str = ""
    host = "127.0.0.1"

    def __init__(self, basedir: str | os.PathLike[str] | None = None, *, extra_args: Sequence[str] = ()) -> None:
        self.port: int = 0
        self.pid: int | None = None
        self.version: str = ""
        self.extra_args = tuple(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False
        self._initialised = False
        self._owns_basedir = basedir is None
        self.basedir: Path = self._make_basedir(basedir)
        #: seconds taken by the last start(): datadir creation (first start only) + launch + ready
        self.start_seconds: float = 0.0
        self.init_seconds: float = 0.0

    # -- paths ----------------------------------------------------------------------------------
    def _make_basedir(self, basedir: str | os.PathLike[str] | None) -> Path:
        if basedir is None:
            return _new_owned_dir(Path(tempfile.gettempdir()), f"ragflow-migrate-{self.flavor}-")
        path = Path(basedir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def datadir(self) -> Path:
        return self.basedir / "data"

    @property
    def socket_path(self) -> Path:
        return self.basedir / "mysqld.sock"

    @property
    def error_log(self) -> Path:
        return self.basedir / "error.log"

    @property
    def schema_folder(self) -> Path:
        return schema_root() / self.label

    def schema_file(self, release: str, kind: str = "fresh") -> Path:
        """This server's reference schema file: see :func:`schema_path`."""
        return schema_path(self.label, release, kind)

    def __repr__(self) -> str:
        state = "frozen" if self._frozen else ("alive" if self.is_alive() else "stopped")
        return f"<{type(self).__name__} {self.label} {self.host}:{self.port} pid={self.pid} {state}>"

    # -- lifecycle ------------------------------------------------------------------------------
    def _initialise(self) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_env(self) -> dict[str, str]:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": "/root"}

    def start(self) -> Server:
        """Start the server: on first start creates the datadir and picks a free port; later
        starts (after stop() or kill()) reuse the same port and datadir (crash recovery)."""
        if self.is_alive():
            return self
        self._reap()
        started = time.monotonic()
        if not self._initialised:
            self._initialise()
            self._initialised = True
            self.init_seconds = time.monotonic() - started
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self.port = _pick_port()
            elif not _port_is_free(self.port):
                raise ServerError(f"{self.label}: port {self.port} is taken; cannot restart on the same port")
            try:
                self._launch_and_wait()
                break
            except _PortInUse:
                if attempt == attempts - 1:
                    raise ServerError(f"{self.label}: no free port after {attempts} attempts") from None
        self.start_seconds = time.monotonic() - started
        return self

    def _launch_and_wait(self) -> None:
        log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
        with open(self.basedir / "stdout.log", "ab") as out:
            threaded = threading.current_thread() is not threading.main_thread()
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self._popen_env(), start_new_session=True,
                # PDEATHSIG fires when the *thread* that forked exits: only safe from the main thread.
                preexec_fn=None if threaded else _child_setup,
            )
        self.pid = self._proc.pid
        self._frozen = False
        with _LIVE_LOCK:
            _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self._log_since(log_offset)
                self._reap()
                if "Address already in use" in log or "Do you already have another" in log:
                    raise _PortInUse()
                raise ServerError(
                    f"{self.label} exited with code {self._proc.returncode} while starting on port {self.port}; "
                    f"error log {self.error_log}:\n{log}"
                )
            try:
                conn = self._connect_raw(connect_timeout=2, read_timeout=10, **self._probe_params())
            except Exception as exc:  # noqa: BLE001 - not ready yet
                last_error = exc
                time.sleep(0.05)
                continue
            try:
                self._when_ready(conn)
                with conn.cursor() as cur:
                    cur.execute("SELECT VERSION()")
                    self.version = str(cur.fetchone()[0])
            finally:
                conn.close()
            if not self.version.startswith(EXPECTED_SERIES[self.flavor]):
                warnings.warn(f"{self.label} runs {self.version}: not the {EXPECTED_SERIES[self.flavor]}x the "
                              f"reference schemas in {self.schema_folder} were made with", stacklevel=3)
            return
        self.kill()
        raise ServerError(
            f"{self.label} did not accept connections on port {self.port} within {START_TIMEOUT:.0f}s "
            f"(last error: {last_error}); error log {self.error_log}:\n{_tail(self.error_log)}"
        )

    def _probe_params(self) -> dict[str, Any]:
        """How the readiness probe connects (default: TCP as root)."""
        return {}

    def _when_ready(self, conn: pymysql.connections.Connection) -> None:
        """Runs on the probe's connection once the server answers."""

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.error_log, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace")
        except OSError:
            text = ""
        return "\n".join(text.splitlines()[-30:]) or _tail(self.basedir / "stdout.log")

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=0 if self._proc.returncode is not None else 5)

    def is_alive(self) -> bool:
        """True while the server process exists (also when frozen)."""
        if self._proc is None:
            return False
        if self._proc.poll() is not None:
            return False
        return _proc_state(self._proc.pid) not in (None, "Z", "X")

    def is_frozen(self) -> bool:
        return self.is_alive() and _proc_state(self.pid) in ("T", "t")  # type: ignore[arg-type]

    #: The signal of a clean shutdown (SIGTERM for mysqld/mariadbd, as `mysqladmin shutdown`).
    STOP_SIGNAL = signal.SIGTERM

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Clean shutdown (:attr:`STOP_SIGNAL`); SIGKILL if it takes over ``timeout``."""
        if not self.is_alive():
            self._reap()
            self._forget()
            return
        assert self._proc is not None
        if self._frozen or self.is_frozen():
            self.thaw()
        os.kill(self._proc.pid, self.STOP_SIGNAL)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError(f"{self.label} did not shut down within {timeout:.0f}s; killed it") from None
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server process (no shutdown: the next start() runs crash recovery)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):  # anything it forked
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=30)
        self._frozen = False
        self._forget()

    def restart(self) -> Server:
        """Stop cleanly if running (after kill(): nothing to stop), then start on the same port and datadir."""
        if self.is_alive():
            self.stop()
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing until thaw()."""
        if not self.is_alive():
            raise ServerError(f"{self.label} is not running")
        os.kill(self.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        self._frozen = True
        self._wait_state(stopped=True)

    def thaw(self) -> None:
        """SIGCONT after freeze()."""
        if self.is_alive():
            os.kill(self.pid, signal.SIGCONT)  # type: ignore[arg-type]
            self._wait_state(stopped=False)
        self._frozen = False

    def _wait_state(self, *, stopped: bool, timeout: float = 10.0) -> None:
        """Signals reach all threads asynchronously: wait until /proc shows the new state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.is_alive():
            if (_proc_state(self.pid) in ("T", "t")) == stopped:  # type: ignore[arg-type]
                return
            time.sleep(0.005)

    def ensure_running(self) -> Server:
        """Thaw a frozen server, restart a dead one: a shared server left broken by a test."""
        if self.is_frozen() or self._frozen:
            self.thaw()
        if not self.is_alive():
            self.start()
        return self

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def cleanup(self) -> None:
        """Kill the server if still running and remove its folder (unless RAGFLOW_MIGRATE_KEEP_DATADIRS)."""
        self.kill()
        if not KEEP_DATADIRS:
            shutil.rmtree(self.basedir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()

    # -- SQL ------------------------------------------------------------------------------------
    def _connect_raw(self, **kw: Any) -> pymysql.connections.Connection:
        import pymysql

        params: dict[str, Any] = {"host": self.host, "port": self.port, "user": "root", "password": "",
                                  "charset": "utf8mb4", "autocommit": True}
        params.update(kw)
        return pymysql.connect(**params)

    def connect(self, database: str | None = None, user: str = "root", password: str = "",
                **kw: Any) -> pymysql.connections.Connection:
        """A pymysql connection over TCP (utf8mb4, autocommit on unless ``autocommit=False``)."""
        kw.setdefault("connect_timeout", 10)
        return self._connect_raw(database=database, user=user, password=password, **kw)

    def query(self, sql: str, args: Any = None, *, database: str | None = None) -> list[tuple]:
        """Run one statement on a new root connection; return its rows."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def create_database(self, name: str, collation: str = "utf8mb4_unicode_ci") -> str:
        charset = collation.split("_", 1)[0]
        self.query(f"CREATE DATABASE {_quote_ident(name)} CHARACTER SET {charset} COLLATE {collation}")
        return name

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE IF EXISTS {_quote_ident(name)}")

    def load_sql(self, database: str | None, path_or_text: str | os.PathLike[str]) -> int:
        """Execute a script (a file path, or SQL text) statement by statement; return the count.

        Foreign key checks are off while loading (as in a mysqldump); other session settings
        are the server's defaults. An error names the script, the statement's number and start.
        """
        import pymysql

        text, name = _read_script(path_or_text)
        statements = split_sql(text)
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute("SET FOREIGN_KEY_CHECKS = 0")
                for number, stmt in enumerate(statements, 1):
                    try:
                        cur.execute(stmt)
                    except pymysql.MySQLError as exc:
                        head = " ".join(stmt.split())[:160]
                        raise ServerError(
                            f"{self.label}: {name}: statement {number} of {len(statements)} failed: {exc}\n  {head}"
                        ) from exc
        finally:
            conn.close()
        return len(statements)

    def create_user(self, name: str, password: str, grants: Sequence[str] = (), host: str = "%") -> str:
        """Create ``name@host`` with ``password``; each grant is what goes between GRANT and TO,
        e.g. ``"ALL PRIVILEGES ON `db`.*"`` or ``"PROCESS ON *.*"``. Returns the account."""
        account = f"{_quote_str(name)}@{_quote_str(host)}"
        self.query(f"CREATE USER {account} IDENTIFIED BY {_quote_str(password)}")
        for grant in grants:
            grant = re.sub(r"^\s*GRANT\s+", "", grant, flags=re.I)
            self.query(f"GRANT {grant} TO {account}")
        return account

    def drop_user(self, name: str, host: str = "%") -> None:
        self.query(f"DROP USER IF EXISTS {_quote_str(name)}@{_quote_str(host)}")

    def env(self, database: str, user: str = "root", password: str = "") -> dict[str, str]:
        """RAGFlow's MYSQL_* variables pointing at this server (merge into os.environ for a subprocess)."""
        return {
            "MYSQL_HOST": self.host,
            "MYSQL_PORT": str(self.port),
            "MYSQL_USER": user,
            "MYSQL_PASSWORD": password,
            "MYSQL_DBNAME": database,
        }


class _PortInUse(Exception):
    pass


class MariaDBServer(Server):
    flavor = "mariadb"
    label = LABELS["mariadb"]

    def __init__(self, basedir: str | os.PathLike[str] | None = None, *, extra_args: Sequence[str] = ()) -> None:
        super().__init__(basedir, extra_args=extra_args)
        if len(str(self.socket_path)) > 100:  # sun_path holds 108 bytes
            raise ServerError(f"socket path too long: {self.socket_path}; use a shorter basedir")

    @staticmethod
    def _binary(name: str) -> str:
        found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""))
        if not found:
            raise ProvisioningError(f"MariaDB is not installed ({name} not found); {PROVISION_HINT}")
        return found

    def _initialise(self) -> None:
        install_db = self._binary("mariadb-install-db")
        self._binary("mariadbd")
        tmpdir = self.basedir / "tmp"
        # Its own --tmpdir: concurrent bootstraps sharing /tmp collide on their temporary tables
        # (seen: "Unknown table 'mysql.tmp_user_sys'" and a SIGSEGV in ha_maria::drop_table).
        cmd = [install_db, "--no-defaults", "--user=root", f"--datadir={self.datadir}", f"--tmpdir={tmpdir}",
               "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve",
               "--force"]  # --force: no host name look-up (fails where /etc/hosts lacks the host name)
        for _attempt in range(2):
            shutil.rmtree(self.datadir, ignore_errors=True)
            tmpdir.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self._popen_env(), check=False, timeout=300)
            if proc.returncode == 0:
                return
        raise ServerError(
            f"mariadb-install-db failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )

    def _command(self) -> list[str]:
        return [
            self._binary("mariadbd"), *COMMON_ARGS,
            f"--datadir={self.datadir}", f"--socket={self.socket_path}", f"--port={self.port}",
            f"--pid-file={self.basedir / 'mysqld.pid'}", f"--log-error={self.error_log}",
            f"--tmpdir={self.basedir / 'tmp'}",
            *self.extra_args,
        ]

    def _probe_params(self) -> dict[str, Any]:
        return {"unix_socket": str(self.socket_path), "host": "localhost"}  # root@localhost: socket only

    def _when_ready(self, conn: pymysql.connections.Connection) -> None:
        # mariadb-install-db makes root@127.0.0.1 too; make sure (idempotent), then check TCP.
        with conn.cursor() as cur:
            for stmt in split_sql(_ROOT_ACCOUNT_SQL):
                cur.execute(stmt)
        self._connect_raw(connect_timeout=5, read_timeout=10).close()


class MySQLServer(Server):
    flavor = "mysql"
    label = LABELS["mysql"]

    def __init__(self, basedir: str | os.PathLike[str] | None = None, *, extra_args: Sequence[str] = (),
                 chroot: str | os.PathLike[str] = MYSQL_CHROOT) -> None:
        self.chroot = Path(chroot)
        check_mysql_chroot(self.chroot)
        super().__init__(basedir, extra_args=extra_args)

    def _make_basedir(self, basedir: str | os.PathLike[str] | None) -> Path:
        tmp = self.chroot / "tmp"
        if basedir is None:
            return _new_owned_dir(tmp, "ragflow-migrate-mysql-")
        path = Path(basedir).resolve()
        if tmp.resolve() not in path.parents:
            raise ServerError(f"a MySQL basedir must lie in {tmp} (the chroot), not {path}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def inner(self, path: Path) -> str:
        """The path as mysqld sees it inside the chroot."""
        return "/" + str(path.relative_to(self.chroot))

    def _initialise(self) -> None:
        _use_chroot_proc(self.chroot)
        template = prepare_mysql_template(self.chroot)
        copy = subprocess.run(["cp", "-a", "--reflink=auto", str(template), str(self.datadir)],
                              capture_output=True, text=True, check=False)
        if copy.returncode != 0:
            raise ServerError(f"copying the MySQL template datadir failed: {copy.stderr}")
        (self.datadir / "auto.cnf").unlink(missing_ok=True)  # each server its own server_uuid
        for sub in ("tmp", "files"):
            (self.basedir / sub).mkdir(exist_ok=True)

    def _command(self) -> list[str]:
        b = self.basedir
        return [
            "chroot", str(self.chroot), "/usr/sbin/mysqld", *COMMON_ARGS,
            f"--datadir={self.inner(self.datadir)}", f"--socket={self.inner(self.socket_path)}",
            f"--port={self.port}", f"--pid-file={self.inner(b / 'mysqld.pid')}",
            f"--log-error={self.inner(self.error_log)}", f"--tmpdir={self.inner(b / 'tmp')}",
            f"--secure-file-priv={self.inner(b / 'files')}",
            "--mysqlx=OFF",  # else every server wants port 33060
            *MYSQL_DATADIR_ARGS,
            *self.extra_args,
        ]

    def _launch_and_wait(self) -> None:
        _use_chroot_proc(self.chroot)
        super()._launch_and_wait()
        # `chroot` execs mysqld: the pid is the server's own.
        exe = os.readlink(f"/proc/{self.pid}/exe")
        if not exe.endswith("/mysqld"):
            raise ServerError(f"pid {self.pid} runs {exe}, not mysqld")


_CLASSES: Mapping[str, type[Server]] = {"mariadb": MariaDBServer, "mysql": MySQLServer}


def start_server(flavor: str, basedir: str | os.PathLike[str] | None = None, **kw: Any) -> Server:
    """Create and start a server of ``flavor`` ("mariadb" or "mysql")."""
    try:
        cls = _CLASSES[flavor]
    except KeyError:
        raise ValueError(f"unknown server flavor {flavor!r}; known: {', '.join(FLAVORS)}") from None
    server = cls(basedir, **kw)
    try:
        return server.start()
    except BaseException:
        server.cleanup()
        raise


@contextlib.contextmanager
def running(flavor: str, basedir: str | os.PathLike[str] | None = None, **kw: Any) -> Iterator[Server]:
    """``with running("mysql") as srv:`` a server for the block, stopped and removed after."""
    server = start_server(flavor, basedir, **kw)
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            server.cleanup()


def check_server_dies_with_its_process(script: str, ending: str, what: str) -> None:
    """For the harness's own tests: ``script`` (run by this Python) starts a server, prints
    ``<pid> <basedir>`` and waits for ``exit`` on stdin. It is ended by ``exit`` (``ending="exit"``) or
    SIGKILL; the server must not outlive it, and a child that exited must have removed its folder."""
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    basedir = None
    try:
        line = child.stdout.readline()
        assert line, child.stderr.read()
        pid, basedir = int(line.split()[0]), Path(line.split()[1])
        assert _proc_state(pid) not in (None, "Z")
        if ending == "sigkill":
            child.send_signal(signal.SIGKILL)
        else:
            child.stdin.write("exit\n")
            child.stdin.flush()
        child.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _proc_state(pid) not in (None, "Z") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _proc_state(pid) in (None, "Z"), f"{what} pid {pid} survived its parent"
        if ending == "exit":
            assert not basedir.exists()  # the atexit hook cleaned up too
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if basedir is not None:
            shutil.rmtree(basedir, ignore_errors=True)  # a SIGKILLed parent cannot clean up


def _main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else "smoke"
    if command == "prepare":
        started = time.monotonic()
        data = prepare_mysql_template(verbose=True)
        print(f"mysql template datadir: {data} ({time.monotonic() - started:.1f}s)")
        return 0
    if command == "smoke":
        for flavor in argv[1:] or FLAVORS:
            with running(flavor) as srv:
                print(f"{srv.label}: {srv.version} on port {srv.port}, pid {srv.pid}: "
                      f"start {srv.start_seconds:.2f}s (datadir {srv.init_seconds:.2f}s)")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(_main(sys.argv[1:]))
