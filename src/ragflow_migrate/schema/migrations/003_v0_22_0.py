"""RAGFlow v0.22.0: data-source connectors, factory ranks, and a status per tenant model.

Existing `tenant_llm` rows are valid models: their new `status` is '1', as RAGFlow fills it.
"""

import peewee as pw

from ragflow_migrate.schema.fields import DataBaseModel, LongTextField


def migrate(migrator, database, *, fake=False):
    class Connector(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=128)
        source = pw.CharField(max_length=128, index=True)
        input_type = pw.CharField(max_length=128, index=True)
        config = LongTextField()
        refresh_freq = pw.IntegerField()
        prune_freq = pw.IntegerField()
        timeout_secs = pw.IntegerField()
        indexing_start = pw.DateTimeField(null=True, index=True)
        status = pw.CharField(max_length=16, null=True, index=True)

        class Meta:
            table_name = "connector"

    class Connector2Kb(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        connector_id = pw.CharField(max_length=32, index=True)
        kb_id = pw.CharField(max_length=32, index=True)
        auto_parse = pw.CharField(max_length=1)

        class Meta:
            table_name = "connector2kb"

    class SyncLogs(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        connector_id = pw.CharField(max_length=32, index=True)
        status = pw.CharField(max_length=128, index=True)
        from_beginning = pw.CharField(max_length=1, null=True)
        new_docs_indexed = pw.IntegerField()
        total_docs_indexed = pw.IntegerField()
        docs_removed_from_index = pw.IntegerField()
        error_msg = pw.TextField()
        error_count = pw.IntegerField()
        full_exception_trace = pw.TextField(null=True)
        time_started = pw.DateTimeField(null=True, index=True)
        poll_range_start = pw.CharField(max_length=255, null=True, index=True)
        poll_range_end = pw.CharField(max_length=255, null=True, index=True)
        kb_id = pw.CharField(max_length=32, index=True)

        class Meta:
            table_name = "sync_logs"

    migrator.create_model(Connector)
    migrator.create_model(Connector2Kb)
    migrator.create_model(SyncLogs)

    migrator.add_fields("llm_factories", rank=pw.IntegerField(default=0))
    migrator.add_fields("tenant_llm", status=pw.CharField(max_length=1, default="1", index=True))


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
