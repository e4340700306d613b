"""ragflow-migrate: upgrade a RAGFlow database (MySQL, MariaDB or PostgreSQL), safely and fast, ahead
of the RAGFlow pods."""

import sys as _sys

__version__ = "0.1.0"


def _import_peewee_without_postgres_drivers() -> None:
    """Import peewee before anything else does, with the PostgreSQL drivers hidden from it.

    peewee imports psycopg2 / psycopg at import time when they are installed (psycopg 3 is this
    tool's PostgreSQL driver), which costs about 90 ms on every start (``python -X importtime``): a
    MySQL no-op run went from 0.24 s to 0.35 s. The drivers stay importable afterwards (only the
    entries this function added are removed); the PostgreSQL backend hands psycopg to peewee when
    it needs it (``backends/postgres/peewee_db.py``)."""
    if "peewee" in _sys.modules:
        return
    hidden = [name for name in ("psycopg2", "psycopg") if name not in _sys.modules]
    for name in hidden:
        _sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import peewee  # noqa: F401
    finally:
        for name in hidden:
            if _sys.modules.get(name) is None:
                del _sys.modules[name]


_import_peewee_without_postgres_drivers()
