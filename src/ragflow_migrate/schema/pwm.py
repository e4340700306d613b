"""peewee-migrate, imported with the PostgreSQL drivers hidden: its ``playhouse.postgres_ext``
would import psycopg on every MySQL run that replays the chain (see
:func:`ragflow_migrate.postgres_drivers_hidden`). Import peewee-migrate's names from here."""

from __future__ import annotations

from .. import postgres_drivers_hidden

with postgres_drivers_hidden():
    from peewee_migrate import Migrator, Router

__all__ = ["Migrator", "Router"]
