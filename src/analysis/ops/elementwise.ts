import type { RuleTable } from '../infer.js';

export const elementwiseOps: RuleTable = {};
