import type { RuleTable } from '../infer.js';

export const nnOps: RuleTable = {};
