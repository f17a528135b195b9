#!/usr/bin/env bash
# Debian's headless Chromium and its WebDriver, for the tests that look at pages as a person does
# (the demo page, the `dvc plots show` page). Installed when missing and this machine can (root with
# apt-get); elsewhere those tests are skipped and say why.
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing chromium and chromium-driver (Debian packages) for the browser tests..." >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
    >/tmp/browser-install.log 2>&1 \
    || echo "browser.sh: installing chromium failed (see /tmp/browser-install.log); the browser tests will be skipped" >&2
else
  echo "browser.sh: chromium / chromedriver not found and not installable here (needs root and apt-get);" \
       "the browser tests will be skipped. Install Debian's chromium and chromium-driver to run them." >&2
fi
exit 0
