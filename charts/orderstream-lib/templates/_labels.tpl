{{/*
Labels: the recommended app.kubernetes.io set. The component comes from the
chart's `orderstream.io/component` annotation (api, relay, projector,
migration), so that it describes the binary and cannot drift per install.
*/}}

{{/* Labels that select the pods of one chart in one release; never change them after an install. */}}
{{- define "orderstream-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orderstream-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "orderstream-lib.labels" -}}
helm.sh/chart: {{ include "orderstream-lib.chart" . }}
{{ include "orderstream-lib.selectorLabels" . }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- with .Chart.Annotations }}
{{- with index . "orderstream.io/component" }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}
app.kubernetes.io/part-of: orderstream
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of the pods: every label, and podLabels. */}}
{{- define "orderstream-lib.podLabels" -}}
{{ include "orderstream-lib.labels" . }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
