{{/*
Pod pieces shared by the Deployment here and the schema-migrator's Job.
*/}}

{{/* The pod's securityContext: podSecurityContext of the values. */}}
{{- define "orderstream-lib.podSecurityContext" -}}
{{- with .Values.podSecurityContext -}}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The container's securityContext: securityContext of the values. */}}
{{- define "orderstream-lib.containerSecurityContext" -}}
{{- with .Values.securityContext -}}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
The container's environment: GOMEMLIMIT from the memory limit (Go sizes its
heap to the cgroup only for CPUs, not memory), the secretEnv variables, and
extraEnv.
*/}}
{{- define "orderstream-lib.env" -}}
{{- $ctx := . -}}
{{- $limits := (.Values.resources | default dict).limits | default dict -}}
{{- $entries := include "orderstream-lib.secretEnvEntries" . | fromJson -}}
{{- if or $limits.memory $entries .Values.extraEnv }}
env:
{{- if $limits.memory }}
  - name: GOMEMLIMIT
    valueFrom:
      resourceFieldRef:
        resource: limits.memory
{{- end }}
{{- range $key := keys $entries | sortAlpha }}
{{- $ref := get $entries $key }}
  - name: {{ include "orderstream-lib.envName" $key }}
    valueFrom:
      secretKeyRef:
        name: {{ $ref.name | default (include "orderstream-lib.secretName" $ctx) }}
        key: {{ required (printf "secretEnv.%s.key is required" $key) $ref.key }}
        {{- if $ref.optional }}
        optional: true
        {{- end }}
{{- end }}
{{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- with .Values.extraEnvFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Where the config file is mounted, and the argument that names it. */}}
{{- define "orderstream-lib.configDir" -}}/etc/orderstream/config{{- end -}}
{{- define "orderstream-lib.configArg" -}}--config={{ include "orderstream-lib.configDir" . }}/config.yaml{{- end -}}

{{/*
The container's volumeMounts: the config file, /tmp (the root filesystem is
read-only), every secretMount at /etc/orderstream/secrets/<name>, and
extraVolumeMounts.
*/}}
{{- define "orderstream-lib.volumeMounts" -}}
volumeMounts:
  - name: config
    mountPath: {{ include "orderstream-lib.configDir" . }}
    readOnly: true
  - name: tmp
    mountPath: /tmp
{{- $mounts := include "orderstream-lib.secretMountEntries" . | fromJson }}
{{- range $name := keys $mounts | sortAlpha }}
  - name: secret-{{ $name }}
    mountPath: /etc/orderstream/secrets/{{ $name }}
    readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The pod's volumes, matching volumeMounts; the config file is the chart's ConfigMap. */}}
{{- define "orderstream-lib.volumes" -}}
volumes:
  - name: config
    configMap:
      name: {{ include "orderstream-lib.fullname" . }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit | default "64Mi" }}
{{- $mounts := include "orderstream-lib.secretMountEntries" . | fromJson }}
{{- range $name := keys $mounts | sortAlpha }}
{{- $m := get $mounts $name }}
  - name: secret-{{ $name }}
    secret:
      secretName: {{ required (printf "secretMounts.%s.secretName is required" $name) $m.secretName }}
      {{- with $m.items }}
      items:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Scheduling: priorityClassName, nodeSelector, tolerations, affinity and
topologySpreadConstraints; a constraint without a labelSelector gets the
chart's pods, and spreads each rollout's pods on their own.
*/}}
{{- define "orderstream-lib.scheduling" -}}
{{- $ctx := . -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints:
{{- range . }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "orderstream-lib.selectorLabels" $ctx | fromYaml)) }}
{{- if not $c.matchLabelKeys }}
{{- $_ := set $c "matchLabelKeys" (list "pod-template-hash") }}
{{- end }}
{{- end }}
  - {{ toYaml $c | nindent 4 | trim }}
{{- end }}
{{- end }}
{{- end -}}
