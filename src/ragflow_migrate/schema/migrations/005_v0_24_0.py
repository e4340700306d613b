"""RAGFlow v0.24.0: system settings; conversation names.

v0.24 stops declaring `document.meta_fields`; RAGFlow never drops it, and neither does this
chain: the column keeps its data and `schema diff` lists it as extra.
"""

import peewee as pw

from ragflow_migrate.schema.fields import DataBaseModel


def migrate(migrator, database, *, fake=False):
    class SystemSettings(DataBaseModel):
        name = pw.CharField(max_length=128, primary_key=True)
        source = pw.CharField(max_length=32)
        data_type = pw.CharField(max_length=32)
        value = pw.TextField()

        class Meta:
            table_name = "system_settings"

    migrator.create_model(SystemSettings)

    migrator.add_fields(
        "api_4_conversation",
        name=pw.CharField(max_length=255, null=True),
        exp_user_id=pw.CharField(max_length=255, null=True, index=True),
    )
    migrator.retire_fields("document", "meta_fields")


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
