#!/usr/bin/env bash
# Creates the Python environment the shared-library example test runs in: a virtualenv in
# the git-ignored cache with numpy from PyPI (pinned). Prints the interpreter's path.
set -euo pipefail
NUMPY_VERSION=2.3.5
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${GRAPHC_PYENV:-$ROOT/.cache/pyenv}"
if [ -f "$DEST/.complete-$NUMPY_VERSION" ]; then
    echo "python environment: $DEST (cached)" >&2
    echo "$DEST/bin/python"
    exit 0
fi
rm -rf "$DEST"
echo "creating $DEST with numpy==$NUMPY_VERSION from PyPI..." >&2
python3 -m venv "$DEST"
"$DEST/bin/python" -m pip install --quiet --disable-pip-version-check "numpy==$NUMPY_VERSION"
touch "$DEST/.complete-$NUMPY_VERSION"
echo "$DEST/bin/python"
