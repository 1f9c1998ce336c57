{{/*
Everything here is a hook: the Job runs before the release's other objects
exist, so its ConfigMap and ServiceAccount are hooks too, made first (lower
weight). Each is replaced at the next install or upgrade.
*/}}
{{- define "schema-migrator.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
