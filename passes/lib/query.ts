/**
 * The passes' query module: element type, shape, rank, constant and scalar readers. The one
 * implementation is src/analysis/query.ts (it lives there so that the cost model, the input
 * generator and the bench, below passes/ in the layering, ask the same way); this re-exports it.
 */
export * from '../../src/analysis/query.js';
