/** Types as shape inference sees them: tensor shapes are symbolic expressions (Sym). */
import type { Tensor } from '../ir/tensor.js';
import type { ValueType } from '../ir/types.js';
import type { Sym } from './symbolic.js';

export type SymType =
  | { kind: 'tensor'; elemType: number; shape?: Sym[] }
  | { kind: 'sequence'; elem?: SymType }
  | { kind: 'optional'; elem?: SymType }
  /** map, opaque, sparse tensor, empty: carried through as the IR has them */
  | { kind: 'other'; type: ValueType };

export type TensorInfo = Extract<SymType, { kind: 'tensor' }>;

/**
 * The contents of a small integer tensor (rank 0 or 1) as symbolic values: what makes
 * Shape -> Gather -> Concat -> Reshape chains keep `batch` and `seq` symbolic.
 */
export interface SymValue {
  /** [] for a scalar, [n] for a vector */
  dims: number[];
  values: Sym[];
}

/** What a rule says about one output. */
export interface OutputInfo {
  type?: SymType;
  /** symbolic contents, for integer shape tensors */
  sym?: SymValue;
  /** exact contents, when the output is a constant */
  value?: Tensor;
}

export function tensorInfo(elemType: number, shape?: Sym[]): TensorInfo {
  return shape === undefined ? { kind: 'tensor', elemType } : { kind: 'tensor', elemType, shape };
}
