#!/usr/bin/env bash
# Refresh the vendored htmx 4 core and its websocket extension from the npm registry.
#
#   scripts/vendor_htmx.sh            # uses the pinned version below
#   HTMX_VERSION=4.0.2 scripts/vendor_htmx.sh
#
# Writes static/vendor/{htmx.min.js,hx-ws.js,LICENSE,VERSION,SHA256SUMS}. The pages load only these files:
# nothing is fetched from a CDN at run time. `sha256sum -c static/vendor/SHA256SUMS` checks them.
set -euo pipefail

VERSION="${HTMX_VERSION:-4.0.1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/static/vendor"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"
npm pack --silent "htmx.org@${VERSION}" >/dev/null
tar -xzf htmx.org-*.tgz
mkdir -p "$DEST"
cp package/dist/htmx.min.js "$DEST/htmx.min.js"
cp package/dist/ext/hx-ws.js "$DEST/hx-ws.js"
cp package/LICENSE "$DEST/LICENSE"
echo "htmx.org@${VERSION} (npm), files: dist/htmx.min.js dist/ext/hx-ws.js LICENSE" > "$DEST/VERSION"
cd "$DEST"
sha256sum htmx.min.js hx-ws.js LICENSE > SHA256SUMS
echo "vendored htmx.org@${VERSION} into $DEST"
cat SHA256SUMS
