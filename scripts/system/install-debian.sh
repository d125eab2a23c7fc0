#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages the tests need, idempotently. The one place for this logic:
# `npm test` runs it through scripts/system/pretest.mjs when something is missing and it may install
# (root or passwordless sudo); otherwise run it yourself: `sudo bash scripts/system/install-debian.sh`.
# - chromium: the browser the Playwright tests drive (WebGPU through SwiftShader, fp32);
# - Mesa >= 25 lavapipe from bookworm-backports + libvulkan1: a software Vulkan adapter with shader-f16,
#   used by the Node `webgpu` (Dawn) package to test the fp16 WebGPU path without a GPU.
# Flags: --chromium-only / --mesa-only install just that part.
set -euo pipefail
want_chromium=1
want_mesa=1
case "${1:-}" in
  --chromium-only) want_mesa=0 ;;
  --mesa-only) want_chromium=0 ;;
  "") ;;
  *) echo "usage: $0 [--chromium-only|--mesa-only]" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian.sh: apt-get not found; this script is for Debian 12. Install Chromium and a Vulkan driver with shader-f16 (Mesa >= 25) yourself." >&2
  exit 1
fi

need_update=1
apt_update() { if [ $need_update = 1 ]; then $SUDO apt-get update -qq; need_update=0; fi; }
apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null; }

if [ $want_chromium = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  apt_update
  apt_install chromium
fi

# Mesa >= 25 lavapipe (bookworm's own Mesa 22 is refused by Dawn).
mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 25
}
if [ $want_mesa = 1 ] && ! mesa_ok; then
  list=/etc/apt/sources.list.d/bookworm-backports.sources
  if [ ! -f "$list" ]; then
    uris=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uris" ] || uris="http://deb.debian.org/debian"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uris" | $SUDO tee "$list" >/dev/null
  fi
  need_update=1
  apt_update
  apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1
fi
echo "system packages: $(chromium --version 2>/dev/null | head -1 || echo 'no chromium'); mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 'not installed')"
