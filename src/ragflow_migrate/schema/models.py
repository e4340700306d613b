"""The target schema: RAGFlow v0.27.0's tables as peewee models.

These are the models ``schema diff`` compares a live database with and ``schema generate``
writes migrations from. The migration chain (``migrations/``) must arrive at exactly this
schema; a test holds the two together, and both to RAGFlow's own fresh v0.27.0 database
(``shared/ragflow-schema``). Facts from RAGFlow's ``api/db/db_models.py``; written here.
"""

from __future__ import annotations

import peewee as pw

from .fields import DataBaseModel, LongTextField, add_named_index


class API4Conversation(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    name = pw.CharField(max_length=255, null=True)
    dialog_id = pw.CharField(max_length=32, index=True)
    user_id = pw.CharField(max_length=255, index=True)
    exp_user_id = pw.CharField(max_length=255, null=True, index=True)
    message = LongTextField(null=True)
    reference = LongTextField(null=True)
    tokens = pw.IntegerField()
    source = pw.CharField(max_length=16, null=True, index=True)
    dsl = LongTextField(null=True)
    duration = pw.FloatField(index=True)
    round = pw.IntegerField(index=True)
    thumb_up = pw.IntegerField(index=True)
    errors = pw.TextField(null=True)
    version_title = pw.CharField(max_length=255, null=True)

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
    title = LongTextField(null=True)
    description = LongTextField(null=True)
    canvas_type = pw.CharField(max_length=32, null=True, index=True)
    canvas_types = LongTextField(null=True)
    canvas_category = pw.CharField(max_length=32, index=True)
    dsl = LongTextField(null=True)

    class Meta:
        table_name = "canvas_template"


class ChatChannel(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    tenant_id = pw.CharField(max_length=32, index=True)
    name = pw.CharField(max_length=128)
    channel = pw.CharField(max_length=128, index=True)
    config = LongTextField()
    chat_id = pw.CharField(max_length=32, null=True, index=True)
    status = pw.IntegerField(index=True)
    dialog_id = pw.CharField(max_length=32, null=True)

    class Meta:
        table_name = "chat_channel"


# RAGFlow's v0.26.4 startup adds `dialog_id` (and this index, named after the table) and then
# fails to rename it to `chat_id`; fresh v0.26.4 and v0.27.0 databases all carry it.
add_named_index(ChatChannel, ChatChannel.dialog_id, name="chat_channel_dialog_id")


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
                    "group_id",
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
    tenant_llm_id = pw.CharField(max_length=32, null=True, index=True)
    llm_setting = LongTextField()
    prompt_type = pw.CharField(max_length=16, index=True)
    prompt_config = LongTextField()
    meta_data_filter = LongTextField(null=True)
    similarity_threshold = pw.FloatField()
    vector_similarity_weight = pw.FloatField()
    top_n = pw.IntegerField()
    top_k = pw.IntegerField()
    do_refer = pw.CharField(max_length=1)
    rerank_id = pw.CharField(max_length=128)
    tenant_rerank_id = pw.CharField(max_length=32, null=True, index=True)
    kb_ids = LongTextField()
    status = pw.CharField(max_length=1, null=True, index=True)

    class Meta:
        table_name = "dialog"


class Document(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    thumbnail = pw.TextField(null=True)
    kb_id = pw.CharField(max_length=256, index=True)
    parser_id = pw.CharField(max_length=32, index=True)
    pipeline_id = pw.CharField(max_length=32, null=True, index=True)
    parser_config = LongTextField()
    source_type = pw.CharField(max_length=128, index=True)
    type = pw.CharField(max_length=32, index=True)
    created_by = pw.CharField(max_length=32, index=True)
    name = pw.CharField(max_length=255, null=True, index=True)
    location = pw.CharField(max_length=255, null=True, index=True)
    size = pw.BigIntegerField(index=True)
    token_num = pw.IntegerField(index=True)
    chunk_num = pw.IntegerField(index=True)
    progress = pw.FloatField(index=True)
    progress_msg = pw.TextField(null=True)
    process_begin_at = pw.DateTimeField(null=True, index=True)
    process_duration = pw.FloatField()
    suffix = pw.CharField(max_length=32, index=True)
    content_hash = pw.CharField(max_length=32, null=True, index=True)
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
    size = pw.BigIntegerField(index=True)
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
    tenant_embd_id = pw.CharField(max_length=32, null=True, index=True)
    permission = pw.CharField(max_length=16, index=True)
    created_by = pw.CharField(max_length=32, index=True)
    doc_num = pw.IntegerField(index=True)
    token_num = pw.IntegerField(index=True)
    chunk_num = pw.IntegerField(index=True)
    similarity_threshold = pw.FloatField(index=True)
    vector_similarity_weight = pw.FloatField(index=True)
    parser_id = pw.CharField(max_length=32, index=True)
    pipeline_id = pw.CharField(max_length=32, null=True, index=True)
    parser_config = LongTextField()
    pagerank = pw.IntegerField()
    graphrag_task_id = pw.CharField(max_length=32, null=True, index=True)
    graphrag_task_finish_at = pw.DateTimeField(null=True)
    raptor_task_id = pw.CharField(max_length=32, null=True, index=True)
    raptor_task_finish_at = pw.DateTimeField(null=True)
    mindmap_task_id = pw.CharField(max_length=32, null=True, index=True)
    mindmap_task_finish_at = pw.DateTimeField(null=True)
    wiki_task_id = pw.CharField(max_length=32, null=True, index=True)
    wiki_task_finish_at = pw.DateTimeField(null=True)
    skill_task_id = pw.CharField(max_length=32, null=True, index=True)
    skill_task_finish_at = pw.DateTimeField(null=True)
    structure_graph_task_id = pw.CharField(max_length=32, null=True, index=True)
    structure_graph_task_finish_at = pw.DateTimeField(null=True)
    structure_mindmap_task_id = pw.CharField(max_length=32, null=True, index=True)
    structure_mindmap_task_finish_at = pw.DateTimeField(null=True)
    timeline_task_id = pw.CharField(max_length=32, null=True, index=True)
    timeline_task_finish_at = pw.DateTimeField(null=True)
    session_graph_task_id = pw.CharField(max_length=32, null=True, index=True)
    session_graph_task_finish_at = pw.DateTimeField(null=True)
    session_essence_task_id = pw.CharField(max_length=32, null=True, index=True)
    session_essence_task_finish_at = pw.DateTimeField(null=True)
    structure_task_id = pw.CharField(max_length=32, null=True, index=True)
    structure_task_finish_at = pw.DateTimeField(null=True)
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
    rank = pw.IntegerField()
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


class Memory(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    name = pw.CharField(max_length=128)
    avatar = pw.TextField(null=True)
    tenant_id = pw.CharField(max_length=32, index=True)
    memory_type = pw.IntegerField(index=True)
    storage_type = pw.CharField(max_length=32, index=True)
    embd_id = pw.CharField(max_length=128)
    tenant_embd_id = pw.CharField(max_length=32, null=True, index=True)
    llm_id = pw.CharField(max_length=128)
    tenant_llm_id = pw.CharField(max_length=32, null=True, index=True)
    permissions = pw.CharField(max_length=16, index=True)
    description = pw.TextField(null=True)
    memory_size = pw.IntegerField()
    forgetting_policy = pw.CharField(max_length=32)
    temperature = pw.FloatField()
    system_prompt = pw.TextField(null=True)
    user_prompt = pw.TextField(null=True)

    class Meta:
        table_name = "memory"


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


class SyncLogs(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    connector_id = pw.CharField(max_length=32, index=True)
    task_type = pw.CharField(max_length=32, index=True)
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


class SystemSettings(DataBaseModel):
    name = pw.CharField(max_length=128, primary_key=True)
    source = pw.CharField(max_length=32)
    data_type = pw.CharField(max_length=32)
    value = pw.TextField()

    class Meta:
        table_name = "system_settings"


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
    tenant_llm_id = pw.CharField(max_length=32, null=True, index=True)
    embd_id = pw.CharField(max_length=128, index=True)
    tenant_embd_id = pw.CharField(max_length=32, null=True, index=True)
    asr_id = pw.CharField(max_length=128, index=True)
    tenant_asr_id = pw.CharField(max_length=32, null=True, index=True)
    img2txt_id = pw.CharField(max_length=128, index=True)
    tenant_img2txt_id = pw.CharField(max_length=32, null=True, index=True)
    rerank_id = pw.CharField(max_length=128, index=True)
    tenant_rerank_id = pw.CharField(max_length=32, null=True, index=True)
    tts_id = pw.CharField(max_length=256, null=True, index=True)
    tenant_tts_id = pw.CharField(max_length=32, null=True, index=True)
    ocr_id = pw.CharField(max_length=256, null=True, index=True)
    tenant_ocr_id = pw.CharField(max_length=32, null=True, index=True)
    parser_ids = pw.CharField(max_length=256, index=True)
    credit = pw.IntegerField(index=True)
    status = pw.CharField(max_length=1, null=True, index=True)

    class Meta:
        table_name = "tenant"


class TenantLangfuse(DataBaseModel):
    tenant_id = pw.CharField(max_length=32, primary_key=True)
    secret_key = pw.CharField(max_length=2048)
    public_key = pw.CharField(max_length=2048)
    host = pw.CharField(max_length=128)

    class Meta:
        table_name = "tenant_langfuse"


class TenantLLM(DataBaseModel):
    id = pw.AutoField()
    tenant_id = pw.CharField(max_length=32, index=True)
    llm_factory = pw.CharField(max_length=128, index=True)
    model_type = pw.CharField(max_length=128, null=True, index=True)
    llm_name = pw.CharField(max_length=128, null=True, index=True)
    api_key = pw.TextField(null=True)
    api_base = pw.CharField(max_length=255, null=True)
    max_tokens = pw.IntegerField(index=True)
    used_tokens = pw.IntegerField(index=True)
    status = pw.CharField(max_length=1, index=True)

    class Meta:
        table_name = "tenant_llm"
        indexes = (
            (
                (
                    "tenant_id",
                    "llm_factory",
                    "llm_name",
                ),
                True,
            ),
        )


class TenantModel(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    model_name = pw.CharField(max_length=128, null=True)
    provider_id = pw.CharField(max_length=32)
    instance_id = pw.CharField(max_length=32, index=True)
    model_type = pw.IntegerField(index=True)
    status = pw.CharField(max_length=32)
    extra = pw.CharField(max_length=1024)

    class Meta:
        table_name = "tenant_model"


class TenantModelGroup(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    group_type = pw.CharField(max_length=32)
    model_name = pw.CharField(max_length=128, null=True)
    strategy = pw.CharField(max_length=32)

    class Meta:
        table_name = "tenant_model_group"


class TenantModelGroupMapping(DataBaseModel):
    group_id = pw.CharField(max_length=32, index=True)
    provider_id = pw.CharField(max_length=32)
    instance_id = pw.CharField(max_length=32)
    model_id = pw.CharField(max_length=32, index=True)
    weight = pw.IntegerField()
    status = pw.CharField(max_length=32)

    class Meta:
        table_name = "tenant_model_group_mapping"
        primary_key = pw.CompositeKey("group_id", "provider_id", "instance_id", "model_id")


class TenantModelInstance(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    instance_name = pw.CharField(max_length=128)
    provider_id = pw.CharField(max_length=32)
    api_key = pw.CharField(max_length=512)
    status = pw.CharField(max_length=32)
    extra = pw.CharField(max_length=512)

    class Meta:
        table_name = "tenant_model_instance"


class TenantModelProvider(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    provider_name = pw.CharField(max_length=128)
    tenant_id = pw.CharField(max_length=32, index=True)

    class Meta:
        table_name = "tenant_model_provider"
        indexes = (
            (
                (
                    "tenant_id",
                    "provider_name",
                ),
                True,
            ),
        )


class User(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    access_token = pw.CharField(max_length=255, null=True, index=True)
    nickname = pw.CharField(max_length=100, index=True)
    password = pw.CharField(max_length=255, null=True, index=True)
    email = pw.CharField(max_length=255, unique=True)
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
    release = pw.BooleanField(index=True)
    description = pw.TextField(null=True)
    canvas_type = pw.CharField(max_length=32, null=True, index=True)
    canvas_category = pw.CharField(max_length=32, index=True)
    tags = pw.CharField(max_length=512, index=True)
    dsl = LongTextField(null=True)

    class Meta:
        table_name = "user_canvas"


class UserCanvasVersion(DataBaseModel):
    id = pw.CharField(max_length=32, primary_key=True)
    user_canvas_id = pw.CharField(max_length=255, index=True)
    title = pw.CharField(max_length=255, null=True)
    description = pw.TextField(null=True)
    release = pw.BooleanField(index=True)
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


MODELS: tuple[type[pw.Model], ...] = (
    API4Conversation,
    APIToken,
    CanvasTemplate,
    ChatChannel,
    CompilationTemplate,
    CompilationTemplateGroup,
    Connector,
    Connector2Kb,
    Conversation,
    Dialog,
    Document,
    File,
    File2Document,
    FileCommit,
    FileCommitItem,
    InvitationCode,
    Knowledgebase,
    LLM,
    LLMFactories,
    MCPServer,
    Memory,
    PipelineOperationLog,
    Search,
    SyncLogs,
    SystemSettings,
    Task,
    Tenant,
    TenantLangfuse,
    TenantLLM,
    TenantModel,
    TenantModelGroup,
    TenantModelGroupMapping,
    TenantModelInstance,
    TenantModelProvider,
    User,
    UserCanvas,
    UserCanvasVersion,
    UserTenant,
)
