#!/usr/bin/env bash
# Installs the real binaries the integration tests drive: etcd, kube-apiserver,
# kube-controller-manager (garbage collection), csi-sanity, and for the node
# tier kubelet and kube-scheduler, all built from the Go module proxy, plus the
# upstream driver and Azure provider that the interop tests and benchmarks
# compare against (install-upstream.sh). Results are cached in $SSCSI_TOOLS_DIR
# so a second run takes seconds. Prints the bin directory on its last line.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.5.35}"
CSI_TEST_VERSION="${CSI_TEST_VERSION:-v5.6.0}"
TOOLS_DIR="${SSCSI_TOOLS_DIR:-$HOME/.cache/secrets-store-csi-tools}"
BIN="$TOOLS_DIR/bin"
export GOBIN="$BIN"
export GOCACHE="$TOOLS_DIR/gocache"
export GOMODCACHE="$TOOLS_DIR/gomodcache"
export GOFLAGS="-buildvcs=false -trimpath"
export CGO_ENABLED=0
mkdir -p "$BIN"

# Go is only needed when something must be built, so a warm cache works without it.
need_go() { command -v go >/dev/null || { echo "install-tools: Go is required to build $1 (go not found on PATH)" >&2; exit 1; }; }

stamp_ok() { [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

if ! stamp_ok etcd "$ETCD_VERSION"; then
  need_go "etcd $ETCD_VERSION"
  echo "install-tools: building etcd $ETCD_VERSION" >&2
  # etcd's own go.mod has replace directives, so `go install pkg@version` refuses
  # it; build it from a small module that requires it instead.
  mod="$TOOLS_DIR/etcd-build-$ETCD_VERSION"
  mkdir -p "$mod"
  printf 'module sscsi.local/etcd-build\n\ngo 1.25\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$mod/tools.go"
  (cd "$mod" && go mod tidy >/dev/null && go build -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$ETCD_VERSION"
fi

if ! stamp_ok csi-sanity "$CSI_TEST_VERSION"; then
  need_go "csi-sanity $CSI_TEST_VERSION"
  echo "install-tools: building csi-sanity $CSI_TEST_VERSION" >&2
  go install "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@$CSI_TEST_VERSION"
  stamp csi-sanity "$CSI_TEST_VERSION"
fi

# Plain `go build` leaves the version at v0.0.0-master; stamp the release into
# both version packages the way the Kubernetes release build does, so /version,
# discovery and user agents report the real version. The stamp records that too.
kube_minor="${KUBE_VERSION#v1.}"; kube_minor="${kube_minor%%.*}"
KUBE_LDFLAGS=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  KUBE_LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
done
KUBE_STAMP="$KUBE_VERSION version-stamped"

# One build module for every Kubernetes binary, so they share its module graph
# and build cache: kube-apiserver and kube-controller-manager for the cluster
# tier, kubelet and kube-scheduler for the node tier. Only missing or stale
# binaries are built.
KUBE_CMDS=(kube-apiserver kube-controller-manager kubelet kube-scheduler)
kube_missing=()
for cmd in "${KUBE_CMDS[@]}"; do stamp_ok "$cmd" "$KUBE_STAMP" || kube_missing+=("$cmd"); done
if (( ${#kube_missing[@]} )); then
  need_go "${kube_missing[*]} $KUBE_VERSION"
  echo "install-tools: building ${kube_missing[*]} $KUBE_VERSION (first run: several minutes)" >&2
  mod="$TOOLS_DIR/kube-build-$KUBE_VERSION"
  mkdir -p "$mod"
  staging_version="v0.${KUBE_VERSION#v1.}"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 through replace
  # directives that only work inside its own tree; pin each to the release.
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "module sscsi.local/kube-build"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ v0\.0\.0\s*$' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}' | sort -u
  } > "$mod/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for cmd in "${KUBE_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
    printf ')\n'
  } > "$mod/tools.go"
  (cd "$mod" && go mod tidy)
  for cmd in "${kube_missing[@]}"; do
    (cd "$mod" && go build -ldflags "$KUBE_LDFLAGS" -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd")
    stamp "$cmd" "$KUBE_STAMP"
  done
fi

# The pod sandbox's pause program (test/harness/pause), static, for the node
# tier's sandbox image; rebuilt when its source changes.
pause_src="$(dirname "${BASH_SOURCE[0]}")/pause/pause.go"
pause_stamp="$(sha256sum "$pause_src" | cut -c1-16)"
if ! stamp_ok sscsi-pause "$pause_stamp"; then
  need_go "the pause program"
  echo "install-tools: building the pause program" >&2
  (cd "$(dirname "$pause_src")" && GO111MODULE=off go build -ldflags "-s -w" -o "$BIN/sscsi-pause" pause.go)
  stamp sscsi-pause "$pause_stamp"
fi

bash "$(dirname "$0")/install-upstream.sh" >/dev/null

echo "$BIN"
