{{/*
The objects of one service: ConfigMap (the config file), Secret (generated
secretEnv values), ServiceAccount, Deployment, Service, PodDisruptionBudget,
HorizontalPodAutoscaler, ServiceMonitor and NetworkPolicy. A service chart's
only template is

  {{ include "orderstream-lib.service" . }}
*/}}
{{- define "orderstream-lib.service" -}}
{{- $docs := list
  (include "orderstream-lib.configMap" .)
  (include "orderstream-lib.secret" .)
  (include "orderstream-lib.serviceAccount" .)
  (include "orderstream-lib.deployment" .)
  (include "orderstream-lib.svc" .)
  (include "orderstream-lib.podDisruptionBudget" .)
  (include "orderstream-lib.horizontalPodAutoscaler" .)
  (include "orderstream-lib.serviceMonitor" .)
  (include "orderstream-lib.networkPolicy" .)
-}}
{{- range $docs }}
{{- if trim . }}
---
{{ trim . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "orderstream-lib.metadata" -}}
name: {{ include "orderstream-lib.fullname" . }}
namespace: {{ include "orderstream-lib.namespace" . }}
labels:
  {{- include "orderstream-lib.labels" . | nindent 2 }}
{{- end -}}

{{- define "orderstream-lib.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
data:
  config.yaml: |
    {{- include "orderstream-lib.config" . | nindent 4 }}
{{- end -}}

{{/*
The chart's own Secret, for secretEnv entries that name no Secret: each
holds `value`, or a random value made at install and kept on upgrade (read
back with lookup). The annotation lists the generated keys.
*/}}
{{- define "orderstream-lib.secret" -}}
{{- $name := include "orderstream-lib.secretName" . -}}
{{- $existing := (lookup "v1" "Secret" (include "orderstream-lib.namespace" .) $name).data | default dict -}}
{{- $data := dict -}}
{{- $generated := list -}}
{{- range $key, $ref := (.Values.secretEnv | default dict) -}}
{{- if and $ref (not $ref.name) -}}
{{- $value := $ref.value | default "" -}}
{{- if not $value -}}
{{- $value = get $existing $ref.key | default "" | b64dec -}}
{{- end -}}
{{- if not $value -}}
{{- $value = randAlphaNum (int ($ref.length | default 48)) -}}
{{- $generated = append $generated $ref.key -}}
{{- end -}}
{{- $_ := set $data $ref.key ($value | b64enc) -}}
{{- end -}}
{{- end -}}
{{- if $data }}
apiVersion: v1
kind: Secret
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
  {{- with $generated }}
  annotations:
    orderstream.io/generated-keys: {{ sortAlpha . | join "," | quote }}
  {{- end }}
type: Opaque
data:
  {{- toYaml $data | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "orderstream-lib.serviceAccount" -}}
{{- $sa := .Values.serviceAccount | default dict -}}
{{- if $sa.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "orderstream-lib.serviceAccountName" . }}
  namespace: {{ include "orderstream-lib.namespace" . }}
  labels:
    {{- include "orderstream-lib.labels" . | nindent 4 }}
  {{- with $sa.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/* The service container: image, args, ports, probes on the admin port, resources. */}}
{{- define "orderstream-lib.container" -}}
{{- $ports := .Values.ports | default dict -}}
name: {{ .Chart.Name }}
image: {{ include "orderstream-lib.image" . }}
imagePullPolicy: {{ include "orderstream-lib.imagePullPolicy" . }}
args:
  - {{ include "orderstream-lib.configArg" . }}
  {{- with .Values.extraArgs }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
ports:
  {{- if $ports.api }}
  - name: http
    containerPort: {{ int $ports.api }}
    protocol: TCP
  {{- end }}
  - name: admin
    containerPort: {{ int (required "ports.admin is required" $ports.admin) }}
    protocol: TCP
{{- with include "orderstream-lib.env" . | trim }}
{{ . }}
{{- end }}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  {{- toYaml .Values.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  {{- toYaml .Values.readinessProbe | nindent 2 }}
{{- with .Values.startupProbe }}
startupProbe:
  httpGet:
    path: /healthz
    port: admin
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.preStopSleepSeconds }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ int .Values.preStopSleepSeconds }}
{{- end }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with include "orderstream-lib.containerSecurityContext" . }}
{{ . }}
{{- end }}
{{ include "orderstream-lib.volumeMounts" . }}
{{- end -}}

{{- define "orderstream-lib.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
  {{- with .Values.deploymentAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- if not (.Values.autoscaling | default dict).enabled }}
  replicas: {{ int .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ int (.Values.revisionHistoryLimit | default 5) }}
  {{- with .Values.updateStrategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "orderstream-lib.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "orderstream-lib.podLabels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include "orderstream-lib.config" . | sha256sum }}
        {{- with .Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "orderstream-lib.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with include "orderstream-lib.imagePullSecrets" . }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- with include "orderstream-lib.podSecurityContext" . }}
      {{- . | nindent 6 }}
      {{- end }}
      terminationGracePeriodSeconds: {{ int (.Values.terminationGracePeriodSeconds | default 30) }}
      {{- with include "orderstream-lib.scheduling" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - {{ include "orderstream-lib.container" . | nindent 10 | trim }}
      {{- include "orderstream-lib.volumes" . | nindent 6 }}
{{- end -}}

{{/* The Service: the API port (if any) and the admin port, which the ServiceMonitor scrapes. */}}
{{- define "orderstream-lib.svc" -}}
{{- $ports := .Values.ports | default dict -}}
{{- $svc := .Values.service | default dict -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
  {{- with $svc.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $svc.type | default "ClusterIP" }}
  selector:
    {{- include "orderstream-lib.selectorLabels" . | nindent 4 }}
  ports:
    {{- if $ports.api }}
    - name: http
      port: {{ int $ports.api }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- end }}
    - name: admin
      port: {{ int $ports.admin }}
      targetPort: admin
      protocol: TCP
      appProtocol: http
{{- end -}}

{{- define "orderstream-lib.podDisruptionBudget" -}}
{{- $pdb := .Values.podDisruptionBudget | default dict -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
spec:
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  unhealthyPodEvictionPolicy: {{ $pdb.unhealthyPodEvictionPolicy | default "AlwaysAllow" }}
  selector:
    matchLabels:
      {{- include "orderstream-lib.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "orderstream-lib.horizontalPodAutoscaler" -}}
{{- $hpa := .Values.autoscaling | default dict -}}
{{- if $hpa.enabled }}
{{- if and $hpa.maxPartitions (gt (int $hpa.maxReplicas) (int $hpa.maxPartitions)) }}
{{- fail (printf "autoscaling.maxReplicas (%d) exceeds autoscaling.maxPartitions (%d): a consumer group has at most one active member per partition" (int $hpa.maxReplicas) (int $hpa.maxPartitions)) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "orderstream-lib.fullname" . }}
  minReplicas: {{ int $hpa.minReplicas }}
  maxReplicas: {{ int $hpa.maxReplicas }}
  metrics:
    {{- with $hpa.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int . }}
    {{- end }}
    {{- with $hpa.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ int . }}
    {{- end }}
  {{- with $hpa.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
The ServiceMonitor scrapes /metrics on the admin port. Its job label is the
service's name (command-service, …), as on a developer's machine.
global.serviceMonitor wins over the chart's serviceMonitor.
*/}}
{{- define "orderstream-lib.serviceMonitor" -}}
{{- $sm := mergeOverwrite (deepCopy (.Values.serviceMonitor | default dict)) (deepCopy ((.Values.global | default dict).serviceMonitor | default dict)) -}}
{{- if $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "orderstream-lib.fullname" . }}
  namespace: {{ $sm.namespace | default (include "orderstream-lib.namespace" .) }}
  labels:
    {{- include "orderstream-lib.labels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/name
  namespaceSelector:
    matchNames:
      - {{ include "orderstream-lib.namespace" . }}
  selector:
    matchLabels:
      {{- include "orderstream-lib.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: admin
      path: /metrics
      scheme: http
      {{- with $sm.interval }}
      interval: {{ . }}
      {{- end }}
      {{- with $sm.scrapeTimeout }}
      scrapeTimeout: {{ . }}
      {{- end }}
      {{- with $sm.relabelings }}
      relabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $sm.metricRelabelings }}
      metricRelabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end -}}

{{/*
The NetworkPolicy: the API port from the gateway's or ingress controller's
pods (apiFrom), the admin port from Prometheus (adminFrom); out, DNS and the
ports of the database, the broker and the trace collector, taken from the
config (cql.port and host:port of cql.hosts, kafka.brokers,
tracing.endpoint), with ScyllaDB's shard-aware CQL port. An empty apiFrom or
adminFrom admits every source on that port. global.networkPolicy wins over
the chart's networkPolicy.
*/}}
{{- define "orderstream-lib.networkPolicy" -}}
{{- $np := mergeOverwrite (deepCopy (.Values.networkPolicy | default dict)) (deepCopy ((.Values.global | default dict).networkPolicy | default dict)) -}}
{{- if $np.enabled }}
{{- $ports := .Values.ports | default dict -}}
{{- $cfg := include "orderstream-lib.config" . | fromYaml -}}
{{- $egress := list -}}
{{- with $cfg.cql -}}
{{- $egress = append $egress (int (.port | default 9042)) -}}
{{- with $np.cqlShardAwarePort }}{{ $egress = append $egress (int .) }}{{ end -}}
{{- range .hosts | default list -}}
{{- with regexFind ":[0-9]+$" . }}{{ $egress = append $egress (int (trimPrefix ":" .)) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- with $cfg.kafka -}}
{{- range .brokers | default list -}}
{{- with regexFind ":[0-9]+$" . }}{{ $egress = append $egress (int (trimPrefix ":" .)) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- with ($cfg.tracing | default dict).endpoint -}}
{{- with regexFind ":[0-9]+$" . }}{{ $egress = append $egress (int (trimPrefix ":" .)) }}{{ end -}}
{{- end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "orderstream-lib.metadata" . | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "orderstream-lib.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    {{- if $ports.api }}
    - ports:
        - port: http
          protocol: TCP
      {{- with $np.apiFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    - ports:
        - port: admin
          protocol: TCP
      {{- with $np.adminFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- with $np.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- $sorted := list }}
    {{- range $egress | uniq }}{{ $sorted = append $sorted (printf "%05d" .) }}{{ end }}
    {{- with $sorted | sortAlpha }}
    - ports:
        {{- range . }}
        - port: {{ atoi . }}
          protocol: TCP
        {{- end }}
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}
