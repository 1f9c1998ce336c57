{{/*
Names. A release installed through the umbrella chart names every object
<release>-<chart> ("orderstream-command-service"); a release whose name
already contains the chart name uses the release name alone.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "orderstream-lib.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object of the release's chart, or fullnameOverride. */}}
{{- define "orderstream-lib.fullname" -}}
{{- include "orderstream-lib.fullnameOf" (dict "chart" .Chart.Name "values" .Values "release" .Release) -}}
{{- end -}}

{{/*
The full name of a chart from its name, its values and the release: the
umbrella chart uses it to name its subcharts' Services in routes.
  include "orderstream-lib.fullnameOf" (dict "chart" "query-service" "values" (index .Values "query-service") "release" .Release)
*/}}
{{- define "orderstream-lib.fullnameOf" -}}
{{- $values := .values | default dict -}}
{{- if $values.fullnameOverride -}}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .chart $values.nameOverride -}}
{{- if contains $name .release.Name -}}
{{- .release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The namespace of every object: the release's, or namespaceOverride. */}}
{{- define "orderstream-lib.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "orderstream-lib.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "orderstream-lib.serviceAccountName" -}}
{{- $sa := .Values.serviceAccount | default dict -}}
{{- if $sa.create -}}
{{- default (include "orderstream-lib.fullname" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}
