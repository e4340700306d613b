"""RAGFlow v0.25.0: `tenant_llm` gets a surrogate key; references to it; unique e-mails.

* `tenant_llm`: the composite primary key (tenant_id, llm_factory, llm_name) becomes a UNIQUE
  index and an `id INT AUTO_INCREMENT` becomes the primary key, in one statement (rows numbered
  in the old key's order, as RAGFlow numbers them); `llm_name` may then be NULL.
* The `tenant_*_id` columns that reference `tenant_llm.id` appear (INT; v0.27 turns them into
  model ids, in the data stage `tenant_model_id_migration`).
* `user.email` becomes UNIQUE; duplicate addresses are renamed first, as RAGFlow does.
* `document.size` and `file.size` become BIGINT.
"""

import peewee as pw

from ragflow_migrate.schema.fields import LongTextField


def migrate(migrator, database, *, fake=False):
    migrator.add_fields("api_4_conversation", version_title=pw.CharField(max_length=255, null=True))
    migrator.add_fields("canvas_template", canvas_types=LongTextField(null=True))
    migrator.add_fields(
        "dialog",
        tenant_llm_id=pw.IntegerField(null=True, index=True),
        tenant_rerank_id=pw.IntegerField(null=True, index=True),
    )
    migrator.change_fields("document", size=pw.BigIntegerField(index=True))
    migrator.add_fields("document", content_hash=pw.CharField(max_length=32, null=True, index=True))
    migrator.change_fields("file", size=pw.BigIntegerField(index=True))
    migrator.add_fields("knowledgebase", tenant_embd_id=pw.IntegerField(null=True, index=True))
    migrator.add_fields(
        "memory",
        tenant_embd_id=pw.IntegerField(null=True, index=True),
        tenant_llm_id=pw.IntegerField(null=True, index=True),
    )
    migrator.add_fields(
        "tenant",
        tenant_llm_id=pw.IntegerField(null=True, index=True),
        tenant_embd_id=pw.IntegerField(null=True, index=True),
        tenant_asr_id=pw.IntegerField(null=True, index=True),
        tenant_img2txt_id=pw.IntegerField(null=True, index=True),
        tenant_rerank_id=pw.IntegerField(null=True, index=True),
        tenant_tts_id=pw.IntegerField(null=True, index=True),
    )

    migrator.surrogate_primary_key("tenant_llm", "id", unique_name="tenantllm_tenant_id_llm_factory_llm_name")
    migrator.add_index("tenant_llm", "tenant_id", "llm_factory", "llm_name", unique=True)
    migrator.change_fields("tenant_llm", llm_name=pw.CharField(max_length=128, null=True, index=True))

    migrator.deduplicate_user_emails()
    migrator.add_index("user", "email", unique=True)

    migrator.add_fields("user_canvas", release=pw.BooleanField(default=False, index=True))
    migrator.add_fields("user_canvas_version", release=pw.BooleanField(default=False, index=True))


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
