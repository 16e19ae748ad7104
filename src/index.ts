/**
 * The public Node API of retarget.
 *
 *   import { readModel, writeModel, printModel } from 'retarget';
 *   const { model } = readModel('model.onnx');
 *   console.log(printModel(model));
 *   writeModel(model, 'out.onnx', { externalData: true });
 *
 * The browser-safe core is the same minus src/node: `parseModel(bytes)` / `serializeModel(model)`.
 */
export * from './ir/index.js';
export * from './onnx/index.js';
export { parseModel, parseModelProto, serializeModel, type ParseOptions, type ParsedModel, type SerializeOptions, type SerializedModel } from './io.js';
export type { Runtime, Session, SessionOptions, RunOptions } from './runtime.js';
export { compareTensors, tensorValues, type Comparison, type Tolerance } from './compare.js';
export { readModel, writeModel, fsExternalReader, FileError, type LoadedModel, type WriteOptions, type WrittenModel } from './node/files.js';
export { onnxruntimeNode, toOrtTensor, fromOrtTensor } from './node/ort.js';
export { readTestDataSet, testDataSets, readTensorFile, type TestDataSet } from './node/testdata.js';
export * from './analysis/index.js';
export { evaluateNode } from './analysis/evaluator.js';
export { rulePass, type Pass, type Rule, type PassContext, type PassOptions, type PassLevel, type Captures } from './pass/pass.js';
export { Patch, PatchError, typesConflict, type AddOptions } from './pass/patch.js';
export { op, v, constant, opt, alt, matchNode, constantValue, OpPattern, type ValuePattern } from './pass/pattern.js';
export { PassManager, type PipelineStep, type ManagerOptions, type PassStat, type RunReport } from './pass/manager.js';
export { compile, resolvePipeline, modelStats, CompileError, type CompileOptions, type CompileReport, type ModelStats } from './compile.js';
export type { Target, PipelineSpec } from './target.js';
export { PASSES, findPass } from '../passes/index.js';
export { TARGETS, findTarget } from '../targets/index.js';
export { syntheticInputs, seededRandom, intInputRanges, type SyntheticOptions } from './inputs.js';
export { loadPlugin, type Plugin } from './node/plugins.js';
