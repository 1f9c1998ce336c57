{{/*
Image reference: [registry/]repository[:tag][@digest]. The chart's own value
wins over global.image; the tag defaults to the chart's appVersion. A digest
pins the image; the tag stays in the reference for readers.
*/}}
{{- define "orderstream-lib.image" -}}
{{- $image := .Values.image | default dict -}}
{{- $global := (.Values.global | default dict).image | default dict -}}
{{- $repository := required "image.repository is required" $image.repository -}}
{{- $registry := $image.registry | default $global.registry | default "" -}}
{{- $tag := $image.tag | default $global.tag | default .Chart.AppVersion | toString -}}
{{- $ref := $repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref -}}
{{- end -}}
{{- if $tag -}}
{{- $ref = printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- with $image.digest -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "orderstream-lib.imagePullPolicy" -}}
{{- $global := (.Values.global | default dict).image | default dict -}}
{{- (.Values.image | default dict).pullPolicy | default $global.pullPolicy | default "IfNotPresent" -}}
{{- end -}}

{{/* imagePullSecrets of global and of the chart; each a name or {name: …}. */}}
{{- define "orderstream-lib.imagePullSecrets" -}}
{{- $names := list -}}
{{- range concat ((.Values.global | default dict).imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- $name := . -}}
{{- if kindIs "map" . }}{{ $name = .name }}{{ end -}}
{{- if not (has $name $names) -}}
{{- $names = append $names $name -}}
{{- end -}}
{{- end -}}
{{- with $names -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
