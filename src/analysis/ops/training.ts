/**
 * ai.onnx.preview.training ops (opset 1): optimizers update tensors in place, so output i has the
 * type of input 2+i (after the learning rate R and step count T); Gradient's outputs have the types
 * of the values named by its `xs` attribute.
 */
import { attrString } from '../../ir/attribute.js';
import type { Rule, RuleTable } from '../infer.js';

const optimizer: Rule = (ctx) => Array.from({ length: ctx.outputCount }, (_, i) => ({ type: ctx.type(2 + i) }));

const gradient: Rule = (ctx) => {
  const xs = ctx.node.attr('xs');
  if (xs?.type !== 'strings') return [];
  const byName = new Map(ctx.node.inputs.map((v, i) => [v?.name, i] as const));
  return xs.value.map((bytes) => {
    const name = attrString({ name: 'x', type: 'string', value: bytes }) ?? '';
    const i = byName.get(name);
    return i === undefined ? undefined : { type: ctx.type(i) };
  });
};

export const trainingOps: RuleTable = {
  'ai.onnx.preview.training:Adagrad': optimizer,
  'ai.onnx.preview.training:Adam': optimizer,
  'ai.onnx.preview.training:Momentum': optimizer,
  'ai.onnx.preview.training:Gradient': gradient,
};
