"""ragflow-migrate: upgrade a RAGFlow database (MySQL, MariaDB or PostgreSQL), safely and fast, ahead
of the RAGFlow pods."""

import contextlib as _contextlib
import sys as _sys
from collections.abc import Iterator as _Iterator

__version__ = "0.1.0"


@_contextlib.contextmanager
def postgres_drivers_hidden() -> _Iterator[None]:
    """Imports inside see the PostgreSQL drivers as absent, unless they are loaded already.

    peewee imports psycopg2 / psycopg at import time when they are installed (psycopg 3 is this
    tool's PostgreSQL driver), which costs about 90 ms on every start (``python -X importtime``): a
    MySQL no-op run went from 0.24 s to 0.35 s; peewee-migrate's ``playhouse.postgres_ext`` imports
    them again (another ~0.2 s before a MySQL run replays the chain). peewee and peewee-migrate are
    imported under this guard; the drivers stay importable afterwards (only the entries added here
    are removed); the PostgreSQL backend hands psycopg to peewee when it needs it
    (``backends/postgres/peewee_db.py``)."""
    hidden = [name for name in ("psycopg2", "psycopg") if name not in _sys.modules]
    for name in hidden:
        _sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        yield
    finally:
        for name in hidden:
            if _sys.modules.get(name) is None:
                del _sys.modules[name]


with postgres_drivers_hidden():
    import peewee as _peewee  # noqa: F401  (first, before anything imports it with the drivers visible)
