import type { RuleTable } from '../infer.js';

export const sequenceOps: RuleTable = {};
