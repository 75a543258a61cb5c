{{- define "backup-ns.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-wide name prefix; CronJob names add "-<backup>" and must stay within 52. */}}
{{- define "backup-ns.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "backup-ns.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "backup-ns.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "backup-ns.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backup-ns.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backup-ns.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "backup-ns.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "backup-ns.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backup-ns.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "backup-ns.prunerName" -}}
{{- printf "%s-pruner" (include "backup-ns.fullname" .) }}
{{- end }}

{{- define "backup-ns.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Pod-level fields shared by every CronJob's pod (not the containers). */}}
{{- define "backup-ns.podCommon" -}}
restartPolicy: Never
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod metadata shared by every CronJob's pod; "component" is passed as .component. */}}
{{- define "backup-ns.podMetadata" -}}
{{- with .root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
labels:
  {{- include "backup-ns.labels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Container fields shared by every backup-ns container. */}}
{{- define "backup-ns.containerCommon" -}}
image: {{ include "backup-ns.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
{{- end }}

{{/* TZ and the log format, for every container. */}}
{{- define "backup-ns.baseEnv" -}}
- name: TZ
  value: {{ .Values.timeZone | quote }}
- name: BAK_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}
