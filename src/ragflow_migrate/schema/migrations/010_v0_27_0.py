"""RAGFlow v0.27.0: model ids instead of tenant_llm ids; wiki and structure tasks.

* Two conversions carry data and belong to the v0.27 data stages, which run right after this
  migration: ``tenant_model.model_type`` becomes an INT bitmask (``model_type_merge``), and the
  eleven ``tenant_*_id`` columns become VARCHAR(32) model ids (``tenant_model_id_migration``).
  This migration declares them and leaves the columns to those stages.
* ``knowledgebase.artifact_task_*`` is renamed ``wiki_task_*`` (data kept), index included.
* The evaluation tables are no longer declared; they stay, with their data.
* Model types are renamed as RAGFlow v0.27 does at start-up: ``speech2text`` → ``asr``,
  ``image2text`` → ``vision`` (same bits).
* Indexes RAGFlow's own migration script may have created on the new model tables are dropped,
  as RAGFlow v0.27's start-up drops them.
"""

import peewee as pw


def migrate(migrator, database, *, fake=False):
    for name in ("evaluation_cases", "evaluation_datasets", "evaluation_results", "evaluation_runs"):
        migrator.retire_model(name)

    migrator.add_index("compilation_template", "tenant_id", "group_id", "name", "is_builtin", "status", unique=True)
    migrator.drop_index("compilation_template", "compilationtemplate_tenant_id_name_is_builtin_status")
    migrator.drop_index("compilation_template_group", "compilationtemplategroup_tenant_id_name_status")

    migrator.rename_field("knowledgebase", "artifact_task_id", "wiki_task_id")
    migrator.rename_field("knowledgebase", "artifact_task_finish_at", "wiki_task_finish_at")
    migrator.rename_index("knowledgebase", "knowledgebase_artifact_task_id", "wiki_task_id")
    migrator.add_fields(
        "knowledgebase",
        structure_graph_task_id=pw.CharField(max_length=32, null=True, index=True),
        structure_graph_task_finish_at=pw.DateTimeField(null=True),
        structure_mindmap_task_id=pw.CharField(max_length=32, null=True, index=True),
        structure_mindmap_task_finish_at=pw.DateTimeField(null=True),
        timeline_task_id=pw.CharField(max_length=32, null=True, index=True),
        timeline_task_finish_at=pw.DateTimeField(null=True),
        session_graph_task_id=pw.CharField(max_length=32, null=True, index=True),
        session_graph_task_finish_at=pw.DateTimeField(null=True),
        session_essence_task_id=pw.CharField(max_length=32, null=True, index=True),
        session_essence_task_finish_at=pw.DateTimeField(null=True),
        structure_task_id=pw.CharField(max_length=32, null=True, index=True),
        structure_task_finish_at=pw.DateTimeField(null=True),
    )

    model_id = pw.CharField(max_length=32, null=True, index=True)
    migrator.change_fields(
        "tenant",
        deferred_to="data tenant_model_id_migration",
        tenant_llm_id=model_id.clone(),
        tenant_embd_id=model_id.clone(),
        tenant_asr_id=model_id.clone(),
        tenant_img2txt_id=model_id.clone(),
        tenant_rerank_id=model_id.clone(),
        tenant_tts_id=model_id.clone(),
    )
    migrator.add_fields("tenant", tenant_ocr_id=model_id.clone())
    migrator.change_fields(
        "dialog",
        deferred_to="data tenant_model_id_migration",
        tenant_llm_id=model_id.clone(),
        tenant_rerank_id=model_id.clone(),
    )
    migrator.change_fields(
        "knowledgebase", deferred_to="data tenant_model_id_migration", tenant_embd_id=model_id.clone()
    )
    migrator.change_fields(
        "memory",
        deferred_to="data tenant_model_id_migration",
        tenant_embd_id=model_id.clone(),
        tenant_llm_id=model_id.clone(),
    )

    migrator.change_fields("tenant_model", deferred_to="data model_type_merge", model_type=pw.IntegerField(index=True))
    migrator.add_index("tenant_model", "model_type")

    for index in ("tenantlangfuse_secret_key", "tenantlangfuse_public_key", "tenantlangfuse_host"):
        migrator.drop_index("tenant_langfuse", index)
    for index in ("idx_api_key_provider_id", "tenantmodelinstance_api_key_provider_id"):
        migrator.drop_index("tenant_model_instance", index)
    migrator.drop_index("tenant_model", "idx_provider_model_instance")

    for table in ("llm", "tenant_llm"):
        migrator.rename_values(table, "model_type", {"speech2text": "asr", "image2text": "vision"})


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
