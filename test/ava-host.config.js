// ava configuration for the host-kernel suites (`npm run test:host`, test/run-host-suites.sh):
// *.host.test.ts need root on this machine's kernel (network namespaces, xfrm policies, BPF, tc).
export default {
  files: ['dist/test/**/*.host.test.js', '!dist/test/vm/**'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
