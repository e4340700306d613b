"""RAGFlow v0.25.6: sync task types and canvas tags (existing rows: 'sync' and '')."""

import peewee as pw


def migrate(migrator, database, *, fake=False):
    migrator.add_fields("sync_logs", task_type=pw.CharField(max_length=32, default="sync", index=True))
    migrator.add_fields("user_canvas", tags=pw.CharField(max_length=512, default="", index=True))


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
