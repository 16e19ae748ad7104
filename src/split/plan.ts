/**
 * Choosing a cut: the lowest estimated latency among the candidates, or the one named by hand
 * (`at`), or the lowest estimate whose edge part stays under a FLOP budget (`maxEdgeFlops`); and the
 * record of the choice that `split.json` holds.
 */
import { candidateCuts, cutAt, estimateCut, referenceEstimates, SplitError, wireBytes, type Cut, type Estimate, type Hardware, type SplitAnalysis } from './cuts.js';
import type { WireFormat } from './build.js';

export interface ChooseOptions {
  at?: string[];
  maxEdgeFlops?: number;
  maxValues?: number;
  wire?: WireFormat;
}

/** Candidates sorted by estimated latency (with the wire format's bytes), best first. */
export function rankCuts(a: SplitAnalysis, hw: Hardware, opts: ChooseOptions = {}): Cut[] {
  const wire = opts.wire ?? 'fp32';
  const score = (c: Cut): number => estimateCut({ ...c, bytes: wireBytes(c, wire) }, hw).totalMs;
  return candidateCuts(a, opts.maxValues !== undefined ? { maxValues: opts.maxValues } : {})
    .map((c) => ({ c, s: score(c) }))
    .sort((x, y) => x.s - y.s || x.c.bytes - y.c.bytes || y.c.edgeFlops - x.c.edgeFlops)
    .map((x) => x.c);
}

export function chooseCut(a: SplitAnalysis, hw: Hardware, opts: ChooseOptions = {}): Cut {
  if (opts.at) return cutAt(a, opts.at);
  let ranked = rankCuts(a, hw, opts);
  if (opts.maxEdgeFlops !== undefined) {
    const budget = opts.maxEdgeFlops;
    ranked = ranked.filter((c) => c.edgeFlops <= budget);
    if (!ranked.length) throw new SplitError(`no cut keeps the edge part under ${budget} FLOPs`);
  }
  if (!ranked.length) throw new SplitError('no candidate cut: the graph has no small set of values that separates its inputs from its outputs');
  return ranked[0]!;
}

export interface SplitRecord {
  format: 'retarget-split/1';
  model: string;
  dims: Record<string, number>;
  /** symbols of dims that were not pinned: counted as 1 in bytes and FLOPs */
  unpinnedDims: string[];
  cut: {
    values: string[];
    /** graph inputs that the cloud reads directly: the device sends them as they are, so they cross too */
    graphInputs: string[];
    crossing: Cut['crossing'];
    chosenBy: 'estimate' | 'at' | 'max-edge-flops';
  };
  bytes: number;
  bytesExpr: string;
  wire: { format: WireFormat; bytes: number; scales?: Record<string, number> };
  flops: { edge: number; cloud: number; total: number; edgeByOp: Record<string, number>; cloudByOp: Record<string, number> };
  nodes: { edge: number; cloud: number };
  hardware: Hardware;
  estimate: Estimate;
  references: { allCloud: Estimate & { bytes: number }; allEdge: Estimate };
  edge?: { file: string; target: string };
  cloud?: { file: string; target: string };
  /** --wire fp16/int8: the composed model (edge -> cloud) against the original */
  wireError?: { maxAbsError: number; minCosine: number; inputs: string };
  validation?: { maxAbsError: number; minCosine: number; inputs: string; tolerance: string };
}

export function splitRecord(model: string, a: SplitAnalysis, cut: Cut, hw: Hardware, chosenBy: SplitRecord['cut']['chosenBy'], wire: WireFormat): SplitRecord {
  const bytes = wireBytes(cut, wire);
  const ref = referenceEstimates(a, hw);
  return {
    format: 'retarget-split/1',
    model,
    dims: a.dims,
    unpinnedDims: a.unpinned,
    cut: {
      values: cut.crossing.filter((c) => !c.graphInput).map((c) => c.name),
      graphInputs: cut.crossing.filter((c) => c.graphInput).map((c) => c.name),
      crossing: cut.crossing,
      chosenBy,
    },
    bytes: cut.bytes,
    bytesExpr: cut.bytesExpr,
    wire: { format: wire, bytes },
    flops: { edge: cut.edgeFlops, cloud: cut.cloudFlops, total: a.totalFlops, edgeByOp: cut.edgeFlopsByOp, cloudByOp: cut.cloudFlopsByOp },
    nodes: { edge: cut.edgeNodes, cloud: cut.cloudNodes },
    hardware: hw,
    estimate: estimateCut({ ...cut, bytes }, hw),
    references: { allCloud: ref.cloudOnly, allEdge: ref.edgeOnly },
  };
}
