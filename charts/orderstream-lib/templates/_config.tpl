{{/*
Configuration. A service reads one YAML file (--config) whose keys are its
configuration keys (`<service> --help` lists them); `config` in the values
mirrors that file. Three things are added here:

  - global.config: settings shared by every chart of the umbrella release
    (database and broker addresses, the keyspace). A global section reaches
    only the charts whose `config` has that section, because a service
    refuses unknown keys; where both set a key, global wins (as global.*
    does in every chart).
  - the listen addresses, from `ports`, so that a port is set in one place.
  - secretEnv: keys whose values come from Secrets, as environment
    variables (ORDERSTREAM_ + the key in upper case, dots as underscores),
    which the service reads over the file. No credential sits in the
    ConfigMap.
*/}}

{{/* The config sections the chart's service reads: the keys of its `config`. */}}
{{- define "orderstream-lib.configSections" -}}
{{- keys (.Values.config | default dict) | sortAlpha | toJson -}}
{{- end -}}

{{/* The effective config file, as YAML. */}}
{{- define "orderstream-lib.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $global := deepCopy ((.Values.global | default dict).config | default dict) -}}
{{- range $section, $value := $global -}}
{{- if hasKey $cfg $section -}}
{{- $own := get $cfg $section -}}
{{- if and (kindIs "map" $own) (kindIs "map" $value) -}}
{{- $_ := set $cfg $section (mergeOverwrite $own $value) -}}
{{- else -}}
{{- $_ := set $cfg $section $value -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $ports := .Values.ports | default dict -}}
{{- if $ports.admin -}}
{{- $_ := set $cfg "admin" (mergeOverwrite (get $cfg "admin" | default dict) (dict "addr" (printf ":%d" (int $ports.admin)))) -}}
{{- end -}}
{{- if $ports.api -}}
{{- $_ := set $cfg "http" (mergeOverwrite (get $cfg "http" | default dict) (dict "addr" (printf ":%d" (int $ports.api)))) -}}
{{- end -}}
{{- range $section, $value := $cfg -}}
{{- if and (kindIs "map" $value) (empty $value) -}}
{{- $_ := unset $cfg $section -}}
{{- else if kindIs "invalid" $value -}}
{{- $_ := unset $cfg $section -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The effective secretEnv: the chart's entries and global's, for the sections the service reads. */}}
{{- define "orderstream-lib.secretEnvEntries" -}}
{{- $sections := include "orderstream-lib.configSections" . | fromJsonArray -}}
{{- $entries := dict -}}
{{- range $key, $ref := (.Values.secretEnv | default dict) -}}
{{- if $ref -}}
{{- $_ := set $entries $key $ref -}}
{{- end -}}
{{- end -}}
{{- range $key, $ref := ((.Values.global | default dict).secretEnv | default dict) -}}
{{- if and $ref (has (first (splitList "." $key)) $sections) -}}
{{- if not $ref.name -}}
{{- fail (printf "global.secretEnv.%s: name the Secret (a chart-generated value cannot be shared between charts)" $key) -}}
{{- end -}}
{{- $_ := set $entries $key $ref -}}
{{- end -}}
{{- end -}}
{{- toJson $entries -}}
{{- end -}}

{{/* The environment variable that sets a config key. */}}
{{- define "orderstream-lib.envName" -}}
{{- printf "ORDERSTREAM_%s" (. | upper | replace "." "_") -}}
{{- end -}}

{{/* The chart's own Secret: for secretEnv entries that name no Secret. */}}
{{- define "orderstream-lib.secretName" -}}
{{- include "orderstream-lib.fullname" . -}}
{{- end -}}

{{/*
The effective secretMounts: the chart's and global's (global wins on a
name). An entry with `section` is mounted only where the service reads
that config section.
*/}}
{{- define "orderstream-lib.secretMountEntries" -}}
{{- $sections := include "orderstream-lib.configSections" . | fromJsonArray -}}
{{- $entries := dict -}}
{{- range $name, $m := mergeOverwrite (deepCopy (.Values.secretMounts | default dict)) (deepCopy ((.Values.global | default dict).secretMounts | default dict)) -}}
{{- if and $m (or (not $m.section) (has $m.section $sections)) -}}
{{- $_ := set $entries $name $m -}}
{{- end -}}
{{- end -}}
{{- toJson $entries -}}
{{- end -}}
