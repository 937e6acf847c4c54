{{/* Names and labels shared by every object of the release. */}}
{{- define "signaling.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "signaling.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "signaling.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signaling.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "signaling.labels" -}}
{{ include "signaling.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: signaling
app.kubernetes.io/part-of: voip
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "signaling.serviceAccountName" -}}
{{- default (include "signaling.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "signaling.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* Cross-field checks JSON Schema cannot express: fail the render with a clear message. */}}
{{- define "signaling.validate" -}}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) -}}
{{- fail (printf "autoscaling.minReplicas (%d) must be <= autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if ge (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds) -}}
{{- fail (printf "preStopSleepSeconds (%d) must be below terminationGracePeriodSeconds (%d): the server needs time to drain after the pause" (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds)) -}}
{{- end -}}
{{- if eq (int .Values.ports.websocket) (int .Values.ports.metrics) -}}
{{- fail "ports.websocket and ports.metrics must differ" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (or .Values.targetGroupBindings.alb.targetGroupArn .Values.targetGroupBindings.nlb.targetGroupArn) (not .Values.networkPolicy.loadBalancerCidrs) -}}
{{- fail "networkPolicy.loadBalancerCidrs: name the load balancers' subnets, or the policy blocks the bound target groups" -}}
{{- end -}}
{{- end -}}
