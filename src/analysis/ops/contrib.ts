import type { RuleTable } from '../infer.js';

export const contribOps: RuleTable = {};
