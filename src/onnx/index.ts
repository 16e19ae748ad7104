export * from './codec.js';
export * from './external.js';
export * from './proto.js';
