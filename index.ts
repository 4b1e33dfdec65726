/**
 * kmesh-ipsec programmatic API: the pure `core` domain functions. Nothing exported here does
 * I/O; the webhook, node plugin and CLI are built on these.
 */
export * from './core/constants.js';
export * from './core/marks.js';
