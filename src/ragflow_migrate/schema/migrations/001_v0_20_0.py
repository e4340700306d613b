"""RAGFlow v0.20.0: the baseline, 22 tables.

A database created by v0.20.0 (or adopted from any later release) starts here. Each table is
created with all its indexes in one statement. Up to v0.26.4 RAGFlow indexes three VARCHAR(2048)
columns; MySQL can only index a 768-character prefix of them, which RAGFlow's non-strict session
let it choose silently; here the prefix is explicit.
"""

import peewee as pw

from ragflow_migrate.schema.fields import DataBaseModel, LongTextField, add_named_index, prefix_index


def migrate(migrator, database, *, fake=False):
    class API4Conversation(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        dialog_id = pw.CharField(max_length=32, index=True)
        user_id = pw.CharField(max_length=255, index=True)
        message = LongTextField(null=True)
        reference = LongTextField(null=True)
        tokens = pw.IntegerField()
        source = pw.CharField(max_length=16, null=True, index=True)
        dsl = LongTextField(null=True)
        duration = pw.FloatField(index=True)
        round = pw.IntegerField(index=True)
        thumb_up = pw.IntegerField(index=True)
        errors = pw.TextField(null=True)

        class Meta:
            table_name = "api_4_conversation"

    class APIToken(DataBaseModel):
        tenant_id = pw.CharField(max_length=32, index=True)
        token = pw.CharField(max_length=255, index=True)
        dialog_id = pw.CharField(max_length=32, null=True, index=True)
        source = pw.CharField(max_length=16, null=True, index=True)
        beta = pw.CharField(max_length=255, null=True, index=True)

        class Meta:
            table_name = "api_token"
            primary_key = pw.CompositeKey("tenant_id", "token")

    class CanvasTemplate(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        avatar = pw.TextField(null=True)
        title = pw.CharField(max_length=255, null=True)
        description = pw.TextField(null=True)
        canvas_type = pw.CharField(max_length=32, null=True, index=True)
        dsl = LongTextField(null=True)

        class Meta:
            table_name = "canvas_template"

    class Conversation(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        dialog_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=255, null=True, index=True)
        message = LongTextField(null=True)
        reference = LongTextField(null=True)
        user_id = pw.CharField(max_length=255, null=True, index=True)

        class Meta:
            table_name = "conversation"

    class Dialog(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=255, null=True, index=True)
        description = pw.TextField(null=True)
        icon = pw.TextField(null=True)
        language = pw.CharField(max_length=32, null=True, index=True)
        llm_id = pw.CharField(max_length=128)
        llm_setting = LongTextField()
        prompt_type = pw.CharField(max_length=16, index=True)
        prompt_config = LongTextField()
        similarity_threshold = pw.FloatField()
        vector_similarity_weight = pw.FloatField()
        top_n = pw.IntegerField()
        top_k = pw.IntegerField()
        do_refer = pw.CharField(max_length=1)
        rerank_id = pw.CharField(max_length=128)
        kb_ids = LongTextField()
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "dialog"

    class Document(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        thumbnail = pw.TextField(null=True)
        kb_id = pw.CharField(max_length=256, index=True)
        parser_id = pw.CharField(max_length=32, index=True)
        parser_config = LongTextField()
        source_type = pw.CharField(max_length=128, index=True)
        type = pw.CharField(max_length=32, index=True)
        created_by = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=255, null=True, index=True)
        location = pw.CharField(max_length=255, null=True, index=True)
        size = pw.IntegerField(index=True)
        token_num = pw.IntegerField(index=True)
        chunk_num = pw.IntegerField(index=True)
        progress = pw.FloatField(index=True)
        progress_msg = pw.TextField(null=True)
        process_begin_at = pw.DateTimeField(null=True, index=True)
        process_duration = pw.FloatField()
        meta_fields = LongTextField(null=True)
        suffix = pw.CharField(max_length=32, index=True)
        run = pw.CharField(max_length=1, null=True, index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "document"

    class File(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        parent_id = pw.CharField(max_length=32, index=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        created_by = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=255, index=True)
        location = pw.CharField(max_length=255, null=True, index=True)
        size = pw.IntegerField(index=True)
        type = pw.CharField(max_length=32, index=True)
        source_type = pw.CharField(max_length=128, index=True)

        class Meta:
            table_name = "file"

    class File2Document(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        file_id = pw.CharField(max_length=32, null=True, index=True)
        document_id = pw.CharField(max_length=32, null=True, index=True)

        class Meta:
            table_name = "file2document"

    class InvitationCode(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        code = pw.CharField(max_length=32, index=True)
        visit_time = pw.DateTimeField(null=True, index=True)
        user_id = pw.CharField(max_length=32, null=True, index=True)
        tenant_id = pw.CharField(max_length=32, null=True, index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "invitation_code"

    class Knowledgebase(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        avatar = pw.TextField(null=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=128, index=True)
        language = pw.CharField(max_length=32, null=True, index=True)
        description = pw.TextField(null=True)
        embd_id = pw.CharField(max_length=128, index=True)
        permission = pw.CharField(max_length=16, index=True)
        created_by = pw.CharField(max_length=32, index=True)
        doc_num = pw.IntegerField(index=True)
        token_num = pw.IntegerField(index=True)
        chunk_num = pw.IntegerField(index=True)
        similarity_threshold = pw.FloatField(index=True)
        vector_similarity_weight = pw.FloatField(index=True)
        parser_id = pw.CharField(max_length=32, index=True)
        parser_config = LongTextField()
        pagerank = pw.IntegerField()
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "knowledgebase"

    class LLM(DataBaseModel):
        llm_name = pw.CharField(max_length=128, index=True)
        model_type = pw.CharField(max_length=128, index=True)
        fid = pw.CharField(max_length=128, index=True)
        max_tokens = pw.IntegerField()
        tags = pw.CharField(max_length=255, index=True)
        is_tools = pw.BooleanField()
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "llm"
            primary_key = pw.CompositeKey("fid", "llm_name")

    class LLMFactories(DataBaseModel):
        name = pw.CharField(max_length=128, primary_key=True)
        logo = pw.TextField(null=True)
        tags = pw.CharField(max_length=255, index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "llm_factories"

    class MCPServer(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        name = pw.CharField(max_length=255)
        tenant_id = pw.CharField(max_length=32, index=True)
        url = pw.CharField(max_length=2048)
        server_type = pw.CharField(max_length=32)
        description = pw.TextField(null=True)
        variables = LongTextField(null=True)
        headers = LongTextField(null=True)

        class Meta:
            table_name = "mcp_server"

    class Search(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        avatar = pw.TextField(null=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        name = pw.CharField(max_length=128, index=True)
        description = pw.TextField(null=True)
        created_by = pw.CharField(max_length=32, index=True)
        search_config = LongTextField()
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "search"

    class Task(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        doc_id = pw.CharField(max_length=32, index=True)
        from_page = pw.IntegerField()
        to_page = pw.IntegerField()
        task_type = pw.CharField(max_length=32)
        priority = pw.IntegerField()
        begin_at = pw.DateTimeField(null=True, index=True)
        process_duration = pw.FloatField()
        progress = pw.FloatField(index=True)
        progress_msg = pw.TextField(null=True)
        retry_count = pw.IntegerField()
        digest = pw.TextField(null=True)
        chunk_ids = LongTextField(null=True)

        class Meta:
            table_name = "task"

    class Tenant(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        name = pw.CharField(max_length=100, null=True, index=True)
        public_key = pw.CharField(max_length=255, null=True, index=True)
        llm_id = pw.CharField(max_length=128, index=True)
        embd_id = pw.CharField(max_length=128, index=True)
        asr_id = pw.CharField(max_length=128, index=True)
        img2txt_id = pw.CharField(max_length=128, index=True)
        rerank_id = pw.CharField(max_length=128, index=True)
        tts_id = pw.CharField(max_length=256, null=True, index=True)
        parser_ids = pw.CharField(max_length=256, index=True)
        credit = pw.IntegerField(index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "tenant"

    class TenantLangfuse(DataBaseModel):
        tenant_id = pw.CharField(max_length=32, primary_key=True)
        secret_key = pw.CharField(max_length=2048)
        public_key = pw.CharField(max_length=2048)
        host = pw.CharField(max_length=128, index=True)

        class Meta:
            table_name = "tenant_langfuse"

    add_named_index(TenantLangfuse, prefix_index("secret_key", 768), name="tenantlangfuse_secret_key")
    add_named_index(TenantLangfuse, prefix_index("public_key", 768), name="tenantlangfuse_public_key")

    class TenantLLM(DataBaseModel):
        tenant_id = pw.CharField(max_length=32, index=True)
        llm_factory = pw.CharField(max_length=128, index=True)
        model_type = pw.CharField(max_length=128, null=True, index=True)
        llm_name = pw.CharField(max_length=128, index=True)
        api_key = pw.CharField(max_length=2048, null=True)
        api_base = pw.CharField(max_length=255, null=True)
        max_tokens = pw.IntegerField(index=True)
        used_tokens = pw.IntegerField(index=True)

        class Meta:
            table_name = "tenant_llm"
            primary_key = pw.CompositeKey("tenant_id", "llm_factory", "llm_name")

    add_named_index(TenantLLM, prefix_index("api_key", 768), name="tenantllm_api_key")

    class User(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        access_token = pw.CharField(max_length=255, null=True, index=True)
        nickname = pw.CharField(max_length=100, index=True)
        password = pw.CharField(max_length=255, null=True, index=True)
        email = pw.CharField(max_length=255, index=True)
        avatar = pw.TextField(null=True)
        language = pw.CharField(max_length=32, null=True, index=True)
        color_schema = pw.CharField(max_length=32, null=True, index=True)
        timezone = pw.CharField(max_length=64, null=True, index=True)
        last_login_time = pw.DateTimeField(null=True, index=True)
        is_authenticated = pw.CharField(max_length=1, index=True)
        is_active = pw.CharField(max_length=1, index=True)
        is_anonymous = pw.CharField(max_length=1, index=True)
        login_channel = pw.CharField(max_length=255, null=True, index=True)
        status = pw.CharField(max_length=1, null=True, index=True)
        is_superuser = pw.BooleanField(null=True, index=True)

        class Meta:
            table_name = "user"

    class UserCanvas(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        avatar = pw.TextField(null=True)
        user_id = pw.CharField(max_length=255, index=True)
        title = pw.CharField(max_length=255, null=True)
        permission = pw.CharField(max_length=16, index=True)
        description = pw.TextField(null=True)
        canvas_type = pw.CharField(max_length=32, null=True, index=True)
        dsl = LongTextField(null=True)

        class Meta:
            table_name = "user_canvas"

    class UserCanvasVersion(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        user_canvas_id = pw.CharField(max_length=255, index=True)
        title = pw.CharField(max_length=255, null=True)
        description = pw.TextField(null=True)
        dsl = LongTextField(null=True)

        class Meta:
            table_name = "user_canvas_version"

    class UserTenant(DataBaseModel):
        id = pw.CharField(max_length=32, primary_key=True)
        user_id = pw.CharField(max_length=32, index=True)
        tenant_id = pw.CharField(max_length=32, index=True)
        role = pw.CharField(max_length=32, index=True)
        invited_by = pw.CharField(max_length=32, index=True)
        status = pw.CharField(max_length=1, null=True, index=True)

        class Meta:
            table_name = "user_tenant"

    migrator.create_model(API4Conversation)
    migrator.create_model(APIToken)
    migrator.create_model(CanvasTemplate)
    migrator.create_model(Conversation)
    migrator.create_model(Dialog)
    migrator.create_model(Document)
    migrator.create_model(File)
    migrator.create_model(File2Document)
    migrator.create_model(InvitationCode)
    migrator.create_model(Knowledgebase)
    migrator.create_model(LLM)
    migrator.create_model(LLMFactories)
    migrator.create_model(MCPServer)
    migrator.create_model(Search)
    migrator.create_model(Task)
    migrator.create_model(Tenant)
    migrator.create_model(TenantLangfuse)
    migrator.create_model(TenantLLM)
    migrator.create_model(User)
    migrator.create_model(UserCanvas)
    migrator.create_model(UserCanvasVersion)
    migrator.create_model(UserTenant)


def rollback(migrator, database, *, fake=False):
    raise NotImplementedError("downgrades are not supported: restore a backup instead")
