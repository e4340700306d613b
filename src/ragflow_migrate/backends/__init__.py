"""The database backends: one package per kind of server RAGFlow keeps its metadata in.

:func:`get` returns the :class:`~.base.Backend` of ``settings.db_type``. Everything else in the
tool (orchestrator, steps, journal, reports, CLI) goes through that object for what differs
between servers; a new backend is one new package here and one row in :data:`_PACKAGES`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Backend

#: db_type -> module defining ``BACKEND`` (imported on first use: a MySQL run never imports psycopg).
_PACKAGES = {"mysql": ".mysql", "postgres": ".postgres"}
_LOADED: dict[str, Backend] = {}


def get(settings_or_type: Any) -> Backend:
    """The backend of a ``Settings`` (its ``db_type``) or of a db_type string."""
    db_type = settings_or_type if isinstance(settings_or_type, str) else getattr(settings_or_type, "db_type", "mysql")
    backend = _LOADED.get(db_type)
    if backend is None:
        if db_type not in _PACKAGES:
            raise KeyError(f"no backend for db_type {db_type!r}; known: {', '.join(_PACKAGES)}")
        backend = importlib.import_module(_PACKAGES[db_type], __name__).BACKEND
        _LOADED[db_type] = backend
    return backend


def is_missing_table(exc: BaseException) -> bool:
    """``exc`` says "no such table", on whichever backend is in use (the tool's own bookkeeping
    tables, history, journal, widenings, are created by the first write: reads find none)."""
    return any(backend.is_missing_table(exc) for backend in _LOADED.values())


__all__ = ["Backend", "get", "is_missing_table"]
