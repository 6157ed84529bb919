#!/usr/bin/env bash
# Builds the upstream Go binaries that the interop tests and the benchmarks run
# against ours, from the Go module proxy at exact versions:
#   upstream-secrets-store-csi-driver  sigs.k8s.io/secrets-store-csi-driver v1.6.0
#                                      (cmd/secrets-store-csi-driver; monis.app/mlog,
#                                      which the proxy does not serve, is replaced by
#                                      the logging-only stand-in in test/interop/upstream/mlog-standin)
#   upstream-provider-azure            github.com/Azure/secrets-store-csi-driver-provider-azure v1.8.2 (./cmd)
#   upstream-fake-provider             test/interop/upstream/fake-provider: a main around the
#                                      driver module's provider/fake MockCSIProviderServer
# Same cache as install-tools.sh ($SSCSI_TOOLS_DIR, GOCACHE/GOMODCACHE there);
# each binary carries a version stamp, so a second run takes seconds. Prints the
# bin directory on its last line.
set -euo pipefail

DRIVER_MODULE=sigs.k8s.io/secrets-store-csi-driver
DRIVER_VERSION=v1.6.0
DRIVER_COMMIT=4960f9637c51ad9cb9ef264481bc6d9a98bf1f1c
AZURE_MODULE=github.com/Azure/secrets-store-csi-driver-provider-azure
AZURE_VERSION=v1.8.2
AZURE_COMMIT=4927a15410506c6a8a52af68db08cf72aa1e10ab

SRC="$(cd "$(dirname "$0")/../interop/upstream" && pwd)"
TOOLS_DIR="${SSCSI_TOOLS_DIR:-$HOME/.cache/secrets-store-csi-tools}"
BIN="$TOOLS_DIR/bin"
export GOCACHE="$TOOLS_DIR/gocache"
export GOMODCACHE="$TOOLS_DIR/gomodcache"
export GOFLAGS="-buildvcs=false -trimpath"
export CGO_ENABLED=0
mkdir -p "$BIN"

need_go() { command -v go >/dev/null || { echo "install-upstream: Go is required to build $1 (go not found on PATH)" >&2; exit 1; }; }
stamp_ok() { [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

# The in-repo Go sources (module files, stand-in, fake provider main) are part
# of what the driver and fake provider are built from: a change rebuilds them.
src_hash="$(cd "$SRC" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
build_date="2000-01-01T00:00:00Z" # fixed, so rebuilds are byte-identical

DRIVER_STAMP="$DRIVER_VERSION src-$src_hash"
if ! stamp_ok upstream-secrets-store-csi-driver "$DRIVER_STAMP" || ! stamp_ok upstream-fake-provider "$DRIVER_STAMP"; then
  need_go "$DRIVER_MODULE $DRIVER_VERSION"
  echo "install-upstream: building $DRIVER_MODULE $DRIVER_VERSION and the fake provider" >&2
  ldflags="-X $DRIVER_MODULE/pkg/version.BuildVersion=$DRIVER_VERSION -X $DRIVER_MODULE/pkg/version.Vcs=$DRIVER_COMMIT -X $DRIVER_MODULE/pkg/version.BuildTime=$build_date"
  # -mod=readonly: go.sum is committed, so the proxy serves exactly what it lists.
  (cd "$SRC" && \
    go build -mod=readonly -ldflags "$ldflags" -o "$BIN/upstream-secrets-store-csi-driver" "$DRIVER_MODULE/cmd/secrets-store-csi-driver" && \
    go build -mod=readonly -o "$BIN/upstream-fake-provider" ./fake-provider)
  stamp upstream-secrets-store-csi-driver "$DRIVER_STAMP"
  stamp upstream-fake-provider "$DRIVER_STAMP"
fi

if ! stamp_ok upstream-provider-azure "$AZURE_VERSION"; then
  need_go "$AZURE_MODULE $AZURE_VERSION"
  echo "install-upstream: building $AZURE_MODULE $AZURE_VERSION" >&2
  # Built inside the released module (go.mod and go.sum exactly as tagged), as
  # its Makefile does (`go build ./cmd/`). `go install pkg@version` would need
  # the proxy's version list, which it refuses.
  dir="$(go mod download -json "$AZURE_MODULE@$AZURE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$dir" ]] || { echo "install-upstream: go mod download $AZURE_MODULE@$AZURE_VERSION gave no directory" >&2; exit 1; }
  ldflags="-X $AZURE_MODULE/pkg/version.BuildVersion=$AZURE_VERSION -X $AZURE_MODULE/pkg/version.Vcs=$AZURE_COMMIT -X $AZURE_MODULE/pkg/version.BuildDate=$build_date"
  (cd "$dir" && go build -mod=readonly -ldflags "$ldflags" -o "$BIN/upstream-provider-azure" ./cmd)
  stamp upstream-provider-azure "$AZURE_VERSION"
fi

echo "$BIN"
