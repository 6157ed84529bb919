{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sscsi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Base name of every object. The release name alone when it already says
"secrets-store", else "<release>-secrets-store-csi". Kept short enough that
"<fullname>-provider-azure" still fits in 63 characters.
*/}}
{{- define "sscsi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" -}}
{{- else if contains "secrets-store" .Release.Name -}}
{{- .Release.Name | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-secrets-store-csi" .Release.Name | trunc 47 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sscsi.providerName" -}}
{{- printf "%s-provider-azure" (include "sscsi.fullname" .) -}}
{{- end -}}

{{- define "sscsi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "sscsi.labels" -}}
app.kubernetes.io/name: {{ include "sscsi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secrets-store-csi-driver
helm.sh/chart: {{ include "sscsi.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector of the driver pods (immutable once installed). */}}
{{- define "sscsi.driverSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sscsi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: driver
{{- end -}}

{{/* Selector of the provider pods (immutable once installed). */}}
{{- define "sscsi.providerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sscsi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: provider-azure
{{- end -}}

{{/*
Image reference from {repository, tag, digest}: repository@digest when a
digest is given, else repository:tag, the tag defaulting to "v<appVersion>".
Call with (dict "image" .Values.x.image "root" $).
*/}}
{{- define "sscsi.image" -}}
{{- $image := .image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default (printf "v%s" .root.Chart.AppVersion) $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* LOG_LEVEL of both programs: logLevel, else derived from logVerbosity. */}}
{{- define "sscsi.logLevel" -}}
{{- if .Values.logLevel -}}
{{- .Values.logLevel -}}
{{- else if ge (int .Values.logVerbosity) 6 -}}
trace
{{- else if ge (int .Values.logVerbosity) 4 -}}
debug
{{- else -}}
info
{{- end -}}
{{- end -}}

{{/* Where the driver registers its socket, on the node. */}}
{{- define "sscsi.pluginDir" -}}
{{- printf "%s/plugins/csi-secrets-store" (trimSuffix "/" .Values.linux.kubeletRootDir) -}}
{{- end -}}

{{/* The additional provider directories, without providersDir itself and without repeats. */}}
{{- define "sscsi.additionalProvidersDirs" -}}
{{- $seen := list .Values.linux.providersDir -}}
{{- $dirs := list -}}
{{- range .Values.linux.additionalProvidersDirs -}}
{{- if not (has . $seen) -}}
{{- $seen = append $seen . -}}
{{- $dirs = append $dirs . -}}
{{- end -}}
{{- end -}}
{{- toJson $dirs -}}
{{- end -}}

{{/* The port of a Go listen address such as ":8095" or "0.0.0.0:8095". */}}
{{- define "sscsi.portOf" -}}
{{- $parts := splitList ":" (toString .) -}}
{{- last $parts -}}
{{- end -}}

{{/*
The SecretSync controller's ServiceAccount and Deployment, named as upstream's
chart names them (its admission policies and users' bindings name them).
*/}}
{{- define "sscsi.syncControllerName" -}}
secrets-store-sync-controller-manager
{{- end -}}

{{/* Selector of the SecretSync controller's pods (immutable once installed). */}}
{{- define "sscsi.syncControllerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "sscsi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: sync-controller
{{- end -}}

{{/* The username the API server sees for the SecretSync controller. */}}
{{- define "sscsi.syncControllerUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "sscsi.syncControllerName" .) -}}
{{- end -}}

{{/* The token audiences of the SecretSync controller, as a list. */}}
{{- define "sscsi.syncControllerAudiences" -}}
{{- $audiences := list -}}
{{- range .Values.syncController.tokenRequestAudience -}}
{{- $audiences = append $audiences .audience -}}
{{- end -}}
{{- toJson $audiences -}}
{{- end -}}

{{/* A CEL list literal of strings: ['a', 'b']. Call with a list. */}}
{{- define "sscsi.celList" -}}
{{- $items := list -}}
{{- range . -}}
{{- $items = append $items (printf "'%s'" (replace "'" "\\'" .)) -}}
{{- end -}}
{{- printf "[%s]" (join ", " $items) -}}
{{- end -}}
