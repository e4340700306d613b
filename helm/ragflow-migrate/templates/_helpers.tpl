{{/*
Names, labels and lookups. Every template here takes the chart's own scope (`.Values` = this chart's
values). RAGFlow's chart reaches the public templates (_container.tpl) with its root scope; they turn it
into this chart's scope with "ragflow-migrate.scope" semantics (see there).
*/}}

{{- define "ragflow-migrate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-ragflow-migrate, or the release name alone when it already says ragflow-migrate. */}}
{{- define "ragflow-migrate.fullname" -}}
{{- if contains "ragflow-migrate" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ragflow-migrate" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ragflow-migrate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ragflow-migrate.selectorLabels" -}}
app.kubernetes.io/name: ragflow-migrate
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- define "ragflow-migrate.labels" -}}
helm.sh/chart: {{ include "ragflow-migrate.chart" . }}
{{ include "ragflow-migrate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ragflow
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
RAGFlow's fullname, by RAGFlow's own rule: its fullnameOverride; else the release name when it contains
the chart name ("ragflow", or nameOverride); else "<release>-<name>". The release is ragflow.releaseName,
or this release when this chart is a dependency of RAGFlow's.
*/}}
{{- define "ragflow-migrate.ragflowFullname" -}}
{{- $r := .Values.ragflow -}}
{{- if $r.fullnameOverride -}}
{{- $r.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $release := default .Release.Name $r.releaseName -}}
{{- $name := default "ragflow" $r.nameOverride -}}
{{- if contains $name $release -}}
{{- $release | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $release $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The prefix of RAGFlow's variables for the selected database: MYSQL_ or POSTGRES_ (RAGFlow's names). */}}
{{- define "ragflow-migrate.envPrefix" -}}
{{- if eq .Values.database.type "postgres" -}}POSTGRES_{{- else -}}MYSQL_{{- end -}}
{{- end -}}

{{/* The Secret with the MYSQL_* (POSTGRES_*) variables: database.secret.name, else RAGFlow's <fullname>-env-config. */}}
{{- define "ragflow-migrate.secretName" -}}
{{- default (printf "%s-env-config" (include "ragflow-migrate.ragflowFullname" .)) .Values.database.secret.name -}}
{{- end -}}

{{/* repository[:tag][@digest] */}}
{{- define "ragflow-migrate.imageRef" -}}
{{- $ref := printf "%s:%s" .image.repository (toString (default .defaultTag .image.tag)) -}}
{{- if .image.digest -}}
{{- $ref = printf "%s@%s" $ref .image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "ragflow-migrate.image" -}}
{{- include "ragflow-migrate.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion) -}}
{{- end -}}

{{- define "ragflow-migrate.catalogImage" -}}
{{- include "ragflow-migrate.imageRef" (dict "image" .Values.catalog.image "defaultTag" .Values.ragflow.version) -}}
{{- end -}}

{{/* A command string ("schema diff") as a DNS-label suffix ("schema-diff"). */}}
{{- define "ragflow-migrate.slug" -}}
{{- regexReplaceAll "[^a-z0-9]+" (lower .) "-" | trimAll "-" | trunc 20 | trimSuffix "-" -}}
{{- end -}}

{{/*
Checks the schema cannot express (it cannot compare two values); included by every template that renders
a resource, so that `helm template` and `helm install` fail with the reason before anything is applied.
*/}}
{{- define "ragflow-migrate.validate" -}}
{{- if and .Values.database.sameRelease (eq .Values.job.hooks.install "pre-install") (eq .Values.mode "job") -}}
{{- fail "job.hooks.install=pre-install cannot work with database.sameRelease=true: on a fresh install the MySQL server and its Secret are created by this same release, after pre-install hooks, so the Job would wait for a database that never comes (Helm deadlocks until its timeout). Use post-install (the default), mode=initContainer, or set database.sameRelease=false when the database and its Secret exist before the release." -}}
{{- end -}}
{{- if and (eq .Values.catalog.source "configMap") (not .Values.catalog.configMap.name) -}}
{{- fail "catalog.source=configMap needs catalog.configMap.name (the ConfigMap that holds llm_factories.json)" -}}
{{- end -}}
{{- if and .Values.serviceConf.configMap .Values.serviceConf.secret -}}
{{- fail "serviceConf: set either serviceConf.configMap or serviceConf.secret, not both" -}}
{{- end -}}
{{- $db := .Values.database -}}
{{- if and $db.pgSslmode (ne $db.type "postgres") -}}
{{- fail (printf "database.pgSslmode=%s is PostgreSQL's sslmode and needs database.type=postgres (with DB_TYPE=mysql the tool refuses an sslmode; MySQL's TLS is RAGFLOW_MIGRATE_SSL_CA)" $db.pgSslmode) -}}
{{- end -}}
{{- $other := ternary "MYSQL_" "POSTGRES_" (eq $db.type "postgres") -}}
{{- range $env, $key := $db.secret.keys -}}
{{- if hasPrefix $other $env -}}
{{- fail (printf "database.secret.keys imports %s, a variable the tool does not read with database.type=%s; use %s%s" $env $db.type (include "ragflow-migrate.envPrefix" $) (trimPrefix $other $env)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
