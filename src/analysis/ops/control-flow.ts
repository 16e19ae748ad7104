import type { RuleTable } from '../infer.js';

export const controlFlowOps: RuleTable = {};
