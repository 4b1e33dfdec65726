#!/usr/bin/env bash
# run-host-suites.sh (`npm run test:host`): the compiled host-kernel suites,
# dist/test/**/*.host.test.js, with ava on this machine's kernel. They need root: they create
# network namespaces, xfrm policies, BPF programs and pins, and tc filters (all in throw-away
# namespaces and private bpffs mounts). Without root this says so in one line and fails.
# Extra arguments go to ava (e.g. --match 'IPv4*'). Build first (`npm run build`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test:host: needs root (network namespaces, xfrm, BPF, tc); run it as root, or run 'npm run test:unit' for the suites that need none" >&2
  exit 1
fi
shopt -s globstar nullglob
suites=(dist/test/**/*.host.test.js)
if [ ${#suites[@]} -eq 0 ]; then
  echo "test:host: no compiled host suites (dist/test/**/*.host.test.js); run 'npm run build' first" >&2
  exit 1
fi
exec node node_modules/ava/entrypoints/cli.mjs --config test/ava-host.config.js "$@"
