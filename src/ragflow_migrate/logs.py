"""Structured logging: one JSON object per line (or a console rendering for humans).

Pipeline: contextvars (run_id) → level → ISO UTC timestamp → closed-vocabulary check →
secret redaction → exception as dict → JSON. Records of the standard ``logging`` module
(peewee, peewee-migrate, tenacity, pymysql) pass through the same processors as the event
``log.external``.

    >>> configure(fmt="json", level="info", stream=sys.stdout, secrets=["s3cret"])
    >>> get_logger().info(events.STEP_SKIPPED, step="schema:v0.21.0", reason="already applied")
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import structlog
import structlog.tracebacks

from . import console, events

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_EXTERNAL_LOGGERS = ("peewee", "peewee_migrate", "tenacity", "pymysql")
REDACTED = "***"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


class _Redactor:
    """Replace every occurrence of a known secret in any string value (defence in depth)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(v) for v in value]
        return value

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        if not self.secrets:
            return event_dict
        return {k: self._clean(v) for k, v in event_dict.items()}


_redactor = _Redactor(())  # the secrets of the last configure(): also applied to the termination message


def _drop_none(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Fields without a value are left out rather than printed as null."""
    return {k: v for k, v in event_dict.items() if v is not None}


def _vocabulary(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Keep the vocabulary closed: an unknown event name is a bug, reported as such."""
    name = event_dict.get("event")
    if name not in events.EVENTS:
        event_dict["event"] = events.LOG_EXTERNAL
        event_dict.setdefault("logger", "ragflow_migrate")
        event_dict["message"] = f"unregistered event {name!r}"
    return event_dict


def _external(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Shape a stdlib record (peewee, tenacity...) as the event ``log.external``."""
    record: logging.LogRecord | None = event_dict.get("_record")
    message = event_dict.get("event")
    event_dict["event"] = events.LOG_EXTERNAL
    event_dict["message"] = message if isinstance(message, str) else repr(message)
    event_dict["logger"] = record.name if record else event_dict.get("logger", "?")
    return event_dict


def _json_dumps(obj: Any, **_ignored: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False, separators=(",", ":"))


class _CurrentStream:
    """``sys.stdout`` (or ``sys.stderr``) as it is at each write, not as it was at configuration.

    Whoever swaps the stream later (a test's capture, an embedding program) keeps receiving
    the logs, and a stream closed since configuration is never written to.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def _target(self) -> TextIO:
        return getattr(sys, self.name)

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return getattr(self._target(), "isatty", lambda: False)()

    @property
    def encoding(self) -> str | None:
        return getattr(self._target(), "encoding", None)


STDOUT: TextIO = _CurrentStream("stdout")  # type: ignore[assignment]
STDERR: TextIO = _CurrentStream("stderr")  # type: ignore[assignment]


def configure(
    fmt: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Set up structlog and route the standard library's loggers through it."""
    stream = stream or STDOUT
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any
    if fmt == "console":
        renderer = console.ConsoleRenderer(stream, level=level)  # colours only on a TTY, never with NO_COLOR
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    global _redactor
    _redactor = _Redactor(secrets)
    tail: list[Any] = []
    if fmt != "console":
        # Tracebacks as data, without local variables: locals may hold credentials.
        tail.append(structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)))
    else:  # as text, so that the redactor sees it before the console prints it
        tail.append(structlog.processors.format_exc_info)
    # Redaction last: an exception's message (now part of the rendered traceback) may carry a secret.
    tail.append(_redactor)

    structlog.configure(
        processors=[*shared, _vocabulary, _drop_none, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                _external,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries are chatty at debug (peewee logs every query): show them only when asked.
    root.setLevel(logging.WARNING)
    for name in _EXTERNAL_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
        lib.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def get_logger(**bound: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(**bound)


def bind_run(run_id: str, **fields: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(run_id=run_id, **fields)


_TERMINATION_LIMIT = 4096  # Kubernetes keeps at most 4096 bytes of the termination message


def write_termination_message(path: str, summary: dict[str, Any]) -> bool:
    """Write the summary where Kubernetes reads the container's termination message.

    Kubernetes keeps 4096 bytes: per-step details are dropped first when the summary is
    larger. Returns False (and writes nothing) when the path is not writable, e.g. outside
    a pod.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return False
    summary = _redactor(None, "", dict(summary))
    text = _json_dumps(summary)
    if len(text.encode()) > _TERMINATION_LIMIT:
        slim = {k: v for k, v in summary.items() if k != "steps"}
        slim["steps_omitted"] = len(summary.get("steps") or [])
        text = _json_dumps(slim)
        if len(text.encode()) > _TERMINATION_LIMIT:
            text = _json_dumps({k: slim.get(k) for k in ("outcome", "exit_code", "duration_s", "run_id", "state",
                                                          "release")})
    try:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError:
        return False
    return True
