{{/*
The container spec and the pod pieces, defined ONCE and shared by every place the tool runs: the hook
Job, the initContainer in RAGFlow's Deployment, the wait-for-version initContainer, one-off Jobs and
CronJobs. Only the container name and the arguments differ.

Public entry points for RAGFlow's chart (see README.md, "Patch for RAGFlow's chart"):

  initContainers:
    {{- include "ragflow-migrate.initContainers" . | nindent 8 }}
  volumes:
    {{- include "ragflow-migrate.volumes" . | nindent 8 }}

Both accept RAGFlow's root scope (`.`): they find this chart's scope in `.Subcharts` under the dependency
name `ragflow-migrate`. With an alias, pass the scope yourself: `(index .Subcharts "<alias>")`.
Both render nothing when there is nothing to add (mode=none, or mode=job on a fresh install), so the
patch can stay in place in every mode.
*/}}

{{/*
ragflow-migrate.container: one container of the tool.
  dict "ctx" <this chart's scope> "name" <container name> "args" <list of arguments>
*/}}
{{- define "ragflow-migrate.container" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
{{- $db := $v.database -}}
{{- /* RAGFlow's variables of the selected database: MYSQL_HOST ... or POSTGRES_HOST ... */}}
{{- $prefix := include "ragflow-migrate.envPrefix" $ -}}
- name: {{ .name }}
  image: {{ include "ragflow-migrate.image" $ | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    {{- range .args }}
    - {{ toString . | quote }}
    {{- end }}
  env:
    # The runner's name shown to other runners waiting for the lock.
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: RAGFLOW_MIGRATE_TARGET_VERSION
      value: {{ $v.ragflow.version | quote }}
    {{- if ne $v.catalog.source "none" }}
    - name: RAGFLOW_MIGRATE_CATALOG
      value: /etc/ragflow-migrate/catalog/llm_factories.json
    {{- end }}
    {{- if or $v.serviceConf.configMap $v.serviceConf.secret }}
    - name: RAGFLOW_MIGRATE_CONFIG
      value: /etc/ragflow-migrate/conf/service_conf.yaml
    {{- end }}
    {{- if $db.passwordFile.secretName }}
    - name: RAGFLOW_MIGRATE_PASSWORD_FILE
      value: /etc/ragflow-migrate/password/password
    {{- end }}
    - name: RAGFLOW_MIGRATE_WAIT_TIMEOUT
      value: {{ toString $v.migrate.waitTimeout | quote }}
    - name: RAGFLOW_MIGRATE_LOCK_TIMEOUT
      value: {{ toString $v.migrate.lockTimeout | quote }}
    {{- with $v.migrate.lockName }}
    - name: RAGFLOW_MIGRATE_LOCK_NAME
      value: {{ . | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" $v.migrate.batchSize) }}
    - name: RAGFLOW_MIGRATE_BATCH_SIZE
      value: {{ int64 $v.migrate.batchSize | toString | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" $v.migrate.sessions) }}
    - name: RAGFLOW_MIGRATE_SESSIONS
      value: {{ toString $v.migrate.sessions | quote }}
    {{- end }}
    {{- if $v.migrate.createDatabase }}
    - name: RAGFLOW_MIGRATE_CREATE_DATABASE
      value: "true"
    {{- end }}
    {{- if $v.migrate.widenColumns }}
    - name: RAGFLOW_MIGRATE_WIDEN_COLUMNS
      value: "true"
    {{- end }}
    {{- with $v.migrate.cluster }}
    {{- if .nodes }}
    - name: RAGFLOW_MIGRATE_CLUSTER_NODES
      value: {{ join "," .nodes | quote }}
    {{- end }}
    {{- with .leaseTtl }}
    - name: RAGFLOW_MIGRATE_LEASE_TTL
      value: {{ toString . | quote }}
    {{- end }}
    {{- if .allowBlockingDdl }}
    - name: RAGFLOW_MIGRATE_ALLOW_BLOCKING_DDL
      value: "true"
    {{- end }}
    {{- if not (kindIs "invalid" .blockingDdlRows) }}
    - name: RAGFLOW_MIGRATE_BLOCKING_DDL_ROWS
      value: {{ int64 .blockingDdlRows | toString | quote }}
    {{- end }}
    {{- end }}
    - name: RAGFLOW_MIGRATE_LOG_FORMAT
      value: {{ $v.migrate.logFormat | quote }}
    - name: RAGFLOW_MIGRATE_LOG_LEVEL
      value: {{ $v.migrate.logLevel | quote }}
    {{- /* mysql renders no DB_TYPE: the tool's default, and the render MySQL installs always had. */}}
    {{- if eq $db.type "postgres" }}
    - name: DB_TYPE
      value: "postgres"
    {{- with $db.pgSslmode }}
    - name: RAGFLOW_MIGRATE_PG_SSLMODE
      value: {{ . | quote }}
    {{- end }}
    {{- end }}
    {{- /* Selected keys of the Secret instead of all of it (database.secret.keys). */}}
    {{- if $db.secret.keys }}
    {{- $secret := include "ragflow-migrate.secretName" $ }}
    {{- range $env, $key := $db.secret.keys }}
    - name: {{ $env }}
      valueFrom:
        secretKeyRef:
          name: {{ $secret | quote }}
          key: {{ $key | quote }}
          optional: {{ not (has $env (list (print $prefix "HOST") (print $prefix "PASSWORD"))) }}
    {{- end }}
    {{- end }}
    {{- /* Explicit values win over the Secret (env beats envFrom). */}}
    {{- with $db.host }}
    - name: {{ $prefix }}HOST
      value: {{ . | quote }}
    {{- end }}
    {{- if not (kindIs "invalid" $db.port) }}
    - name: {{ $prefix }}PORT
      value: {{ toString $db.port | quote }}
    {{- end }}
    {{- with $db.user }}
    - name: {{ $prefix }}USER
      value: {{ . | quote }}
    {{- end }}
    {{- with $db.name }}
    - name: {{ $prefix }}DBNAME
      value: {{ . | quote }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or (not $db.secret.keys) $v.extraEnvFrom }}
  envFrom:
    {{- if not $db.secret.keys }}
    - secretRef:
        name: {{ include "ragflow-migrate.secretName" $ | quote }}
    {{- end }}
    {{- with $v.extraEnvFrom }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: ragflow-migrate-tmp
      mountPath: /tmp
    {{- if ne $v.catalog.source "none" }}
    - name: ragflow-migrate-catalog
      mountPath: /etc/ragflow-migrate/catalog
      readOnly: true
    {{- end }}
    {{- if or $v.serviceConf.configMap $v.serviceConf.secret }}
    - name: ragflow-migrate-conf
      mountPath: /etc/ragflow-migrate/conf
      readOnly: true
    {{- end }}
    {{- if $db.passwordFile.secretName }}
    - name: ragflow-migrate-password
      mountPath: /etc/ragflow-migrate/password
      readOnly: true
    {{- end }}
    {{- with $v.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  # The tool writes its run summary here; `kubectl describe pod` shows it.
  terminationMessagePath: /dev/termination-log
  terminationMessagePolicy: FallbackToLogsOnError
{{- end -}}

{{/*
ragflow-migrate.catalogContainer: the tiny init step that copies llm_factories.json out of the RAGFlow
image into the shared emptyDir (catalog.source=image); nothing otherwise.
*/}}
{{- define "ragflow-migrate.catalogContainer" -}}
{{- $v := .Values -}}
{{- if eq $v.catalog.source "image" -}}
- name: ragflow-migrate-catalog
  image: {{ include "ragflow-migrate.catalogImage" . | quote }}
  imagePullPolicy: {{ $v.catalog.image.pullPolicy }}
  command:
    - cp
    - {{ $v.catalog.image.path | quote }}
    - /etc/ragflow-migrate/catalog/llm_factories.json
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  {{- with $v.catalog.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: ragflow-migrate-catalog
      mountPath: /etc/ragflow-migrate/catalog
  terminationMessagePolicy: FallbackToLogsOnError
{{- end -}}
{{- end -}}

{{/* ragflow-migrate.volumes.own: the volumes the containers above mount. */}}
{{- define "ragflow-migrate.volumes.own" -}}
{{- $v := .Values -}}
- name: ragflow-migrate-tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if eq $v.catalog.source "image" }}
- name: ragflow-migrate-catalog
  emptyDir:
    sizeLimit: 16Mi
{{- else if eq $v.catalog.source "configMap" }}
- name: ragflow-migrate-catalog
  configMap:
    name: {{ $v.catalog.configMap.name | quote }}
    items:
      - key: {{ $v.catalog.configMap.key | quote }}
        path: llm_factories.json
{{- end }}
{{- with $v.serviceConf }}
{{- if or .configMap .secret }}
{{- $items := list (dict "key" .key "path" "service_conf.yaml") }}
{{- if .localKey }}{{ $items = append $items (dict "key" .localKey "path" "local.service_conf.yaml") }}{{ end }}
- name: ragflow-migrate-conf
  {{- if .configMap }}
  configMap:
    name: {{ .configMap | quote }}
  {{- else }}
  secret:
    secretName: {{ .secret | quote }}
  {{- end }}
    items:
      {{- toYaml $items | nindent 6 }}
{{- end }}
{{- end }}
{{- with $v.database.passwordFile }}
{{- if .secretName }}
- name: ragflow-migrate-password
  secret:
    secretName: {{ .secretName | quote }}
    items:
      - key: {{ .key | quote }}
        path: password
{{- end }}
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
ragflow-migrate.podSpec: the pod of every Job and CronJob of this chart.
  dict "ctx" <this chart's scope> "args" <list of arguments>
*/}}
{{- define "ragflow-migrate.podSpec" -}}
{{- $ := .ctx -}}
{{- $v := $.Values -}}
restartPolicy: Never
# The tool never talks to the Kubernetes API.
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $v.serviceAccountName }}
serviceAccountName: {{ . | quote }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
# SIGTERM stops the tool at the next safe point (exit 11); give it time to get there.
terminationGracePeriodSeconds: 60
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (include "ragflow-migrate.catalogContainer" $) }}
initContainers:
  {{- . | nindent 2 }}
{{- end }}
containers:
  {{- include "ragflow-migrate.container" (dict "ctx" $ "name" "ragflow-migrate" "args" .args) | nindent 2 }}
volumes:
  {{- include "ragflow-migrate.volumes.own" $ | nindent 2 }}
{{- end -}}

{{/*
ragflow-migrate.podRole: what this chart adds to RAGFlow's pod: "migrate" (mode=initContainer), "wait"
(mode=job with the wait-for-version initContainer), or "" (nothing).
*/}}
{{- define "ragflow-migrate.podRole" -}}
{{- $v := .Values -}}
{{- if eq $v.mode "initContainer" -}}
migrate
{{- else if and (eq $v.mode "job") $v.waitForVersion.enabled (or (not .Release.IsInstall) $v.waitForVersion.onInstall) -}}
wait
{{- end -}}
{{- end -}}

{{/* The run arguments: `run` and migrate.extraArgs. */}}
{{- define "ragflow-migrate.runArgs" -}}
{{- toJson (concat (list "run") .Values.migrate.extraArgs) -}}
{{- end -}}

{{- define "ragflow-migrate.waitArgs" -}}
{{- $w := .Values.waitForVersion -}}
{{- toJson (list "wait-for-version" "--timeout" (toString $w.timeout) "--interval" (toString $w.interval)) -}}
{{- end -}}

{{/* A clear error when RAGFlow's chart includes the templates without this chart's scope. */}}
{{- define "ragflow-migrate.requireScope" -}}
{{- if not (and (hasKey . "Values") (hasKey .Values "mode") (hasKey .Values "waitForVersion")) -}}
{{- fail "ragflow-migrate: the included template got no ragflow-migrate values. Add this chart to RAGFlow's chart as the dependency named ragflow-migrate (helm/charts/ragflow-migrate, no alias, no condition), or pass its scope: include \"ragflow-migrate.initContainers\" (index .Subcharts \"<alias>\")" -}}
{{- end -}}
{{- end -}}

{{/* Public: the initContainers RAGFlow's Deployment adds (see the top of this file). */}}
{{- define "ragflow-migrate.initContainers" -}}
{{- $ctx := . -}}
{{- if and (hasKey . "Subcharts") (hasKey (default dict .Subcharts) "ragflow-migrate") -}}
{{- $ctx = index .Subcharts "ragflow-migrate" -}}
{{- end -}}
{{- include "ragflow-migrate.requireScope" $ctx -}}
{{- include "ragflow-migrate.validate" $ctx -}}
{{- $role := include "ragflow-migrate.podRole" $ctx -}}
{{- if $role -}}
{{- include "ragflow-migrate.catalogContainer" $ctx }}
{{- if eq $role "migrate" }}
{{ include "ragflow-migrate.container" (dict "ctx" $ctx "name" "ragflow-migrate" "args" (include "ragflow-migrate.runArgs" $ctx | fromJsonArray)) }}
{{- else }}
{{ include "ragflow-migrate.container" (dict "ctx" $ctx "name" "ragflow-migrate-wait" "args" (include "ragflow-migrate.waitArgs" $ctx | fromJsonArray)) }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Public: the volumes those initContainers mount (prefixed ragflow-migrate-, beside RAGFlow's own). */}}
{{- define "ragflow-migrate.volumes" -}}
{{- $ctx := . -}}
{{- if and (hasKey . "Subcharts") (hasKey (default dict .Subcharts) "ragflow-migrate") -}}
{{- $ctx = index .Subcharts "ragflow-migrate" -}}
{{- end -}}
{{- include "ragflow-migrate.requireScope" $ctx -}}
{{- if include "ragflow-migrate.podRole" $ctx -}}
{{- include "ragflow-migrate.volumes.own" $ctx -}}
{{- end -}}
{{- end -}}
