#!/usr/bin/env bash
# CTest fixture `js_deps`: installs test/js's npm packages with `npm ci`
# (exact versions from package-lock.json) when node_modules is missing or was
# installed from another package.json/package-lock.json; otherwise a no-op.
set -euo pipefail
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 \
    || { echo "js_deps: $tool not found (scripts/deps.sh installs nodejs and npm)" >&2; exit 1; }
done
echo "js_deps: node $(node --version), npm $(npm --version 2>/dev/null)"
stamp=$dir/node_modules/.vantage-deps.sha256
want=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
  echo "js_deps: $dir/node_modules is up to date"
  exit 0
fi
echo "js_deps: npm ci in $dir"
# From inside the folder, not with --prefix: npm derives the global npmrc's
# path from the prefix, so --prefix drops the machine's npm settings (such as
# the cafile a TLS-inspecting proxy needs).
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
echo "js_deps: installed"
