#!/usr/bin/env bash
# The whole test suite: installs what the tests need (scripts/setup.sh), then runs every test,
# with the Vulkan tests on lavapipe under the Khronos validation layer. Fails if no Vulkan test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# GPU tests serialise themselves; the CPU tests use both cores.
set -o pipefail
# A one-shot build gains nothing from the incremental cache (several GB on disk); a developer's
# own CARGO_INCREMENTAL setting wins.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --all-targets 2>&1 | tee "$log"
# The Vulkan tests print "vulkan device: <name>" when they really ran on a device.
if ! grep -q "vulkan device:" "$log"; then
  echo "test.sh: FAILED: no Vulkan test ran (no 'vulkan device:' line in the test output)" >&2
  exit 1
fi
echo "test.sh: Vulkan tests ran on: $(grep -m1 -o 'vulkan device: .*' "$log")"
