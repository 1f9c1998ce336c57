{{/*
A backend of the routes: the Service of one of the subcharts and its API
port, checked to be installed.
  include "orderstream.backend" (dict "chart" "query-service" "ctx" $)
*/}}
{{- define "orderstream.backend" -}}
{{- $values := index .ctx.Values .chart -}}
{{- if not $values.enabled -}}
{{- fail (printf "routing.mode %s routes to %s, which is disabled (%s.enabled=false)" .ctx.Values.routing.mode .chart .chart) -}}
{{- end -}}
name: {{ include "orderstream-lib.fullnameOf" (dict "chart" .chart "values" $values "release" .ctx.Release) }}
port: {{ int (required (printf "%s.ports.api is required" .chart) $values.ports.api) }}
{{- end -}}

{{/* The routes' name. */}}
{{- define "orderstream.routeName" -}}
{{- printf "%s-api" (include "orderstream-lib.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The path prefixes of the aggregates, which commands and queries share. */}}
{{- define "orderstream.aggregatePaths" -}}
["/v1/orders", "/v1/customers"]
{{- end -}}

{{/* The hook annotations of externalServices' Services and EndpointSlices:
before the schema migrator's hooks (weights -10 and 0). */}}
{{- define "orderstream.externalServiceHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-20"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
