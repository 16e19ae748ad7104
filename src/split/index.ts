/** Hybrid deployment: split a model between a device (edge) and the cloud. Browser-safe. */
export * from './cuts.js';
export * from './build.js';
export * from './plan.js';
