#!/usr/bin/env bash
# One command for a fresh machine: installs what the tests need, then lints and runs every test
# against real servers started privately on loopback. (README: "Run the tests".)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund
npm run lint
npm test
