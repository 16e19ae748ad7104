export * from './symbolic.js';
export * from './types.js';
export * from './infer.js';
export { RULES } from './ops/index.js';
export * from './cost.js';
