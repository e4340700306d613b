"""Configuration: the only module that reads the environment.

Sources, highest first: command-line flags > environment > YAML file > defaults.

* Environment: RAGFlow's own names for the connection, so ``envFrom`` RAGFlow's Secret works:
  ``DB_TYPE`` picks the backend (mysql, the default, or postgres; see :data:`BACKENDS`), whose
  variables then hold the connection (``MYSQL_HOST``, ``MYSQL_PORT``, ``MYSQL_USER``,
  ``MYSQL_PASSWORD``, ``MYSQL_DBNAME``, or ``POSTGRES_HOST`` ... ``POSTGRES_DBNAME``); every
  tool setting under one prefix, ``RAGFLOW_MIGRATE_`` (``RAGFLOW_MIGRATE_LOCK_TIMEOUT=10m``;
  ``RAGFLOW_MIGRATE_DB_TYPE`` wins over ``DB_TYPE``).
* YAML: RAGFlow's ``service_conf.yaml`` (the backend's section, ``mysql:`` or ``postgres:``) with
  ``local.service_conf.yaml`` beside it laid over it (top-level keys of the local file replace
  those of the base file, as RAGFlow does). Tool settings may sit in a ``ragflow_migrate:``
  section of the same files.
* The connection settings are one set whatever the backend (:class:`Settings` ``host`` ...
  ``database``): the rest of the tool never reads a backend's variable names.
* A password can come from a file (a mounted Secret): ``--password-file`` or
  ``RAGFLOW_MIGRATE_PASSWORD_FILE``. There is deliberately no ``--password`` flag: process
  arguments are visible to every user of the machine (``ps``).

Every value is validated where it is read, also when a higher source overrides it, and an
error names its source: ``flag --port``, ``env MYSQL_PORT`` or ``/path/file.yaml:mysql.port``.
The password is held in a :class:`Secret`, which never prints its value.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .releases import NEWEST_RELEASE, known_release

ENV_PREFIX = "RAGFLOW_MIGRATE_"
DEFAULT_SERVICE_CONF = "/ragflow/conf/service_conf.yaml"
DEFAULT_CATALOG = "/ragflow/conf/llm_factories.json"
DEFAULT_LOCK_NAME = "init_database_tables"  # RAGFlow's own startup lock: serialises with it
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
#: The wait deadline of the read-only verbs (status, plan, schema diff, data's dry run) when nothing
#: sets one: a person typing `status` wants the answer in seconds; the verbs that do the work
#: (an initContainer's `run`, `wait`, `wait-for-version`) keep the long default of the settings table.
READ_ONLY_WAIT_TIMEOUT = 10.0


class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# ---------------------------------------------------------------------------------------------
# Value parsers: each takes the raw value (str from flags/env, any YAML scalar from files) and
# returns the typed value or raises ValueError with a short reason.


def _text(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError(f"expected a string, got {type(raw).__name__}")
    text = str(raw)
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


def _nonempty(raw: Any) -> str:
    text = _text(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _host(raw: Any) -> str:
    text = _nonempty(raw)
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r} is not a host name (contains white space)")
    return text


def _port(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a port number, got a boolean")
    try:
        port = int(str(raw).strip(), 10) if not isinstance(raw, int) else raw
    except ValueError:
        raise ValueError(f"{raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{port} is out of range 1-65535")
    return port


def _database_name(raw: Any) -> str:
    name = _text(raw)
    if not name.strip():
        raise ValueError("the database name must not be empty")
    if len(name) > 64:
        raise ValueError(f"the database name is {len(name)} characters long; MySQL allows 64")
    if name != name.rstrip():
        raise ValueError("the database name must not end with a space")
    bad = sorted({c for c in name if c in "/\\." or ord(c) < 32})
    if bad:
        raise ValueError(f"the database name contains characters MySQL refuses: {''.join(bad)!r}")
    return name


#: PostgreSQL's identifiers (database names included) hold at most NAMEDATALEN - 1 = 63 bytes.
PG_NAME_BYTES = 63


def _pg_database_name(raw: Any) -> str:
    name = _text(raw)
    if not name.strip():
        raise ValueError("the database name must not be empty")
    size = len(name.encode("utf-8"))
    if size > PG_NAME_BYTES:
        raise ValueError(f"the database name is {size} bytes long; PostgreSQL allows {PG_NAME_BYTES}")
    return name


def _lock_name(raw: Any) -> str:
    name = _nonempty(raw)
    if len(name) > 64:
        raise ValueError(f"lock names are limited to 64 characters, this one has {len(name)}")
    return name


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _duration(raw: Any) -> float:
    """Seconds: ``30``, ``2.5``, ``500ms``, ``30s``, ``10m``, ``1h``."""
    if isinstance(raw, bool):
        raise ValueError("expected a duration, got a boolean")
    if isinstance(raw, (int, float)):
        seconds = float(raw)
    else:
        match = _DURATION_RE.match(str(raw))
        if not match:
            raise ValueError(f"{raw!r} is not a duration (use seconds, or a unit: 500ms, 30s, 10m, 1h)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _positive_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("expected a whole number, got a boolean")
    try:
        value = raw if isinstance(raw, int) else int(str(raw).strip(), 10)
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{value} must be at least 1")
    return value


MAX_SESSIONS = 16


def _sessions(raw: Any) -> int:
    value = _positive_int(raw)
    if value > MAX_SESSIONS:
        raise ValueError(f"{value} is more than {MAX_SESSIONS}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = _text(raw).strip().lower()
        if text not in options:
            raise ValueError(f"{raw!r} is not one of {', '.join(options)}")
        return text

    return parse


def _addresses(raw: Any) -> tuple[str, ...]:
    """``host:port,host:port`` (a port is required: cluster nodes often listen on several)."""
    items = [item.strip() for item in _text(raw).split(",") if item.strip()]
    if not items:
        raise ValueError("expected host:port[,host:port...]")
    for item in items:
        host, sep, port = item.rpartition(":")
        if not sep or not host.strip():
            raise ValueError(f"{item!r} is not host:port")
        _port(port)
    return tuple(items)


def _release(raw: Any) -> str:
    return known_release(_nonempty(raw))


def _path(raw: Any) -> str:
    return _nonempty(raw)


def _secret(raw: Any) -> Secret:
    return Secret(_text(raw))


# ---------------------------------------------------------------------------------------------
# The settings table: one row per setting, with every place it may come from.


@dataclasses.dataclass(frozen=True)
class _Spec:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    env: str | None = None  # RAGFlow's own variable for a tool setting (DB_TYPE), read below the tool's
    flag: str | None = None  # CLI flag, for messages
    help: str = ""
    #: A connection setting: read from the variables and the YAML section of the backend that
    #: DB_TYPE selects (see BACKENDS), never from a RAGFLOW_MIGRATE_* variable.
    connection: bool = False

    @property
    def tool_env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def variables(self) -> tuple[str, ...]:
        """Every environment variable this setting is read from (for the README's table)."""
        if self.connection:
            return tuple(backend.env[self.name] for backend in BACKENDS.values() if self.name in backend.env)
        if self.env:
            return (self.env, self.tool_env)
        return (self.tool_env,)


@dataclasses.dataclass(frozen=True)
class Backend:
    """How RAGFlow configures its metadata database for one ``DB_TYPE``: the variables and the
    ``service_conf.yaml`` section the connection settings come from, and their defaults."""

    db_type: str
    label: str  # for messages: "MySQL", "PostgreSQL"
    section: str  # the service_conf.yaml section
    env: Mapping[str, str]  # setting -> RAGFlow's variable
    yaml: Mapping[str, str]  # key of the section -> setting
    defaults: Mapping[str, Any]  # where they differ from the settings table's
    parsers: Mapping[str, Callable[[Any], Any]]  # where the server's rules differ from the table's parser
    ignored_keys: frozenset[str]  # keys of the section RAGFlow uses and this tool does not

    @property
    def env_prefix(self) -> str:
        return self.env["host"].split("_", 1)[0] + "_"


_SECTION_KEYS = {"host": "host", "port": "port", "user": "user", "password": "password", "name": "database"}

#: RAGFlow's DB_TYPE values this tool migrates (``backends/<name>`` implements each).
BACKENDS: Mapping[str, Backend] = {
    "mysql": Backend(
        "mysql", "MySQL", "mysql",
        env={"host": "MYSQL_HOST", "port": "MYSQL_PORT", "user": "MYSQL_USER", "password": "MYSQL_PASSWORD",
             "database": "MYSQL_DBNAME"},
        yaml=_SECTION_KEYS,
        defaults={"port": 3306, "user": "root", "database": "rag_flow"},
        parsers={"database": _database_name},
        ignored_keys=frozenset({"max_connections", "stale_timeout", "max_allowed_packet"}),
    ),
    # RAGFlow's docker/service_conf.yaml.template (its commented-out `postgres:` section):
    # POSTGRES_DBNAME and POSTGRES_USER default to rag_flow there, and the port is 5432.
    "postgres": Backend(
        "postgres", "PostgreSQL", "postgres",
        env={"host": "POSTGRES_HOST", "port": "POSTGRES_PORT", "user": "POSTGRES_USER",
             "password": "POSTGRES_PASSWORD", "database": "POSTGRES_DBNAME"},
        yaml=_SECTION_KEYS,
        defaults={"port": 5432, "user": "rag_flow", "database": "rag_flow"},
        parsers={"database": _pg_database_name},
        ignored_keys=frozenset({"max_connections", "stale_timeout"}),
    ),
}
DB_TYPES = tuple(BACKENDS)
#: RAGFlow's other DB_TYPE values (v0.27.0): understood, and refused by name.
_OTHER_RAGFLOW_DB_TYPES = ("gaussdb", "oceanbase")


def _db_type(raw: Any) -> str:
    text = _text(raw).strip().lower()
    if text in BACKENDS:
        return text
    supported = "mysql (MySQL, MariaDB) or postgres (PostgreSQL)"
    if text in _OTHER_RAGFLOW_DB_TYPES:
        raise ValueError(f"{text!r} is one of RAGFlow's database types that ragflow-migrate does not support; "
                         f"supported: {supported}")
    raise ValueError(f"{raw!r} is not a database type; supported: {supported}")


PG_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: sslmodes that may fall back to, or always use, an unverified or plain connection.
_PG_UNVERIFIED_SSLMODES = ("disable", "allow", "prefer")


_SPECS: tuple[_Spec, ...] = (
    _Spec("db_type", _db_type, "mysql", "DB_TYPE", "--db-type", "mysql (MySQL, MariaDB) or postgres"),
    _Spec("host", _host, None, None, "--host", "database host name or address", connection=True),
    _Spec("port", _port, None, None, "--port", "database port", connection=True),
    _Spec("user", _nonempty, None, None, "--user", "database user", connection=True),
    _Spec("password", _secret, Secret(""), None, None, "database password", connection=True),
    _Spec("database", _text, None, None, "--database", "database name", connection=True),
    _Spec("password_file", _path, None, None, "--password-file", "read the password from this file"),
    _Spec("config", _path, None, None, "--config", "RAGFlow service_conf.yaml"),
    _Spec("target_version", _release, NEWEST_RELEASE, None, "--target-version", "release to migrate to"),
    _Spec("catalog", _path, DEFAULT_CATALOG, None, "--catalog", "RAGFlow llm_factories.json"),
    _Spec("wait_timeout", _duration, 300.0, None, "--wait-timeout", "overall deadline to reach MySQL"),
    _Spec("connect_timeout", _duration, 5.0, None, "--connect-timeout", "timeout of one connection attempt"),
    _Spec("lock_name", _lock_name, DEFAULT_LOCK_NAME, None, "--lock-name", "MySQL advisory lock name"),
    _Spec("lock_timeout", _duration, 600.0, None, "--lock-timeout", "how long to wait for the lock"),
    _Spec("lock_poll", _duration, 2.0, None, "--lock-poll", "slice of each lock wait (holder logged each time)"),
    _Spec("ddl_lock_wait", _duration, 5.0, None, "--ddl-lock-wait", "lock_wait_timeout of one DDL attempt"),
    _Spec("ddl_deadline", _duration, 600.0, None, "--ddl-deadline", "total wait for metadata locks per DDL"),
    _Spec("batch_size", _positive_int, 5000, None, "--batch-size", "rows per data-migration transaction"),
    _Spec("sessions", _sessions, 2, None, "--sessions", "database sessions a data stage works on at once"),
    _Spec("cluster_nodes", _addresses, (), None, "--cluster-nodes",
          "Galera / multi-primary nodes to lock (host:port,...; default: the addresses the cluster lists)"),
    _Spec("lease_ttl", _duration, 60.0, None, "--lease-ttl",
          "cluster lease: a holder nobody can check is presumed dead after this long without a heartbeat"),
    _Spec("allow_blocking_ddl", _bool, False, None, "--allow-blocking-ddl",
          "on Galera, run a table rebuild above --blocking-ddl-rows (TOI: the whole cluster waits for it)"),
    _Spec("blocking_ddl_rows", _positive_int, 1_000_000, None, "--blocking-ddl-rows",
          "the table size (estimated rows) above which a rebuild needs --allow-blocking-ddl on Galera "
          "and an index is built CONCURRENTLY on PostgreSQL"),
    _Spec("create_database", _bool, False, None, "--create-database", "create the database when missing"),
    _Spec("widen_columns", _bool, False, None, "--widen-columns",
          "widen a column whose legacy values fit no lossless form of it (recorded, reported)"),
    _Spec("log_format", _choice(LOG_FORMATS), "auto", None, "--log-format", "json, console, or auto (TTY)"),
    _Spec("log_level", _choice(LOG_LEVELS), "info", None, "--log-level", "lowest level logged"),
    _Spec("termination_log", _path, "/dev/termination-log", None, "--termination-log", "summary file"),
    _Spec("ssl_ca", _path, None, None, "--ssl-ca", "CA bundle: connect with TLS and verify the server"),
    _Spec("pg_sslmode", _choice(PG_SSLMODES), None, None, "--pg-sslmode",
          "PostgreSQL's sslmode (default prefer, verify-full with --ssl-ca)"),
)
SPECS: Mapping[str, _Spec] = {spec.name: spec for spec in _SPECS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved configuration. ``sources`` says where each value came from.

    One set of connection settings (host, port, user, password, database, ssl_ca) whatever the
    backend: ``db_type`` says which backend's variables and YAML section they were read from
    (``sources`` names them: ``env POSTGRES_HOST``), and which backend is to use them.
    ``pg_sslmode`` is PostgreSQL's own (None with MySQL).
    """

    db_type: str
    host: str
    port: int
    user: str
    password: Secret
    database: str
    target_version: str
    catalog: str
    wait_timeout: float
    connect_timeout: float
    lock_name: str
    lock_timeout: float
    lock_poll: float
    ddl_lock_wait: float
    ddl_deadline: float
    batch_size: int
    sessions: int
    cluster_nodes: tuple[str, ...]
    lease_ttl: float
    allow_blocking_ddl: bool
    blocking_ddl_rows: int
    create_database: bool
    widen_columns: bool
    log_format: str
    log_level: str
    termination_log: str
    ssl_ca: str | None
    pg_sslmode: str | None
    instance: str  # this runner's pod or host name, published to other runners
    config_files: tuple[str, ...]
    sources: Mapping[str, str]

    def describe(self) -> dict[str, object]:
        """Loggable view: the target and where each setting came from; never the password."""
        view: dict[str, object] = {
            "db_type": self.db_type,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "database": self.database,
            "password_set": bool(self.password),
            "tls": self.tls_mode,
            "target_version": self.target_version,
            "lock_name": self.lock_name,
            "instance": self.instance,
            "config_files": list(self.config_files),
        }
        view["sources"] = {k: v for k, v in self.sources.items() if v != "default"}
        return view

    @property
    def backend(self) -> Backend:
        return BACKENDS[self.db_type]

    @property
    def tls_mode(self) -> str:
        """How the connection uses TLS, for logs: ``verify`` with a CA bundle on MySQL, libpq's
        sslmode on PostgreSQL, else ``off``."""
        if self.db_type == "postgres":
            return f"sslmode={self.pg_sslmode}"
        return "verify" if self.ssl_ca else "off"


# ---------------------------------------------------------------------------------------------


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    wait_timeout_default: float | None = None,
) -> Settings:
    """Resolve the settings from flags (already parsed by the CLI), environment and files.

    ``flags`` maps setting names to values the user gave on the command line (absent or
    ``None`` = not given). ``environ`` defaults to ``os.environ``. ``wait_timeout_default``
    replaces the table's default wait deadline (the CLI passes :data:`READ_ONLY_WAIT_TIMEOUT`
    for the read-only verbs); a flag, variable or YAML value still wins, and the source stays
    ``default``.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if environ is None else environ
    unknown = set(flags) - set(SPECS)
    if unknown:
        raise ConfigError(f"internal: unknown flag settings {sorted(unknown)}")

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    backend = BACKENDS[SPECS["db_type"].default]

    def put(name: str, raw: Any, source: str) -> None:
        spec = SPECS[name]
        parse = backend.parsers.get(name, spec.parse) if spec.connection else spec.parse
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}", setting=name, source=source) from None
        sources[name] = source

    for spec in _SPECS:
        values[spec.name] = spec.default
        sources[spec.name] = "default"
    if wait_timeout_default is not None:
        values["wait_timeout"] = _duration(wait_timeout_default)

    # Which YAML file? Flag, then environment; otherwise RAGFlow's path when it exists.
    config_path: str | None = None
    explicit = False
    if "config" in flags:
        put("config", flags["config"], "flag --config")
        config_path, explicit = values["config"], True
    elif SPECS["config"].tool_env in env:
        put("config", env[SPECS["config"].tool_env], f"env {SPECS['config'].tool_env}")
        config_path, explicit = values["config"], True
    elif Path(DEFAULT_SERVICE_CONF).is_file():
        config_path = DEFAULT_SERVICE_CONF

    files: list[str] = []
    sections = _service_conf(config_path, explicit, files) if config_path is not None else {}
    tool_values = list(_tool_section_values(sections))

    # The database type first: it decides which variables and which YAML section the connection
    # comes from. Lowest first: YAML (ragflow_migrate.db_type), RAGFlow's DB_TYPE, the tool's
    # RAGFLOW_MIGRATE_DB_TYPE, the flag.
    for (name, raw), source in tool_values:
        if name == "db_type":
            put(name, raw, source)
    db_type = SPECS["db_type"]
    for variable in db_type.variables:
        if variable in env:
            put("db_type", env[variable], f"env {variable}")
    if "db_type" in flags:
        put("db_type", flags["db_type"], f"flag {db_type.flag}")
    backend = BACKENDS[values["db_type"]]
    for name, default in backend.defaults.items():
        values[name] = default

    # YAML: the backend's section (RAGFlow ignores the others, and so does this tool), then the
    # tool's section; then the environment; then the flags.
    for (name, raw), source in _backend_section_values(sections, backend):
        put(name, raw, source)
    for (name, raw), source in tool_values:
        if name != "db_type":
            put(name, raw, source)

    for spec in _SPECS:
        if spec.connection:  # RAGFlow's own variable names only
            variable = backend.env[spec.name]
            if variable in env:
                put(spec.name, env[variable], f"env {variable}")
        elif spec.name not in ("config", "db_type") and spec.tool_env in env:
            put(spec.name, env[spec.tool_env], f"env {spec.tool_env}")

    for name, raw in flags.items():
        if name not in ("config", "db_type"):
            put(name, raw, f"flag {SPECS[name].flag or name}")

    if values.get("password_file"):
        put("password", _read_password_file(values["password_file"], sources["password_file"]),
            f"file {values['password_file']}")
    if values.get("ssl_ca"):
        _check_ssl_ca(values["ssl_ca"], sources["ssl_ca"])
    values["pg_sslmode"] = _resolve_pg_sslmode(backend, values, sources)

    if values["host"] is None:
        raise ConfigError(
            f"no {backend.label} host configured",
            hint=f"set {backend.env['host']} (as RAGFlow's Secret does), pass --host, or point --config "
            f"at RAGFlow's service_conf.yaml (its `{backend.section}:` section)",
            setting="host",
        )
    for name in ("password_file", "config"):
        values.pop(name, None)
    return Settings(
        **values,
        instance=_instance_name(env),
        config_files=tuple(files),
        sources=sources,
    )


def _resolve_pg_sslmode(backend: Backend, values: Mapping[str, Any], sources: Mapping[str, str]) -> str | None:
    """PostgreSQL's sslmode: libpq's default ``prefer`` (what RAGFlow's own connection uses), or
    ``verify-full`` when a CA bundle is given (as ``--ssl-ca`` means "TLS, and verify the
    server" on MySQL). A CA bundle with a mode that may fall back to an unverified or plain
    connection, or a verifying mode without a bundle, is a contradiction: refused."""
    mode, source = values["pg_sslmode"], sources["pg_sslmode"]
    ca, ca_source = values["ssl_ca"], sources["ssl_ca"]
    if backend.db_type != "postgres":
        if mode is not None:
            raise ConfigError(
                f"{source}: sslmode applies to PostgreSQL only; the database type is "
                f"{values['db_type']} ({sources['db_type']})",
                hint="on MySQL, --ssl-ca (RAGFLOW_MIGRATE_SSL_CA) turns TLS on and verifies the server",
                setting="pg_sslmode")
        return None
    if mode is None:
        return "verify-full" if ca else "prefer"
    if ca and mode in _PG_UNVERIFIED_SSLMODES:
        raise ConfigError(
            f"{source}: sslmode {mode} does not verify the server, but a CA bundle is set ({ca_source})",
            hint="use verify-full (or verify-ca), or leave the CA bundle out", setting="pg_sslmode")
    if not ca and mode in ("verify-ca", "verify-full"):
        raise ConfigError(
            f"{source}: sslmode {mode} needs the CA bundle that signed the server's certificate",
            hint="set RAGFLOW_MIGRATE_SSL_CA or pass --ssl-ca (a PEM file)", setting="pg_sslmode")
    return mode


def _read_password_file(path: str, source: str) -> str:
    try:
        data = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: password file {path} does not exist", setting="password_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{source}: cannot read password file {path}: {reason}", setting="password_file") from None
    # A mounted Secret often ends with one newline; nothing else is trimmed.
    return data[:-1] if data.endswith("\n") else data


def _check_ssl_ca(path: str, source: str) -> None:
    """A CA bundle that is missing or not PEM is a configuration error, not an unreachable server."""
    import ssl

    if not Path(path).is_file():
        raise ConfigError(f"{source}: CA bundle {path} does not exist (or is not a file)", setting="ssl_ca")
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"{source}: CA bundle {path} is not usable: {reason}",
                          hint="give a PEM file with the CA certificate(s) that signed the server's",
                          setting="ssl_ca") from None


def _instance_name(env: Mapping[str, str]) -> str:
    """This runner's name as other runners see it: the pod name in Kubernetes."""
    for key in ("POD_NAME", "HOSTNAME"):
        if env.get(key):
            return env[key][:64]
    return socket.gethostname()[:64]


# ---------------------------------------------------------------------------------------------
# YAML


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml  # imported here: most runs in Kubernetes have no file

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read: {reason}", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: malformed YAML: {problem}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}", file=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}", file=str(path))
    return data


def _service_conf(config_path: str, explicit: bool, files: list[str]) -> dict[str, tuple[Any, Path]]:
    """The top-level sections of service_conf.yaml with local.service_conf.yaml laid over it:
    section -> (value, the file it came from)."""
    base = Path(config_path)
    if not base.is_file():
        if explicit:
            raise ConfigError(f"config file {base} does not exist (or is not a file)", file=str(base))
        return {}
    merged: dict[str, tuple[Any, Path]] = {k: (v, base) for k, v in _load_yaml(base).items()}
    files.append(str(base))
    local = base.with_name("local." + base.name)
    if local.is_file():
        merged.update({k: (v, local) for k, v in _load_yaml(local).items()})
        files.append(str(local))
    return merged


def _backend_section_values(sections: Mapping[str, tuple[Any, Path]], backend: Backend):
    """Yield ((setting, raw value), source) from the backend's section (``mysql:``, ``postgres:``)."""
    if backend.section not in sections:
        return
    section, path = sections[backend.section]
    if section is None:
        return
    name = backend.section
    if not isinstance(section, dict):
        raise ConfigError(f"{path}:{name}: expected a mapping, got {type(section).__name__}", file=str(path))
    for key, raw in section.items():
        source = f"{path}:{name}.{key}"
        if key in backend.ignored_keys:
            continue
        if key not in backend.yaml:
            known = ", ".join(sorted([*backend.yaml, *backend.ignored_keys]))
            raise ConfigError(f"{source}: unknown key (known keys: {known})", file=str(path))
        _check_placeholder(raw, source, backend, secret=key == "password")
        yield (backend.yaml[key], raw), source


def _tool_section_values(sections: Mapping[str, tuple[Any, Path]]):
    """Yield ((setting, raw value), source) from the ``ragflow_migrate:`` section."""
    if "ragflow_migrate" not in sections:
        return
    section, path = sections["ragflow_migrate"]
    if section is None:
        return
    if not isinstance(section, dict):
        raise ConfigError(f"{path}:ragflow_migrate: expected a mapping", file=str(path))
    allowed = {spec.name for spec in _SPECS if spec.name != "config" and not spec.connection}
    for key, raw in section.items():
        source = f"{path}:ragflow_migrate.{key}"
        if key not in allowed:
            raise ConfigError(f"{source}: unknown key (known keys: {', '.join(sorted(allowed))})",
                              file=str(path))
        _check_placeholder(raw, source, None)
        yield (key, raw), source


_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


def _check_placeholder(raw: Any, source: str, backend: Backend | None, *, secret: bool = False) -> None:
    if isinstance(raw, str) and _PLACEHOLDER.search(raw):
        shown = "" if secret else f" {_PLACEHOLDER.search(raw).group(0)!r}"  # never echo part of a password
        variables = f"the {backend.env_prefix}* variables" if backend else "the RAGFLOW_MIGRATE_* variables"
        raise ConfigError(
            f"{source}: holds an unexpanded placeholder{shown}",
            hint="this looks like RAGFlow's service_conf.yaml.template; point --config at the "
            f"rendered file, or set {variables} instead",
        )


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Read one raw tool variable (``RAGFLOW_MIGRATE_<NAME>``) before settings exist."""
    env = os.environ if environ is None else environ
    return env.get(ENV_PREFIX + name.upper())
