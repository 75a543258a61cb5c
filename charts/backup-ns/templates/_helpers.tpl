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

{{/* Image and security context of every backup-ns container. */}}
{{- define "backup-ns.containerImage" -}}
image: {{ include "backup-ns.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}

{{/* Container fields shared by every backup-ns container but verify (its own resources). */}}
{{- define "backup-ns.containerCommon" -}}
{{ include "backup-ns.containerImage" . }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
{{- end }}

{{/*
The database settings of a backup (engine, exec target, dump file, connection, password), for
every container that works on that backup's database: its backup CronJob and its verify
CronJob. Arguments: .root, .b (the backup).
*/}}
{{- define "backup-ns.databaseEnv" -}}
{{- $b := .b }}
{{- $prefix := ternary "BAK_DB_POSTGRES" "BAK_DB_MYSQL" (eq $b.db "postgres") }}
{{- with $b.dumpTimeout }}
- name: BAK_DB_DUMP_TIMEOUT
  value: {{ . | quote }}
{{- end }}
{{- if eq $b.db "skip" }}
- name: BAK_DB_SKIP
  value: "true"
{{- else }}
- name: {{ $prefix }}
  value: "true"
{{- with $b.execResource }}
- name: {{ $prefix }}_EXEC_RESOURCE
  value: {{ . | quote }}
{{- end }}
{{- with $b.container }}
- name: {{ $prefix }}_EXEC_CONTAINER
  value: {{ . | quote }}
{{- end }}
{{- with $b.dumpFile }}
- name: {{ $prefix }}_DUMP_FILE
  value: {{ . | quote }}
{{- end }}
{{- with $b.host }}
- name: {{ $prefix }}_HOST
  value: {{ . | quote }}
{{- end }}
{{- with $b.port }}
- name: {{ $prefix }}_PORT
  value: {{ . | toString | quote }}
{{- end }}
{{- with $b.user }}
- name: {{ $prefix }}_USER
  value: {{ . | quote }}
{{- end }}
{{- with $b.database }}
- name: {{ $prefix }}_DB
  value: {{ . | quote }}
{{- end }}
{{- with $b.defaultCharacterSet }}
- name: BAK_DB_MYSQL_DEFAULT_CHARACTER_SET
  value: {{ . | quote }}
{{- end }}
{{- if $b.passwordSecret }}
- name: {{ $prefix }}_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $b.passwordSecret.name | quote }}
      key: {{ $b.passwordSecret.key | quote }}
{{- else if $b.password }}
- name: {{ $prefix }}_PASSWORD
  value: {{ $b.password | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when this backup gets a verify CronJob: its own verify.enabled if it sets one (opt-out,
or opt-in with verify.enabled off), else the release's verify.enabled. Arguments: .root, .b.
*/}}
{{- define "backup-ns.verifyEnabled" -}}
{{- $bv := default dict .b.verify }}
{{- if hasKey $bv "enabled" }}
{{- ternary "true" "" (eq (toString $bv.enabled) "true") }}
{{- else }}
{{- ternary "true" "" (eq (toString .root.Values.verify.enabled) "true") }}
{{- end }}
{{- end }}

{{/* "true" when any backup of the release gets a verify CronJob. */}}
{{- define "backup-ns.anyVerify" -}}
{{- $root := . }}
{{- $any := "" }}
{{- range .Values.backups }}
{{- if include "backup-ns.verifyEnabled" (dict "root" $root "b" .) }}
{{- $any = "true" }}
{{- end }}
{{- end }}
{{- $any }}
{{- end }}

{{/* The ServiceAccount of the verify CronJobs: their own, so the backups never get its rights. */}}
{{- define "backup-ns.verifyServiceAccountName" -}}
{{- if .Values.verify.serviceAccountName }}
{{- .Values.verify.serviceAccountName }}
{{- else if .Values.serviceAccount.create }}
{{- printf "%s-verify" (include "backup-ns.fullname" .) }}
{{- else }}
{{- fail "verify.serviceAccountName is required when serviceAccount.create is false" }}
{{- end }}
{{- end }}

{{/*
activeDeadlineSeconds of a verify Job: its timeout (BAK_VERIFY_TIMEOUT, from verify.timeout or
the backup's env) plus job.deadlineMarginSeconds, so backup-ns's own timeout fires first, removes
its scratch PVC and pod and labels the snapshot verify-failed, rather than the Job being killed
with them left behind. verify.activeDeadlineSeconds set: used as is, and rendering fails unless
it exceeds the timeout. Arguments: .root, .b, .index.
*/}}
{{- define "backup-ns.verifyDeadline" -}}
{{- $where := printf "backups[%d] (%s)" .index .b.name }}
{{- $v := include "backup-ns.effectiveSetting" (dict "root" .root "b" .b "name" "BAK_VERIFY_TIMEOUT" "field" "" "default" .root.Values.verify.timeout) }}
{{- $s := include "backup-ns.durationSeconds" (dict "value" $v "what" (printf "%s: verify timeout (verify.timeout / BAK_VERIFY_TIMEOUT)" $where)) | int }}
{{- with .root.Values.verify.activeDeadlineSeconds }}
{{- if le (int .) $s }}
{{- fail (printf "%s: verify.activeDeadlineSeconds=%d does not exceed the verify timeout (%ds): the Job would be killed before backup-ns cleans up. Raise it, lower verify.timeout, or leave verify.activeDeadlineSeconds empty to derive it" $where (int .) $s) }}
{{- end }}
{{- int . }}
{{- else }}
{{- add $s (.root.Values.job.deadlineMarginSeconds | int) }}
{{- end }}
{{- end }}

{{/*
Rules of the snapshot workbench that `restore dump`, `download SNAPSHOT` and `verify` share: a
temporary PVC from the snapshot and a helper pod that mounts it, exec into the helper, and the
database's workload read to find its pod and image. .verbs: the volumesnapshots verbs.
*/}}
{{- define "backup-ns.workbenchRules" -}}
# The snapshot by name; list: `latest` and --before choose among the PVC's snapshots.
- apiGroups: [snapshot.storage.k8s.io]
  resources: [volumesnapshots]
  verbs: {{ toJson .verbs }}
# get: the snapshotted PVC is the template (class, access modes, size), a target must not
# exist; create/delete: the temporary PVC; list: leftovers of a killed run, by label.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, create, delete]
# The helper pod (create/delete; get: Running and Ready; list: leftovers of a killed run) and the
# database pod (get/list: its image and uid).
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, create, delete]
# Exec into the helper (and, for restore dump, into the database pod). The WebSocket upgrade is
# a GET: clusters before 1.31 authorize it as get, newer ones as create.
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [get, create]
# The exec resource's selector, read by name, as for create.
- apiGroups: [apps]
  resources: [deployments, statefulsets, replicasets, daemonsets]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get]
- apiGroups: [""]
  resources: [replicationcontrollers, services]
  verbs: [get]
# A PVC or pod that does not come up: the last events about it go into the error.
- apiGroups: [""]
  resources: [events]
  verbs: [list]
{{- end }}

{{/* TZ and the log format, for every container. */}}
{{- define "backup-ns.baseEnv" -}}
- name: TZ
  value: {{ .Values.timeZone | quote }}
- name: BAK_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}

{{/*
Seconds in a Go duration ("15m", "1h30m", "90s"), the format backup-ns reads. Sprig has no
duration parser, but dateModify adds one to a date (and leaves the date as it is when the text
is not a duration), so the difference of two Unix times is the length. Fails rendering, naming
the setting, on anything that is not a positive duration: the binary would reject it (exit 2).
Arguments: .value, .what (where the value came from, for the message).
*/}}
{{- define "backup-ns.durationSeconds" -}}
{{- $text := .value | toString | trim }}
{{- $t0 := toDate "2006-01-02" "2000-01-01" }}
{{- $secs := sub (dateModify $text $t0 | unixEpoch) ($t0 | unixEpoch) }}
{{- if le $secs 0 }}
{{- fail (printf "%s: %q is not a duration backup-ns accepts (a positive number with a unit: 90s, 15m, 3h, 1h30m)" .what $text) }}
{{- end }}
{{- $secs }}
{{- end }}

{{/*
The value a backup's container sees for a BAK_* setting: its own env entry wins, then the
field of the backup that sets it (.field), then the release's config, then .default (the
binary's default). Arguments: .root, .b (the backup), .name, .field, .default.
*/}}
{{- define "backup-ns.effectiveSetting" -}}
{{- $env := default dict .b.env }}
{{- if hasKey $env .name }}
{{- index $env .name | toString }}
{{- else if and .field (hasKey .b .field) }}
{{- index .b .field | toString }}
{{- else if hasKey .root.Values.config .name }}
{{- index .root.Values.config .name | toString }}
{{- else }}
{{- .default }}
{{- end }}
{{- end }}

{{/*
activeDeadlineSeconds of a backup Job: longer than the longest a `create` may legitimately take,
so the binary's own timeouts fire first and say what went wrong, instead of the Job being killed
mid-dump ("DeadlineExceeded") with the snapshot never taken. The sum is the per-PVC Lease wait
(BAK_LEASE_WAIT_TIMEOUT, only with BAK_LEASE_WAIT), the node lock wait (flock.timeoutSec), the
dump (BAK_DB_DUMP_TIMEOUT, not for db: skip), the wait for readyToUse
(BAK_VS_WAIT_UNTIL_READY_TIMEOUT, unless BAK_VS_WAIT_UNTIL_READY is false) and
job.deadlineMarginSeconds for scheduling, the image pull, the checks and the API calls.
job.activeDeadlineSeconds empty: that sum; set: used as is, and rendering fails unless it is
larger. Arguments: .root, .b (the backup), .index (its position in backups).
*/}}
{{- define "backup-ns.backupDeadline" -}}
{{- $root := .root }}
{{- $b := .b }}
{{- $where := printf "backups[%d] (%s)" .index $b.name }}
{{- $yes := list "1" "t" "T" "true" "TRUE" "True" }}
{{- $no := list "0" "f" "F" "false" "FALSE" "False" }}
{{- $parts := list }}
{{- $sum := 0 }}
{{- $leaseWait := include "backup-ns.effectiveSetting" (dict "root" $root "b" $b "name" "BAK_LEASE_WAIT" "field" "" "default" "false") }}
{{- if has $leaseWait $yes }}
{{- $v := include "backup-ns.effectiveSetting" (dict "root" $root "b" $b "name" "BAK_LEASE_WAIT_TIMEOUT" "field" "" "default" "1h") }}
{{- $s := include "backup-ns.durationSeconds" (dict "value" $v "what" (printf "%s: BAK_LEASE_WAIT_TIMEOUT" $where)) | int }}
{{- $parts = append $parts (printf "lease wait %ds" $s) }}
{{- $sum = add $sum $s }}
{{- end }}
{{- if $root.Values.flock.enabled }}
{{- $s := $root.Values.flock.timeoutSec | int }}
{{- $parts = append $parts (printf "node lock wait %ds" $s) }}
{{- $sum = add $sum $s }}
{{- end }}
{{- if ne $b.db "skip" }}
{{- $v := include "backup-ns.effectiveSetting" (dict "root" $root "b" $b "name" "BAK_DB_DUMP_TIMEOUT" "field" "dumpTimeout" "default" "3h") }}
{{- $s := include "backup-ns.durationSeconds" (dict "value" $v "what" (printf "%s: dump timeout (dumpTimeout / BAK_DB_DUMP_TIMEOUT)" $where)) | int }}
{{- $parts = append $parts (printf "dump %ds" $s) }}
{{- $sum = add $sum $s }}
{{- end }}
{{- $wait := include "backup-ns.effectiveSetting" (dict "root" $root "b" $b "name" "BAK_VS_WAIT_UNTIL_READY" "field" "" "default" "true") }}
{{- if not (has $wait $no) }}
{{- $v := include "backup-ns.effectiveSetting" (dict "root" $root "b" $b "name" "BAK_VS_WAIT_UNTIL_READY_TIMEOUT" "field" "" "default" "15m") }}
{{- $s := include "backup-ns.durationSeconds" (dict "value" $v "what" (printf "%s: BAK_VS_WAIT_UNTIL_READY_TIMEOUT" $where)) | int }}
{{- $parts = append $parts (printf "snapshot wait %ds" $s) }}
{{- $sum = add $sum $s }}
{{- end }}
{{- $margin := $root.Values.job.deadlineMarginSeconds | int }}
{{- with $root.Values.job.activeDeadlineSeconds }}
{{- if le (int .) $sum }}
{{- fail (printf "%s: job.activeDeadlineSeconds=%d does not exceed the longest this backup may take (%s = %ds): the Job would be killed before backup-ns's own timeouts fire. Raise it, lower those timeouts, or leave job.activeDeadlineSeconds empty to derive it" $where (int .) (join " + " $parts) $sum) }}
{{- end }}
{{- int . }}
{{- else }}
{{- max 1 (add $sum $margin) }}
{{- end }}
{{- end }}

{{/*
The Job's podFailurePolicy (needs restartPolicy: Never, which every pod here has). Exit codes in
.codes fail the Job at once: 2 is a bad setting and 4 another run holding this PVC's Lease, which
no retry fixes; retrying them only repeats the error and delays the alert. A pod evicted by a
node drain or preemption (condition DisruptionTarget) is retried without using up backoffLimit.
Arguments: .codes, .container (empty: every container of the pod).
*/}}
{{- define "backup-ns.podFailurePolicy" -}}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        {{- with .container }}
        containerName: {{ . }}
        {{- end }}
        operator: In
        values: {{ toJson .codes }}
    # status defaults to "True", but older servers' OpenAPI marks it required (helm validates).
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
{{- end }}

{{/*
Metrics sinks (README "Monitoring"): the env of a container that writes metrics. .root, .file
(the textfile's name in the mounted directory, one per CronJob so that no two runs write the
same series).
*/}}
{{- define "backup-ns.metricsEnv" -}}
{{- $m := .root.Values.metrics }}
{{- if $m.pushgatewaySecret.name }}
- name: BAK_METRICS_PUSHGATEWAY
  valueFrom:
    secretKeyRef:
      name: {{ $m.pushgatewaySecret.name | quote }}
      key: {{ $m.pushgatewaySecret.key | quote }}
{{- else if $m.pushgateway }}
- name: BAK_METRICS_PUSHGATEWAY
  value: {{ $m.pushgateway | quote }}
{{- end }}
{{- if $m.textfile.enabled }}
- name: BAK_METRICS_TEXTFILE
  value: {{ printf "/mnt/metrics-textfile/%s" .file | quote }}
{{- end }}
{{- end }}

{{/*
Notification settings of a backup container (README "Notifications"): the URLs only from
Secrets, so no token lands in a ConfigMap or the rendered manifest.
*/}}
{{- define "backup-ns.notifyEnv" -}}
{{- $n := .Values.notify }}
{{- if $n.urlSecret.name }}
- name: BAK_NOTIFY_URL
  valueFrom:
    secretKeyRef:
      name: {{ $n.urlSecret.name | quote }}
      key: {{ $n.urlSecret.key | quote }}
- name: BAK_NOTIFY_ON
  value: {{ $n.when | quote }}
- name: BAK_NOTIFY_FORMAT
  value: {{ $n.format | quote }}
{{- end }}
{{- if $n.healthcheckSecret.name }}
- name: BAK_HEALTHCHECK_URL
  valueFrom:
    secretKeyRef:
      name: {{ $n.healthcheckSecret.name | quote }}
      key: {{ $n.healthcheckSecret.key | quote }}
{{- end }}
{{- end }}

{{/* The textfile directory's mount, when enabled. */}}
{{- define "backup-ns.metricsMount" -}}
{{- if .Values.metrics.textfile.enabled }}
- name: metrics-textfile
  mountPath: /mnt/metrics-textfile
{{- end }}
{{- end }}

{{/* The textfile directory's hostPath volume, when enabled. */}}
{{- define "backup-ns.metricsVolume" -}}
{{- if .Values.metrics.textfile.enabled }}
- name: metrics-textfile
  hostPath:
    path: {{ .Values.metrics.textfile.hostPath }}
    type: DirectoryOrCreate
{{- end }}
{{- end }}

{{/*
chmod 1777 of the textfile directory, as the lock-dir init container does for the lock
directory (same image, resources and confinement: root with FOWNER only), so the non-root
container can create its file in a directory the kubelet created root-owned 0755.
*/}}
{{- define "backup-ns.metricsInitContainer" -}}
{{- if and .Values.metrics.textfile.enabled .Values.metrics.textfile.initContainer }}
{{- $ic := .Values.flock.initContainer }}
- name: metrics-dir
  image: {{ $ic.image }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: [chmod, "1777", /mnt/metrics-textfile]
  securityContext:
    runAsUser: 0
    runAsGroup: 0
    runAsNonRoot: false
    privileged: false
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: [ALL]
      add: [FOWNER]
  {{- with $ic.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: metrics-textfile
      mountPath: /mnt/metrics-textfile
{{- end }}
{{- end }}
