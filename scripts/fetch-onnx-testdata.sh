#!/usr/bin/env bash
# Fetches the ONNX backend test data (node tests and light models) that ship inside the
# pinned onnx wheel on PyPI into a git-ignored cache. Nothing is installed: the wheel is
# downloaded with `pip download --no-deps` and only the test data is extracted.
set -euo pipefail
ONNX_VERSION=1.21.0
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${GRAPHC_ONNX_DATA:-$ROOT/.cache/onnx-$ONNX_VERSION}"
if [ -f "$DEST/.complete" ]; then
    echo "onnx $ONNX_VERSION test data: $DEST (cached)"
    exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "downloading the onnx==$ONNX_VERSION wheel from PyPI..." >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 \
    "onnx==$ONNX_VERSION" -d "$TMP"
WHEEL="$(ls "$TMP"/onnx-"$ONNX_VERSION"-*.whl)"
mkdir -p "$DEST"
python3 - "$WHEEL" "$DEST" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "onnx/backend/test/data/"
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        for part in ("node/", "light/"):
            if name.startswith(prefix + part) and not name.endswith("/"):
                rel = name[len(prefix):]
                out = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with z.open(info) as src, open(out, "wb") as dst:
                    dst.write(src.read())
                n += 1
print(f"extracted {n} files to {dest}", file=sys.stderr)
PY
touch "$DEST/.complete"
echo "onnx $ONNX_VERSION test data: $DEST"
