#!/usr/bin/env bash
# One command for a fresh machine: installs what the demo needs, builds mailmover, starts two
# throwaway Dovecot servers on loopback, seeds a sample mailbox, migrates it and prints the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run demo
