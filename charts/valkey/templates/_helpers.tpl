{{/* Names and labels shared by every object of the release. */}}
{{- define "valkey.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* One group's objects: valkey-<group>. */}}
{{- define "valkey.groupName" -}}
{{- printf "%s-%s" (include "valkey.name" .root) .group | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "valkey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "valkey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A group's pods: what its Service selects (the NetworkPolicy egress of clients names exactly these). */}}
{{- define "valkey.groupSelectorLabels" -}}
{{ include "valkey.selectorLabels" .root }}
app.kubernetes.io/component: {{ .group }}
{{- end -}}

{{- define "valkey.labels" -}}
{{ include "valkey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: voip
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The container's memory limit: maxmemory plus headroom for client buffers and the allocator (at least 64 MiB). */}}
{{- define "valkey.memoryLimitMib" -}}
{{- $mib := int .maxmemoryMib -}}
{{- add $mib (max 64 (div $mib 2)) -}}
{{- end -}}
