#!/usr/bin/env bash
# Builds rawrxd (release) and runs it with the given arguments, after scripts/setup.sh has installed
# what it needs. The README's first command: `bash scripts/run.sh scripts/phase1_sweep.lua`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
exec "${CARGO_TARGET_DIR:-target}/release/rawrxd" "$@"
