#!/usr/bin/env bash
# Runs every test: fetches the ONNX conformance data (cached) and runs the workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-onnx-testdata.sh
cargo test --workspace --locked "$@"
