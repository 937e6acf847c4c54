{{/* Names and labels shared by every object of the release. */}}
{{- define "co-talk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "co-talk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "co-talk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "co-talk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "co-talk.labels" -}}
{{ include "co-talk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: voip
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "co-talk.serviceAccountName" -}}
{{- default (include "co-talk.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "co-talk.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* The workload: a Rollout (canary) or a Deployment. */}}
{{- define "co-talk.workloadRef" -}}
{{- if .Values.canary.enabled -}}
apiVersion: argoproj.io/v1alpha1
kind: Rollout
{{- else -}}
apiVersion: apps/v1
kind: Deployment
{{- end }}
name: {{ include "co-talk.fullname" . }}
{{- end -}}

{{/* Cross-field checks JSON Schema cannot express: fail the render with a clear message. */}}
{{- define "co-talk.validate" -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail (printf "autoscaling.minReplicas (%d) must be <= autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if lt (sub (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) 10 -}}
{{- fail (printf "preStopSleepSeconds (%d) must leave at least 10 s of terminationGracePeriodSeconds (%d) for Spring's graceful shutdown" (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds)) -}}
{{- end -}}
{{- if eq (int .Values.ports.http) (int .Values.ports.management) -}}
{{- fail "ports.http and ports.management must differ (Actuator stays off the traffic port)" -}}
{{- end -}}
{{- if ne .Values.resources.requests.memory .Values.resources.limits.memory -}}
{{- fail "resources.requests.memory must equal resources.limits.memory (the heap is a share of the limit; no overcommit)" -}}
{{- end -}}
{{- if and .Values.canary.enabled (not .Values.canary.prometheusAddress) -}}
{{- fail "canary.prometheusAddress: the canary analysis queries Prometheus; set it or turn canary.enabled off" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled .Values.targetGroupBinding.targetGroupArn (not .Values.networkPolicy.loadBalancerCidrs) -}}
{{- fail "networkPolicy.loadBalancerCidrs: name the ALB's subnets, or the policy blocks the bound target group" -}}
{{- end -}}
{{- end -}}

{{/* The pod template shared by the Rollout and the Deployment. */}}
{{- define "co-talk.podTemplate" -}}
metadata:
  labels:
    {{- include "co-talk.labels" . | nindent 4 }}
spec:
  serviceAccountName: {{ include "co-talk.serviceAccountName" . }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  topologySpreadConstraints:
    - topologyKey: topology.kubernetes.io/zone
      maxSkew: {{ .Values.topologySpread.zone.maxSkew }}
      whenUnsatisfiable: {{ .Values.topologySpread.zone.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "co-talk.selectorLabels" . | nindent 10 }}
      matchLabelKeys: [{{ if .Values.canary.enabled }}rollouts-pod-template-hash{{ else }}pod-template-hash{{ end }}]
    - topologyKey: kubernetes.io/hostname
      maxSkew: {{ .Values.topologySpread.node.maxSkew }}
      whenUnsatisfiable: {{ .Values.topologySpread.node.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "co-talk.selectorLabels" . | nindent 10 }}
      matchLabelKeys: [{{ if .Values.canary.enabled }}rollouts-pod-template-hash{{ else }}pod-template-hash{{ end }}]
  containers:
    - name: app
      image: {{ include "co-talk.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      ports:
        - name: http
          containerPort: {{ .Values.ports.http }}
          protocol: TCP
        - name: management
          containerPort: {{ .Values.ports.management }}
          protocol: TCP
      env:
        - name: JAVA_TOOL_OPTIONS
          value: {{ printf "-XX:MaxRAMPercentage=%d.0 -XX:InitialRAMPercentage=%d.0 -XX:+ExitOnOutOfMemoryError -Djava.io.tmpdir=/tmp" (int .Values.jvm.maxRamPercentage) (int .Values.jvm.initialRamPercentage) | quote }}
        - name: SERVER_PORT
          value: {{ .Values.ports.http | quote }}
        - name: SERVER_SHUTDOWN
          value: graceful
        # What is left of the grace period after the preStop pause, minus 5 s of margin.
        - name: SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE
          value: {{ printf "%ds" (sub (sub (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) 5) | quote }}
        - name: MANAGEMENT_SERVER_PORT
          value: {{ .Values.ports.management | quote }}
        - name: MANAGEMENT_ENDPOINTS_WEB_EXPOSURE_INCLUDE
          value: health,prometheus
        - name: MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED
          value: "true"
        - name: MANAGEMENT_METRICS_TAGS_APPLICATION
          value: {{ .Release.Name | quote }}
        {{- if .Values.tracing.zipkinEndpoint }}
        - name: MANAGEMENT_ZIPKIN_TRACING_ENDPOINT
          value: {{ .Values.tracing.zipkinEndpoint | quote }}
        - name: MANAGEMENT_TRACING_SAMPLING_PROBABILITY
          value: "1.0"
        {{- else }}
        - name: MANAGEMENT_TRACING_ENABLED
          value: "false"
        {{- end }}
        - name: SPRING_DATASOURCE_URL
          value: {{ .Values.config.datasourceUrl | quote }}
        - name: SPRING_DATASOURCE_HIKARI_MAXIMUM_POOL_SIZE
          value: {{ .Values.config.writerPoolSize | quote }}
        - name: APP_DATASOURCE_READER_URL
          value: {{ .Values.config.readerDatasourceUrl | quote }}
        - name: APP_DATASOURCE_READER_HIKARI_MAXIMUM_POOL_SIZE
          value: {{ .Values.config.readerPoolSize | quote }}
        {{- if .Values.config.datasourceSecretArn }}
        # The AWS Advanced JDBC Wrapper reads the login from this secret (rotation-safe).
        - name: SPRING_DATASOURCE_DRIVER_CLASS_NAME
          value: software.amazon.jdbc.Driver
        - name: APP_DATASOURCE_SECRET_ARN
          value: {{ .Values.config.datasourceSecretArn | quote }}
        {{- else }}
        - name: SPRING_DATASOURCE_USERNAME
          valueFrom:
            secretKeyRef:
              name: {{ .Values.existingSecret.name }}
              key: DB_USERNAME
        - name: SPRING_DATASOURCE_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ .Values.existingSecret.name }}
              key: DB_PASSWORD
        {{- end }}
        {{- range .Values.config.redisUses }}
        - name: {{ printf "REDIS_%s_URL" (. | upper | replace "-" "_") }}
          valueFrom:
            secretKeyRef:
              name: {{ $.Values.existingSecret.name }}
              key: {{ printf "REDIS_%s_URL" (. | upper | replace "-" "_") }}
        {{- end }}
        - name: SPRING_DATA_REDIS_URL
          valueFrom:
            secretKeyRef:
              name: {{ .Values.existingSecret.name }}
              key: {{ printf "REDIS_%s_URL" (first .Values.config.redisUses | upper | replace "-" "_") }}
        - name: APP_FILES_BUCKET
          value: {{ .Values.config.filesBucket | quote }}
        - name: APP_FILES_PREFIX
          value: {{ .Values.config.filesPrefix | quote }}
        - name: AWS_REGION
          value: {{ .Values.config.awsRegion | quote }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        privileged: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        capabilities:
          drop: [ALL]
        seccompProfile:
          type: RuntimeDefault
      startupProbe:
        httpGet:
          path: {{ .Values.probes.startup.path }}
          port: management
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
      livenessProbe:
        httpGet:
          path: {{ .Values.probes.liveness.path }}
          port: management
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: {{ .Values.probes.readiness.path }}
          port: management
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
      {{- if gt (int .Values.preStopSleepSeconds) 0 }}
      lifecycle:
        preStop:
          # Keep serving while the ALB deregisters the pod (no shell needed).
          sleep:
            seconds: {{ .Values.preStopSleepSeconds }}
      {{- end }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
{{- end -}}
