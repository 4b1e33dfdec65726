// ava configuration for the VM suites (test/vm/run-vm-suites.sh runs them inside the
// kernel-vm guest). Software emulation is several times slower than the host: one file at a
// time, generous timeouts.
export default {
  files: ['dist/test/vm/**/*.vm.test.js'],
  concurrency: 1,
  workerThreads: false,
  timeout: '10m',
};
