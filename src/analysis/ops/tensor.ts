import type { RuleTable } from '../infer.js';

export const tensorOps: RuleTable = {};
