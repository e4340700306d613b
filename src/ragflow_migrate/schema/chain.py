"""The chain of migrations, one per RAGFlow release, and what each release declares.

The files in ``migrations/`` are peewee-migrate migrations (``NNN_vX_Y_Z.py``); peewee-migrate's
``Router`` finds and reads them, and keeps the history in ``ragflow_migrate_history`` (not
peewee-migrate's default ``migratehistory``, which RAGFlow's own developer script uses).
Replaying the chain without a database gives, for every release, the operations it performs
and the schema it declares: that is how a fresh install of any release, the verification after
an upgrade, and the release detection of an adopted database are all computed.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import peewee as pw

from ..releases import KNOWN_RELEASES, NEWEST_RELEASE, known_release
from .operations import Operation
from .snapshot import Snapshot, from_models

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HISTORY_TABLE = "ragflow_migrate_history"


def release_of(name: str) -> str:
    """``003_v0_22_0`` → ``v0.22.0``."""
    return "v" + name.split("_v", 1)[1].replace("_", ".")


def migration_name(release: str) -> str:
    index = KNOWN_RELEASES.index(known_release(release))
    return f"{index + 1:03d}_{release.replace('.', '_')}"


@functools.lru_cache(maxsize=1)
def migration_names() -> tuple[str, ...]:
    """Every migration shipped in the package, oldest first (a directory listing: no imports)."""
    return tuple(sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.py")))


def names_up_to(target: str) -> tuple[str, ...]:
    last = migration_name(target)
    return tuple(n for n in migration_names() if n <= last)


@dataclasses.dataclass
class Migration:
    name: str
    release: str
    operations: list[Operation]
    expected: Snapshot  # the schema the release declares, after this migration


@functools.lru_cache(maxsize=4)
def replay(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """Run every migration file against a migrator only (no database): the whole chain.
    ``directory`` is the package's migrations unless a maintainer tests a generated one."""
    from .migrator import SafeMigrator
    from .pwm import Router

    router = Router(pw.MySQLDatabase(None), migrate_dir=directory, migrate_table=HISTORY_TABLE,
                    migrator_class=SafeMigrator)
    migrator = SafeMigrator()
    out = []
    names = migration_names() if directory == MIGRATIONS_DIR else tuple(router.todo)
    for name in names:
        migrate, _rollback = router.read(name)
        migrate(migrator, router.database, fake=False)
        out.append(Migration(name, release_of(name), migrator.take_operations(), migrator.expected.copy()))
    _mark_superseded(out)
    return tuple(out)


def _mark_superseded(migrations: list[Migration]) -> None:
    """Tell additions that a later release renames what they add. A database adopted from a
    newer RAGFlow already has the new name; re-adding the old one would leave a stray copy."""
    from .operations import AddColumn, AddIndex, CreateTable, RenameColumn, RenameIndex, RetireTable

    ops = [op for m in migrations for op in m.operations]
    retired_in = {op.table: m.release for m in migrations for op in m.operations if isinstance(op, RetireTable)}
    for op in ops:
        if isinstance(op, CreateTable) and op.table in retired_in:
            op.retired_in = retired_in[op.table]
    for position, later in enumerate(ops):
        for earlier in ops[:position]:
            if isinstance(later, RenameColumn) and earlier.table == later.table:
                if isinstance(earlier, AddColumn) and earlier.column.name == later.old:
                    earlier.superseded_by = later.column.name
                elif isinstance(earlier, AddIndex) and later.old in earlier.index.column_names:
                    earlier.superseded_by = earlier.superseded_by or earlier.index.name
            if isinstance(later, RenameIndex) and isinstance(earlier, AddIndex) and earlier.table == later.table \
                    and earlier.index.name == later.old:
                earlier.superseded_by = later.index.name


def expected_schema(release: str) -> Snapshot:
    """The schema RAGFlow ``release`` declares, as computed from the chain."""
    name = migration_name(release)
    for migration in replay():
        if migration.name == name:
            return migration.expected.copy()
    raise ValueError(f"no migration for {release}")


def install_schema(release: str) -> Snapshot:
    """What a fresh install of ``release`` creates: the declared schema, with the newest release's
    columns in the order of its models (RAGFlow's own order)."""
    if known_release(release) == NEWEST_RELEASE:
        from .models import MODELS

        return from_models(MODELS)
    return expected_schema(release)
