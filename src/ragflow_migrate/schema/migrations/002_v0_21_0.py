"""RAGFlow v0.21.0: pipelines, canvas categories, knowledge-base task columns.

`tenant_llm.api_key` becomes TEXT, so its 768-character prefix index goes first (v0.21 drops it;
RAGFlow's own upgrade path leaves it behind on the TEXT column).
"""

import peewee as pw

from ragflow_migrate.schema.fields import DataBaseModel, LongTextField


def migrate(migrator, database, *, fake=False):
    class PipelineOperationLog(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        document_id = pw.CharField(max_length=32, index=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        kb_id = pw.CharField(max_length=32, index=True)
        pipeline_id = pw.CharField(max_length=32, null=True, index=True)
        pipeline_title = pw.CharField(max_length=32, null=True, index=True)
        parser_id = pw.CharField(max_length=32, index=True)
        document_name = pw.CharField(max_length=255)
        document_suffix = pw.CharField(max_length=255)
        document_type = pw.CharField(max_length=255)
        source_from = pw.CharField(max_length=255)
        progress = pw.FloatField(index=True)
        progress_msg = pw.TextField(null=True)
        process_begin_at = pw.DateTimeField(null=True, index=True)
        process_duration = pw.FloatField()
        dsl = LongTextField(null=True)
        task_type = pw.CharField(max_length=32)
        operation_status = pw.CharField(max_length=32)
        avatar = pw.TextField(null=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "pipeline_operation_log"

    migrator.create_model(PipelineOperationLog)

    migrator.change_fields(
        "canvas_template",
        title=LongTextField(null=True),
        description=LongTextField(null=True),
    )
    migrator.add_fields(
        "canvas_template", canvas_category=pw.CharField(max_length=32, default="agent_canvas", index=True)
    )
    migrator.add_fields("user_canvas", canvas_category=pw.CharField(max_length=32, default="agent_canvas", index=True))
    migrator.add_fields("dialog", meta_data_filter=LongTextField(null=True))
    migrator.add_fields("document", pipeline_id=pw.CharField(max_length=32, null=True, index=True))
    migrator.add_fields(
        "knowledgebase",
        pipeline_id=pw.CharField(max_length=32, null=True, index=True),
        graphrag_task_id=pw.CharField(max_length=32, null=True, index=True),
        graphrag_task_finish_at=pw.DateTimeField(null=True),
        raptor_task_id=pw.CharField(max_length=32, null=True, index=True),
        raptor_task_finish_at=pw.DateTimeField(null=True),
        mindmap_task_id=pw.CharField(max_length=32, null=True, index=True),
        mindmap_task_finish_at=pw.DateTimeField(null=True),
    )
    migrator.drop_index("tenant_llm", "tenantllm_api_key")
    migrator.change_fields("tenant_llm", api_key=pw.TextField(null=True))


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
