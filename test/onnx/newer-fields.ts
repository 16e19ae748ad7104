/**
 * A model that uses fields and data types added to ONNX after 1.10 (the npm onnx-proto schema),
 * plus fields no ONNX version has (as raw unknown bytes), built at the protobuf level.
 */
import type { ModelProto, TensorProto } from '../../src/onnx/proto.js';
import { AttributeType } from '../../src/onnx/proto.js';

const f32 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);

/** protobuf wire bytes of one field: tag + payload (varint or length-delimited) */
export function rawField(id: number, payload: number | Uint8Array): Uint8Array {
  const varint = (v: number): number[] => { const out: number[] = []; while (v > 0x7f) { out.push((v & 0x7f) | 0x80); v >>>= 7; } out.push(v); return out; };
  if (typeof payload === 'number') return Uint8Array.from([...varint(id << 3), ...varint(payload)]);
  return Uint8Array.from([...varint((id << 3) | 2), ...varint(payload.length), ...payload]);
}

export const FUTURE_NODE_FIELD = rawField(99, new TextEncoder().encode('from the future'));
export const FUTURE_MODEL_FIELD = rawField(120, 42);

/**
 * y = ScaledAdd(x, b) with the function's default alpha = 2 -> y = x + 2*b, then
 * z = DequantizeLinear(int4 weights) (opset 21), w8 = DequantizeLinear(float8e4m3fn).
 */
export function newerFieldsModel(): ModelProto {
  const int4: TensorProto = {
    name: 'w4', dataType: 22, dims: [4], rawData: Uint8Array.of(0x21, 0xf3), // int4 values 1, 2, 3, -1
    metadataProps: [{ key: 'quantized-by', value: 'test' }],
  };
  const fp4: TensorProto = { name: 'w_fp4', dataType: 23, dims: [3], rawData: Uint8Array.of(0x21, 0x03) };
  const fp8: TensorProto = { name: 'w8', dataType: 17, dims: [2], rawData: Uint8Array.of(0x38, 0xc0) }; // 1.0, -2.0 in e4m3fn
  return {
    irVersion: 10,
    producerName: 'retarget-test',
    opsetImport: [{ domain: '', version: 21 }, { domain: 'custom', version: 1 }],
    metadataProps: [{ key: 'k', value: 'v' }],
    $unknown: [FUTURE_MODEL_FIELD],
    graph: {
      name: 'newer',
      metadataProps: [{ key: 'graph-note', value: 'since 1.16' }],
      input: [
        { name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }] } } }, metadataProps: [{ key: 'layout', value: 'N' }] },
        { name: 'b', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }] } } } },
      ],
      output: [
        { name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }] } } } },
        { name: 'z', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } },
        { name: 'z8', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } },
      ],
      initializer: [int4, fp4, fp8, { name: 'one', dataType: 1, dims: [], rawData: f32([1]) }],
      node: [
        {
          input: ['x', 'b'], output: ['y'], name: 'call', opType: 'ScaledAdd', domain: 'custom',
          metadataProps: [{ key: 'source', value: 'model.py:12' }],
          docString: 'calls a model-local function',
          $unknown: [FUTURE_NODE_FIELD],
        },
        { input: ['w4', 'one'], output: ['z'], name: 'dq4', opType: 'DequantizeLinear' },
        { input: ['w8', 'one'], output: ['z8'], name: 'dq8', opType: 'DequantizeLinear' },
      ],
    },
    functions: [{
      name: 'ScaledAdd', domain: 'custom', input: ['a', 'c'], output: ['r'],
      attributeProto: [{ name: 'alpha', type: AttributeType.FLOAT, f: 2 }],
      node: [
        { output: ['alpha_v'], opType: 'Constant', attribute: [{ name: 'value_float', refAttrName: 'alpha', type: AttributeType.FLOAT }] },
        { input: ['c', 'alpha_v'], output: ['scaled'], opType: 'Mul' },
        { input: ['a', 'scaled'], output: ['r'], opType: 'Add', metadataProps: [{ key: 'in-function', value: 'yes' }] },
      ],
      opsetImport: [{ domain: '', version: 21 }],
      valueInfo: [{ name: 'scaled', type: { tensorType: { elemType: 1 } } }],
      metadataProps: [{ key: 'fn', value: 'meta' }],
      docString: 'a + alpha * c',
    }],
  };
}
