#!/usr/bin/env bash
# Runs every test: fetches the ONNX conformance data and a Python with numpy for the shared-
# library example (both cached under .cache/), then runs the workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-onnx-testdata.sh
./scripts/fetch-python-env.sh >/dev/null
cargo test --workspace --locked "$@"
# The benches are not tests, but they must keep compiling.
cargo build --workspace --locked --benches
