#!/usr/bin/env bash
# Installs the pinned JS test dependencies (tests/js/package-lock.json).
# Idempotent: does nothing when node_modules is already at least as new as
# package-lock.json, so it is cheap to call before every test run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
marker=node_modules/.package-lock.json   # written by npm on every install
if [[ ! -d node_modules || ! -f $marker || package-lock.json -nt $marker ]]; then
  # `npm ci` is what we'd like, but npm 11 refuses this lockfile for lacking other
  # platforms' optional cbor-extract binaries; `npm install` installs the same pinned
  # versions from the lockfile without that check.
  npm install --no-audit --no-fund
  touch "$marker"
fi
