#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent: when all are
# present it only runs dpkg-query (well under a second) and exits 0.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libcaf-dev librdkafka-dev libpq-dev libhiredis-dev libsimdjson-dev
  libcpp-httplib-dev libboost-test-dev libssl-dev zlib1g-dev libjwt-dev
  libavro-dev libjemalloc-dev   # jemalloc: the node's allocator (96 HTTP threads malloc at once)
  postgresql redis-server kcat wrk curl procps
  chromium fonts-dejavu-core   # the preview renderer (and test/js browser checks); the card's font
)
if ! command -v node >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ "$status" == ii* ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing missing packages: ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "deps: not root and no sudo; install manually: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: done"
