#!/usr/bin/env bash
# Installs what govn's build, tests and demo need: Debian packages and pinned Go
# tools. Idempotent and quiet when everything is present.
set -euo pipefail

APT_PACKAGES=(openvswitch-switch openvswitch-common ovn-central ovn-host ovn-common traceroute
  protobuf-compiler iproute2 iputils-ping ethtool netcat-openbsd procps psmisc curl)
# Pinned Go tools: module@version binary.
GO_TOOLS=(
  "google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 protoc-gen-go"
  "google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 protoc-gen-go-grpc"
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

gobin="$(go env GOPATH)/bin"
for t in "${GO_TOOLS[@]}"; do
  read -r mod bin <<<"$t"
  want="${mod##*@}"
  have=""
  [ -x "$gobin/$bin" ] && have=$(go version -m "$gobin/$bin" 2>/dev/null | awk '$1=="mod"{print $3; exit}')
  if [ "$have" != "$want" ]; then
    echo "deps: go install $mod"
    go install "$mod"
  fi
done
