"""RAGFlow v0.26.4: chat channels, compilation templates, file commits, more task columns.

Fresh v0.26.4 databases carry a stray `chat_channel.dialog_id` (with an index named after the
table): RAGFlow's startup adds it and then fails to rename it to `chat_id`. It is part of what
the release creates, so it is declared here too.
"""

import peewee as pw

from ragflow_migrate.schema.fields import DataBaseModel, LongTextField


def migrate(migrator, database, *, fake=False):
    class ChatChannel(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=128)
        channel = pw.CharField(max_length=128, index=True)
        config = LongTextField()
        chat_id = pw.CharField(max_length=32, null=True, index=True)
        status = pw.IntegerField(index=True)

        class Meta:
            table_name = "chat_channel"

    class CompilationTemplate(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        tenant_id = pw.CharField(max_length=32, null=True, index=True)
        group_id = pw.CharField(max_length=32, null=True, index=True)
        name = pw.CharField(max_length=128, index=True)
        description = pw.TextField(null=True)
        kind = pw.CharField(max_length=64, index=True)
        config = LongTextField()
        is_builtin = pw.BooleanField(index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "compilation_template"
            indexes = (
                (
                    (
                        "tenant_id",
                        "name",
                        "is_builtin",
                        "status",
                    ),
                    True,
                ),
            )

    class CompilationTemplateGroup(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=128, index=True)
        description = pw.TextField(null=True)
        scope = pw.CharField(max_length=16, index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "compilation_template_group"
            indexes = (
                (
                    (
                        "tenant_id",
                        "name",
                        "status",
                    ),
                    True,
                ),
            )

    class FileCommit(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        folder_id = pw.CharField(max_length=32, index=True)
        parent_id = pw.CharField(max_length=32, null=True, index=True)
        message = pw.CharField(max_length=512)
        author_id = pw.CharField(max_length=32, index=True)
        file_count = pw.IntegerField()
        tree_state = LongTextField(null=True)
        title = pw.CharField(max_length=255, null=True)
        comments = pw.TextField(null=True)

        class Meta:
            table_name = "file_commit"

    class FileCommitItem(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        commit_id = pw.CharField(max_length=32, index=True)
        file_id = pw.CharField(max_length=32, index=True)
        operation = pw.CharField(max_length=16, index=True)
        old_hash = pw.CharField(max_length=64, null=True, index=True)
        new_hash = pw.CharField(max_length=64, null=True, index=True)
        old_location = pw.CharField(max_length=255, null=True)
        new_location = pw.CharField(max_length=255, null=True)
        old_name = pw.CharField(max_length=255, null=True)
        new_name = pw.CharField(max_length=255, null=True)
        diff = LongTextField(null=True)
        content_after_storage = pw.CharField(max_length=16, null=True, index=True)
        content_after_location = pw.CharField(max_length=512, null=True)
        slug_kwd = pw.CharField(max_length=512, null=True, index=True)
        page_type_kwd = pw.CharField(max_length=32, null=True, index=True)

        class Meta:
            table_name = "file_commit_item"
            indexes = (
                (
                    (
                        "commit_id",
                        "file_id",
                    ),
                    True,
                ),
            )

    migrator.create_model(ChatChannel)
    migrator.create_model(CompilationTemplate)
    migrator.create_model(CompilationTemplateGroup)
    migrator.create_model(FileCommit)
    migrator.create_model(FileCommitItem)

    migrator.add_fields(
        "chat_channel",
        index_names={"dialog_id": "chat_channel_dialog_id"},
        dialog_id=pw.CharField(max_length=32, null=True, index=True),
    )
    migrator.add_fields(
        "knowledgebase",
        artifact_task_id=pw.CharField(max_length=32, null=True, index=True),
        artifact_task_finish_at=pw.DateTimeField(null=True),
        skill_task_id=pw.CharField(max_length=32, null=True, index=True),
        skill_task_finish_at=pw.DateTimeField(null=True),
    )


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
