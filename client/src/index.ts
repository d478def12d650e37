/** Public entry: the framework-free client library and the React bindings. */
export * from './lib';
export * from './react';
