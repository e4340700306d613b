"""Configuration: the only module that reads the environment.

Sources, highest first: command-line flags > environment > YAML file > defaults.

* Environment: RAGFlow's own names for the connection (``MYSQL_HOST``, ``MYSQL_PORT``,
  ``MYSQL_USER``, ``MYSQL_PASSWORD``, ``MYSQL_DBNAME``), so ``envFrom`` RAGFlow's Secret works;
  every tool setting under one prefix, ``RAGFLOW_MIGRATE_`` (``RAGFLOW_MIGRATE_LOCK_TIMEOUT=10m``).
* YAML: RAGFlow's ``service_conf.yaml`` (its ``mysql:`` section) with ``local.service_conf.yaml``
  beside it laid over it (top-level keys of the local file replace those of the base file, as
  RAGFlow does). Tool settings may sit in a ``ragflow_migrate:`` section of the same files.
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
    env: str | None = None  # full environment variable name
    flag: str | None = None  # CLI flag, for messages
    yaml_mysql_key: str | None = None  # key in the YAML `mysql:` section
    help: str = ""

    @property
    def tool_env(self) -> str:
        return ENV_PREFIX + self.name.upper()


_SPECS: tuple[_Spec, ...] = (
    _Spec("host", _host, None, "MYSQL_HOST", "--host", "host", "MySQL host name or address"),
    _Spec("port", _port, 3306, "MYSQL_PORT", "--port", "port", "MySQL port"),
    _Spec("user", _nonempty, "root", "MYSQL_USER", "--user", "user", "MySQL user"),
    _Spec("password", _secret, Secret(""), "MYSQL_PASSWORD", None, "password", "MySQL password"),
    _Spec("database", _database_name, "rag_flow", "MYSQL_DBNAME", "--database", "name", "database name"),
    _Spec("password_file", _path, None, None, "--password-file", None, "read the password from this file"),
    _Spec("config", _path, None, None, "--config", None, "RAGFlow service_conf.yaml"),
    _Spec("target_version", _release, NEWEST_RELEASE, None, "--target-version", None, "release to migrate to"),
    _Spec("catalog", _path, DEFAULT_CATALOG, None, "--catalog", None, "RAGFlow llm_factories.json"),
    _Spec("wait_timeout", _duration, 300.0, None, "--wait-timeout", None, "overall deadline to reach MySQL"),
    _Spec("connect_timeout", _duration, 5.0, None, "--connect-timeout", None, "timeout of one connection attempt"),
    _Spec("lock_name", _lock_name, DEFAULT_LOCK_NAME, None, "--lock-name", None, "MySQL advisory lock name"),
    _Spec("lock_timeout", _duration, 600.0, None, "--lock-timeout", None, "how long to wait for the lock"),
    _Spec("lock_poll", _duration, 2.0, None, "--lock-poll", None, "slice of each lock wait (holder logged each time)"),
    _Spec("ddl_lock_wait", _duration, 5.0, None, "--ddl-lock-wait", None, "lock_wait_timeout of one DDL attempt"),
    _Spec("ddl_deadline", _duration, 600.0, None, "--ddl-deadline", None, "total wait for metadata locks per DDL"),
    _Spec("batch_size", _positive_int, 5000, None, "--batch-size", None, "rows per data-migration transaction"),
    _Spec("sessions", _sessions, 2, None, "--sessions", None, "database sessions a data stage works on at once"),
    _Spec("cluster_nodes", _addresses, (), None, "--cluster-nodes", None,
          "Galera / multi-primary nodes to lock (host:port,...; default: the addresses the cluster lists)"),
    _Spec("lease_ttl", _duration, 60.0, None, "--lease-ttl", None,
          "cluster lease: a holder nobody can check is presumed dead after this long without a heartbeat"),
    _Spec("allow_blocking_ddl", _bool, False, None, "--allow-blocking-ddl", None,
          "on Galera, run a table rebuild above --blocking-ddl-rows (TOI: the whole cluster waits for it)"),
    _Spec("blocking_ddl_rows", _positive_int, 1_000_000, None, "--blocking-ddl-rows", None,
          "on Galera, the table size (estimated rows) above which a rebuild needs --allow-blocking-ddl"),
    _Spec("create_database", _bool, False, None, "--create-database", None, "create the database when missing"),
    _Spec("widen_columns", _bool, False, None, "--widen-columns", None,
          "widen a column whose legacy values fit no lossless form of it (recorded, reported)"),
    _Spec("log_format", _choice(LOG_FORMATS), "auto", None, "--log-format", None, "json, console, or auto (TTY)"),
    _Spec("log_level", _choice(LOG_LEVELS), "info", None, "--log-level", None, "lowest level logged"),
    _Spec("termination_log", _path, "/dev/termination-log", None, "--termination-log", None, "summary file"),
    _Spec("ssl_ca", _path, None, None, "--ssl-ca", None, "CA bundle: connect with TLS and verify the server"),
)
SPECS: Mapping[str, _Spec] = {spec.name: spec for spec in _SPECS}

#: Keys RAGFlow's `mysql:` section may hold that this tool does not use.
_IGNORED_MYSQL_KEYS = frozenset({"max_connections", "stale_timeout", "max_allowed_packet"})


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved configuration. ``sources`` says where each value came from."""

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
    instance: str  # this runner's pod or host name, published to other runners
    config_files: tuple[str, ...]
    sources: Mapping[str, str]

    def describe(self) -> dict[str, object]:
        """Loggable view: the target and where each setting came from; never the password."""
        view: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "database": self.database,
            "password_set": bool(self.password),
            "target_version": self.target_version,
            "lock_name": self.lock_name,
            "instance": self.instance,
            "config_files": list(self.config_files),
        }
        view["sources"] = {k: v for k, v in self.sources.items() if v != "default"}
        return view


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

    def put(name: str, raw: Any, source: str) -> None:
        try:
            values[name] = SPECS[name].parse(raw)
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
    if config_path is not None:
        for raw, source in _yaml_values(config_path, explicit, files):
            put(raw[0], raw[1], source)

    for spec in _SPECS:
        if spec.env:  # connection settings: RAGFlow's own variable names only
            if spec.env in env:
                put(spec.name, env[spec.env], f"env {spec.env}")
        elif spec.name != "config" and spec.tool_env in env:
            put(spec.name, env[spec.tool_env], f"env {spec.tool_env}")

    for name, raw in flags.items():
        if name != "config":
            put(name, raw, f"flag {SPECS[name].flag or name}")

    if values.get("password_file"):
        put("password", _read_password_file(values["password_file"], sources["password_file"]),
            f"file {values['password_file']}")
    if values.get("ssl_ca"):
        _check_ssl_ca(values["ssl_ca"], sources["ssl_ca"])

    if values["host"] is None:
        raise ConfigError(
            "no MySQL host configured",
            hint="set MYSQL_HOST (as RAGFlow's Secret does), pass --host, or point --config "
            "at RAGFlow's service_conf.yaml",
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


def _yaml_values(config_path: str, explicit: bool, files: list[str]):
    """Yield ((setting, raw value), source) from service_conf.yaml and local.service_conf.yaml."""
    base = Path(config_path)
    if not base.is_file():
        if explicit:
            raise ConfigError(f"config file {base} does not exist (or is not a file)", file=str(base))
        return
    merged: dict[str, tuple[Any, Path]] = {k: (v, base) for k, v in _load_yaml(base).items()}
    files.append(str(base))
    local = base.with_name("local." + base.name)
    if local.is_file():
        merged.update({k: (v, local) for k, v in _load_yaml(local).items()})
        files.append(str(local))

    if "mysql" in merged:
        section, path = merged["mysql"]
        if section is not None:
            if not isinstance(section, dict):
                raise ConfigError(f"{path}:mysql: expected a mapping, got {type(section).__name__}", file=str(path))
            by_key = {spec.yaml_mysql_key: spec for spec in _SPECS if spec.yaml_mysql_key}
            for key, raw in section.items():
                source = f"{path}:mysql.{key}"
                if key in _IGNORED_MYSQL_KEYS:
                    continue
                if key not in by_key:
                    known = ", ".join(sorted([*by_key, *_IGNORED_MYSQL_KEYS]))
                    raise ConfigError(f"{source}: unknown key (known keys: {known})", file=str(path))
                _check_placeholder(raw, source, secret=key == "password")
                yield (by_key[key].name, raw), source

    if "ragflow_migrate" in merged:
        section, path = merged["ragflow_migrate"]
        if section is not None:
            if not isinstance(section, dict):
                raise ConfigError(f"{path}:ragflow_migrate: expected a mapping", file=str(path))
            allowed = {spec.name for spec in _SPECS if spec.name not in ("config", "host", "port", "user",
                                                                           "password", "database")}
            for key, raw in section.items():
                source = f"{path}:ragflow_migrate.{key}"
                if key not in allowed:
                    raise ConfigError(f"{source}: unknown key (known keys: {', '.join(sorted(allowed))})",
                                      file=str(path))
                _check_placeholder(raw, source)
                yield (key, raw), source


_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


def _check_placeholder(raw: Any, source: str, *, secret: bool = False) -> None:
    if isinstance(raw, str) and _PLACEHOLDER.search(raw):
        shown = "" if secret else f" {_PLACEHOLDER.search(raw).group(0)!r}"  # never echo part of a password
        raise ConfigError(
            f"{source}: holds an unexpanded placeholder{shown}",
            hint="this looks like RAGFlow's service_conf.yaml.template; point --config at the "
            "rendered file, or set the MYSQL_* variables instead",
        )


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Read one raw tool variable (``RAGFLOW_MIGRATE_<NAME>``) before settings exist."""
    env = os.environ if environ is None else environ
    return env.get(ENV_PREFIX + name.upper())
