#!/usr/bin/env bash
# Makes this machine ready for the tests; `npm test` runs it first. It installs
# what is missing, and only that: the Debian packages the tests call (apt-get,
# so as root), the binaries built with Go (test/harness/install-tools.sh:
# etcd, Kubernetes, csi-sanity, the upstream pair) and helm
# (scripts/install-helm.sh), both cached in ~/.cache/secrets-store-csi-tools.
# On a machine that has everything it only checks, in a tenth of a second. It
# says what it installs, and stops with a line naming whatever failed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup-test-machine: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# Debian package | what shows it is installed | what the tests use it for.
# "cmd:x" is looked up on PATH, as the tests run it; "dpkg:p" asks dpkg; any
# other entry is a file that must be executable; "file:f" one that must not be
# missing or empty.
PACKAGES=(
  "mount|cmd:mount cmd:umount|tmpfs mounts"
  "openssl|cmd:openssl|independent expectations for certificate output"
  "util-linux|cmd:unshare|the interop tests' private network and mount namespace"
  "iproute2|cmd:ip|loopback addresses inside that namespace"
  "ca-certificates|file:/etc/ssl/certs/ca-certificates.crt|HTTPS to the Go module proxy"
  "unzip|cmd:unzip|unpacking helm"
  "containerd|/usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/bin/ctr|node tier: the container runtime"
  "runc|/usr/sbin/runc|node tier: runs the pods' containers"
  "iptables|/usr/sbin/iptables|node tier: what kubelet and the CNI plugins call"
  "containernetworking-plugins|/usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback|node tier: the pod network"
  # Debian's dynamic busybox also installs /bin/busybox; the test image needs the static one.
  "busybox-static|dpkg:busybox-static|node tier: the test image"
  "buildah|/usr/bin/buildah|node tier: builds the images from the Dockerfiles"
  "debootstrap|/usr/sbin/debootstrap|node tier: the images' base"
  "prometheus|/usr/bin/prometheus|the Grafana dashboard test's Prometheus server"
)

present() {
  local path
  case "$1" in
    cmd:*) path="$(command -v "${1#cmd:}" 2>/dev/null)" && [[ -f "$path" && -x "$path" ]] ;;
    dpkg:*) [[ "$(dpkg-query -W -f='${Status}' "${1#dpkg:}" 2>/dev/null)" == "install ok installed" ]] ;;
    file:*) [[ -s "${1#file:}" ]] ;;
    *) [[ -f "$1" && -x "$1" ]] ;;
  esac
}

# Says what a failed check means, for the message.
describe_check() {
  case "$1" in
    cmd:*) echo "no executable ${1#cmd:} on PATH" ;;
    dpkg:*) echo "dpkg does not list ${1#dpkg:} as installed" ;;
    file:*) echo "${1#file:} is missing or empty" ;;
    *) echo "$1 is missing or not executable" ;;
  esac
}

# Prints "package|first failed check|what for" for each package not installed.
missing_packages() {
  local entry pkg checks why check
  for entry in "${PACKAGES[@]}"; do
    IFS='|' read -r pkg checks why <<<"$entry"
    for check in $checks; do
      if ! present "$check"; then
        echo "$pkg|$check|$why"
        break
      fi
    done
  done
}

started_ns="$(date +%s%N)"

mapfile -t missing < <(missing_packages)
if (( ${#missing[@]} )); then
  names=()
  for m in "${missing[@]}"; do
    IFS='|' read -r pkg check why <<<"$m"
    say "missing Debian package $pkg ($(describe_check "$check")): $why"
    names+=("$pkg")
  done
  install_command="apt-get install -y --no-install-recommends ${names[*]}"
  [[ "$(id -u)" == "0" ]] || fail "installing ${names[*]} needs root (the tests need root too: they mount tmpfs); run as root, or: $install_command"
  command -v apt-get >/dev/null || fail "${names[*]} missing and there is no apt-get: the tests expect Debian; install the equivalents of ${names[*]}"
  say "installing: $install_command"
  apt-get update -qq || fail "apt-get update failed (needed to install ${names[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${names[@]}" || fail "$install_command failed"
  mapfile -t still < <(missing_packages)
  if (( ${#still[@]} )); then
    for m in "${still[@]}"; do
      IFS='|' read -r pkg check why <<<"$m"
      say "still missing after apt-get install: $pkg ($(describe_check "$check"))"
    done
    fail "apt-get install finished, but the packages above are still not usable"
  fi
  # The package enables (and, where systemd runs, starts) a Prometheus server
  # on port 9090 of every interface. The test runs its own on loopback, so the
  # one this script brought in is switched off.
  if [[ " ${names[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    if [[ -d /run/systemd/system ]]; then now=(--now); else now=(); fi
    say "disabling the prometheus service the package enabled (the dashboard test runs its own server)"
    systemctl disable "${now[@]}" prometheus.service || fail "systemctl disable ${now[*]} prometheus.service failed"
  fi
  say "installed ${names[*]}"
fi

# Both scripts print what they build or fetch on stderr; their last stdout
# line (a path) is not needed here.
bash test/harness/install-tools.sh >/dev/null ||
  fail "test/harness/install-tools.sh (etcd, kube-apiserver, kube-controller-manager, kubelet, kube-scheduler, csi-sanity, the pause program, the upstream driver and provider; built with Go) failed: see its messages above"
bash scripts/install-helm.sh >/dev/null ||
  fail "scripts/install-helm.sh (helm and kubectl) failed: see its messages above"

elapsed_ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
say "the machine has what the tests need: Debian packages, Go-built tools, helm (${elapsed_ms} ms)"
