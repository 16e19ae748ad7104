/**
 * The shape rules, by `domain:op` ('' is the default ONNX domain): an explicit registry built from
 * one table per op family.
 */
import type { RuleTable } from '../infer.js';
import { contribOps } from './contrib.js';
import { controlFlowOps } from './control-flow.js';
import { elementwiseOps } from './elementwise.js';
import { nnOps } from './nn.js';
import { sequenceOps } from './sequence.js';
import { shapeOps } from './shape-ops.js';
import { tensorOps } from './tensor.js';
import { trainingOps } from './training.js';

export const RULES: RuleTable = {
  ...elementwiseOps,
  ...tensorOps,
  ...nnOps,
  ...controlFlowOps,
  ...sequenceOps,
  ...contribOps,
  ...trainingOps,
  ...shapeOps,
};
