/**
 * Imported first by every host-kernel suite (`*.host.test.ts`). Without root such a suite would
 * fail test by test, and hook by hook, with EPERM from ip, tc, bpftool and netlink. Instead it
 * fails while loading, with one message, before any test or hook exists.
 */
if (process.getuid?.() !== 0) {
  const err = new Error('host-kernel suites (*.host.test.js) need root: network namespaces, xfrm, BPF, tc. Run `npm run test:host` as root; `npm run test:unit` needs none.');
  // The message is all there is to say; a stack into this module would only add noise.
  err.stack = `Error: ${err.message}`;
  throw err;
}
export {};
