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
