/**
 * The package's main entry, `realtime-client`: the framework-free ProgressClient, its options,
 * events and message types, and the helpers. React bindings are `realtime-client/react`; the
 * component styles are `realtime-client/styles.css`.
 */
export * from './lib/index.js';
