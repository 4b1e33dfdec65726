#!/usr/bin/env bash
# run-vm-suites.sh (`npm run test:vm`): runs the compiled VM suites, dist/test/vm/**/*.vm.test.js,
# with ava inside ONE throw-away VM (vm/kernel-vm.sh) whose kernel has ESP and AES-GCM.
# Extra arguments go to ava (e.g. --match 'IPv4*').
#
# Exit status: ava's. A VM that cannot be prepared or booted is a failure (125), never a skip.
# Build first (`npm run build`, or `npx tsc -p .`): this script runs what is in dist/.
# Environment: KMESH_VM_TIMEOUT (seconds, default 1800) bounds the whole VM run; KMESH_VM_MEM
# (MiB, default 3072: the end-to-end labs run a dozen Node processes) sizes the guest; the
# kernel-vm.sh variables (KMESH_VM_CACHE, ...) apply.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

say() { echo "run-vm-suites: $*"; }

shopt -s globstar nullglob
suites=(dist/test/vm/**/*.vm.test.js)
if [ ${#suites[@]} -eq 0 ]; then
  say "no compiled VM suites (dist/test/vm/**/*.vm.test.js); run 'npm run build' first" >&2
  exit 1
fi
say "${#suites[@]} suite file(s): ${suites[*]}"

start=$(date +%s)
if ! "$root/vm/kernel-vm.sh" --prepare; then
  say "FAILED: could not prepare the VM image" >&2
  exit 125
fi

set +e
"$root/vm/kernel-vm.sh" --timeout "${KMESH_VM_TIMEOUT:-1800}" --mem "${KMESH_VM_MEM:-3072}" --env CI=1 -- \
  node node_modules/ava/entrypoints/cli.mjs --config test/vm/ava-vm.config.js --serial "$@"
rc=$?
set -e

took=$(( $(date +%s) - start ))
case $rc in
  0) say "VM suites passed in ${took}s";;
  124) say "FAILED: the VM run timed out after ${took}s" >&2;;
  125) say "FAILED: the VM could not boot or report a status (${took}s)" >&2;;
  *) say "FAILED: ava exited with $rc after ${took}s" >&2;;
esac
exit $rc
