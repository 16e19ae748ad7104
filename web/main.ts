/**
 * The playground page: wires the controls to the compile worker and renders what it sends back.
 * Stable hooks for tests (keep them): input#model-file, select#target, select#quantize,
 * button#compile, #status[data-state=idle|compiling|done|error], #validation[data-ok=true|false],
 * #error, a#download.
 */
import type { ModelSummary, ValueSummary } from '../src/cli/inspect.js';
import type { CompileOutcome, FromWorker, TargetInfo, ToWorker } from './protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

type Child = Node | string | number | null | undefined | false;
function h(tag: string, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
const count = (n: number): string => n.toLocaleString('en-US');
const ms = (x: number): string => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : x < 100 ? `${x.toFixed(2)} ms` : `${x.toFixed(0)} ms`);
const sci = (x: number): string => (Number.isFinite(x) ? (x === 0 ? '0' : x.toExponential(2)) : String(x));
const shape = (v: ValueSummary): string => (v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : 'unknown shape');

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const send = (m: ToWorker): void => worker.postMessage(m);

const fileInput = $<HTMLInputElement>('model-file');
const targetSelect = $<HTMLSelectElement>('target');
const quantizeSelect = $<HTMLSelectElement>('quantize');
const compileButton = $<HTMLButtonElement>('compile');
const status = $('status');
let targets: TargetInfo[] = [];
let summary: ModelSummary | undefined;
let downloadUrl: string | undefined;
let busy = false;

function setState(state: 'idle' | 'compiling' | 'done' | 'error', text: string): void {
  status.dataset.state = state;
  $('status-text').textContent = text;
  if (state !== 'compiling') $('bar-fill').style.width = state === 'done' ? '100%' : '0';
  busy = state === 'compiling';
  compileButton.disabled = busy || !summary;
  fileInput.disabled = busy;
}

function showError(message: string | undefined): void {
  const el = $('error');
  el.textContent = message ?? '';
  el.hidden = !message;
}

function markPhase(phase: string | undefined): void {
  let seen = phase === undefined;
  for (const li of Array.from($('phases').children) as HTMLElement[]) {
    const p = li.dataset.phase;
    li.className = p === phase ? 'active' : seen ? '' : 'past';
    if (p === phase) seen = true;
  }
}

// quantize modes a target lacks are disabled, with the reason in the option
function syncQuantize(): void {
  const t = targets.find((x) => x.name === targetSelect.value);
  $('target-hint').textContent = t?.description ?? '';
  for (const opt of Array.from(quantizeSelect.options)) {
    const ok = opt.value === 'none' || !t || t.quantize.includes(opt.value);
    opt.disabled = !ok;
    opt.textContent = `${opt.textContent!.replace(/ \(not for .*\)$/, '')}${ok ? '' : ` (not for ${t!.name})`}`;
  }
  if (quantizeSelect.selectedOptions[0]?.disabled) quantizeSelect.value = 'none';
}
targetSelect.addEventListener('change', syncQuantize);

function chooseFiles(files: File[]): void {
  if (!files.length || busy) return;
  summary = undefined;
  clearResults();
  showError(undefined);
  const main = files.find((f) => /\.onnx$/i.test(f.name)) ?? files[0]!;
  $('drop-title').textContent = main.name;
  $('drop-hint').textContent = `${bytes(files.reduce((n, f) => n + f.size, 0))}${files.length > 1 ? `, with ${files.length - 1} data file${files.length > 2 ? 's' : ''}` : ''}. Drop another to replace it.`;
  setState('idle', 'Reading the model...');
  compileButton.disabled = true;
  send({ kind: 'load', files });
}
fileInput.addEventListener('change', () => chooseFiles(Array.from(fileInput.files ?? [])));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  chooseFiles(Array.from(e.dataTransfer?.files ?? []));
});

compileButton.addEventListener('click', () => {
  if (!summary || busy) return;
  clearResults();
  showError(undefined);
  markPhase('prepare');
  setState('compiling', 'Starting...');
  send({ kind: 'compile', target: targetSelect.value, quantize: quantizeSelect.value as 'none' });
});

function clearResults(): void {
  $('results').hidden = true;
  const a = $<HTMLAnchorElement>('download');
  a.hidden = true;
  a.removeAttribute('href');
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = undefined;
  const v = $('validation');
  v.dataset.ok = '';
  v.replaceChildren();
  markPhase(undefined);
  for (const li of Array.from($('phases').children) as HTMLElement[]) li.className = '';
}

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  switch (m.kind) {
    case 'ready':
      targets = m.targets;
      $('runtime').textContent = m.runtime;
      syncQuantize();
      break;
    case 'loaded':
      summary = m.summary;
      renderModel(m.summary);
      setState('idle', 'Ready: choose a target and compile.');
      break;
    case 'progress': {
      markPhase(m.phase);
      $('status-text').textContent = m.text;
      // the bar: passes fill 5%..70%, validation to 85%, timing to 100%
      const frac = m.index && m.total ? Math.min(1, m.index / m.total) : 0;
      const at = m.phase === 'prepare' ? 3 : m.phase === 'compile' ? 5 + 65 * frac : m.phase === 'validate' ? 72 : m.phase === 'write' ? 80 : 85 + 15 * frac;
      $('bar-fill').style.width = `${at}%`;
      break;
    }
    case 'error':
      showError(m.message);
      if (m.during === 'load') {
        summary = undefined;
        $('model').hidden = true;
        $('empty').hidden = false;
      }
      if (m.outcome) renderOutcome(m.outcome);
      setState('error', m.during === 'load' ? 'The model could not be read.' : 'The compile failed.');
      break;
    case 'done':
      renderOutcome(m.outcome);
      setState('done', `Compiled for ${m.outcome.target}${m.outcome.quantize !== 'none' ? `, ${m.outcome.quantize}` : ''} in ${ms(m.outcome.report.timeMs)}; validated${m.outcome.latency ? ' and timed' : ''}.`);
      markPhase('end');
      break;
  }
};
worker.onerror = (e) => {
  showError(`the compile worker failed: ${e.message}`);
  setState('error', 'The compile worker failed.');
};

// ---- rendering ----

function table(head: string[], rows: Child[][], cls = ''): HTMLElement {
  return h('table', { class: cls },
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', {}, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
}

function tile(label: string, value: Child, sub?: Child, cls = ''): HTMLElement {
  return h('div', { class: `tile ${cls}` }, h('div', { class: 'tile-label' }, label), h('div', { class: 'tile-value' }, value), sub ? h('div', { class: 'tile-sub' }, sub) : null);
}

function renderModel(s: ModelSummary): void {
  const p = s.parameters;
  const values = (vs: ValueSummary[]): HTMLElement => table(['name', 'type', 'shape'], vs.map((v) => [h('code', {}, v.name), v.elemType ?? v.type, h('code', {}, shape(v))]), 'io');
  const hist = Object.entries(s.opHistogram);
  const max = Math.max(1, ...hist.map(([, n]) => n));
  const producer = [s.producer.name, s.producer.version].filter(Boolean).join(' ');
  const el = h('div', { class: 'panel' },
    h('h2', {}, s.file, h('span', { class: 'sub' }, producer ? `from ${producer}` : '')),
    h('div', { class: 'tiles' },
      tile('IR version', s.irVersion),
      tile('Opsets', s.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')),
      tile('Nodes', count(s.nodeCountTotal), s.nodeCountTotal !== s.nodeCount ? `${count(s.nodeCount)} in the main graph` : undefined),
      tile('Parameters', count(p.count), `${count(p.initializers)} initializers, ${bytes(p.bytes)}`),
      tile('File size', bytes(s.fileSize), s.externalData.length ? `${s.externalData.length} external data file(s)` : Object.keys(p.bytesByDtype).join(', '))),
    h('div', { class: 'grid2' },
      h('div', {}, h('h3', {}, `Inputs (${s.inputs.length})`), values(s.inputs), h('h3', {}, `Outputs (${s.outputs.length})`), values(s.outputs)),
      h('div', {}, h('h3', {}, `Operators (${hist.length} kinds)`),
        h('div', { class: 'hist' }, ...hist.slice(0, 14).map(([op, n]) => h('div', { class: 'hist-row' },
          h('span', { class: 'hist-op', title: op }, op.replace(/^ai\.onnx::/, '')), h('span', { class: 'hist-bar' }, h('span', { style: `width:${(100 * n) / max}%` })), h('span', { class: 'hist-n' }, n)))),
        hist.length > 14 ? h('p', { class: 'hint' }, `and ${hist.length - 14} more kinds`) : null)));
  $('model').replaceChildren(el);
  $('model').hidden = false;
  $('empty').hidden = true;
}

function ratioText(before: number, after: number, lowerIsBetter = true): { text: string; cls: string } {
  if (!before) return { text: '', cls: '' };
  const r = after / before;
  if (Math.abs(r - 1) < 0.005) return { text: 'unchanged', cls: '' };
  const better = lowerIsBetter ? r < 1 : r > 1;
  // a few percent either way (the metadata the compile adds) is not worth a colour
  const cls = Math.abs(r - 1) < 0.05 ? '' : better ? 'good' : 'bad';
  return { text: r < 1 ? `${((1 - r) * 100).toFixed(0)}% smaller` : `${((r - 1) * 100).toFixed(0)}% larger`, cls };
}

function renderOutcome(o: CompileOutcome): void {
  $('results').hidden = false;
  const r = o.report;
  const nodes = ratioText(r.before.nodes, r.after.nodes);
  const size = o.sizeAfter ? ratioText(o.sizeBefore, o.sizeAfter) : { text: '', cls: '' };
  const lat = o.latency;
  const speed = lat ? 1 / lat.ratio : undefined;
  $('result-tiles').replaceChildren(
    tile('Nodes', `${count(r.before.nodes)} → ${count(r.after.nodes)}`, nodes.text, nodes.cls),
    tile('Size', o.sizeAfter ? `${bytes(o.sizeBefore)} → ${bytes(o.sizeAfter)}` : bytes(o.sizeBefore), size.text, size.cls),
    lat ? tile('Latency p50', `${ms(lat.original.p50Ms)} → ${ms(lat.compiled.p50Ms)}`,
      lat.ci95[0] <= 1 && lat.ci95[1] >= 1 ? `no clear difference: ${lat.ratio.toFixed(2)}x the time (95% CI ${lat.ci95[0].toFixed(2)}-${lat.ci95[1].toFixed(2)}x), ${lat.timedRuns} runs each` :
      `${speed! >= 1 ? `${speed!.toFixed(2)}x faster (95% CI ${(1 / lat.ci95[1]).toFixed(2)}-${(1 / lat.ci95[0]).toFixed(2)}x)` : `${lat.ratio.toFixed(2)}x slower (95% CI ${lat.ci95[0].toFixed(2)}-${lat.ci95[1].toFixed(2)}x)`}, ${lat.timedRuns} runs each`,
      lat.ci95[1] < 1 ? 'good' : lat.ci95[0] > 1 ? 'bad' : '') : tile('Latency p50', '–', 'not timed'),
    tile('Compile time', ms(r.timeMs), `${r.rewrites} rewrites; validation ${ms(o.phases.validate ?? 0)}`),
    o.validation ? tile('Validation', o.validation.ok ? 'pass' : 'fail', o.validation.tolerance.name, o.validation.ok ? 'good' : 'bad') : tile('Validation', '–', 'not run'),
  );
  renderValidation(o);
  renderPasses(o);
  renderChart(o.report.before.opHistogram, o.report.after.opHistogram);
  const a = $<HTMLAnchorElement>('download');
  if (o.bytes) {
    downloadUrl = URL.createObjectURL(new Blob([o.bytes], { type: 'application/octet-stream' }));
    a.href = downloadUrl;
    a.download = `${o.fileName.replace(/\.onnx$/i, '')}.${o.target}${o.quantize !== 'none' ? `.${o.quantize}` : ''}.onnx`;
    a.textContent = `Download ${a.download} (${bytes(o.sizeAfter)})`;
    a.hidden = false;
  }
  const warnings = r.warnings.length ? h('ul', { class: 'warnings' }, ...r.warnings.map((w) => h('li', {}, w))) : null;
  $('passes-sub').textContent = `${r.passes.length} passes, ${r.rewrites} rewrites`;
  if (warnings) $('passes').append(warnings);
}

function renderValidation(o: CompileOutcome): void {
  const v = o.validation;
  const el = $('validation');
  if (!v) {
    el.dataset.ok = 'false';
    el.replaceChildren(h('p', { class: 'hint' }, 'Not validated: the compiled model was refused before it could run.'));
    $('validation-sub').textContent = '';
    return;
  }
  el.dataset.ok = String(v.ok);
  const w = v.worst;
  const verdict = h('p', { class: `verdict ${v.ok ? 'good' : 'bad'}` },
    h('b', {}, v.ok ? 'Pass' : 'Fail'), ` (${v.tolerance.name})`,
    w ? ` — worst output '${w.output}' on ${w.source}: max abs error ${sci(w.maxAbsError)}${w.element ? `, max rel error ${sci(w.element.relError)}` : ''}, cosine ${w.cosine.toFixed(6)}${w.problem ? ` (${w.problem})` : ''}` : '');
  const rows: Child[][] = [];
  for (const c of v.cases) {
    for (const out of c.outputs) {
      rows.push([
        h('span', { class: `pill ${c.judged === false ? '' : out.ok ? 'good' : 'bad'}` }, c.judged === false ? 'figure' : out.ok ? 'ok' : 'FAIL'),
        h('code', {}, out.name), c.source, h('code', {}, `[${out.shape.join(', ')}]`),
        sci(out.maxAbsError), sci(out.maxRelError), out.cosine.toFixed(6),
        Number.isFinite(out.snrDb) ? `${out.snrDb.toFixed(1)} dB` : '∞',
      ]);
    }
  }
  $('validation-sub').textContent = `${v.cases.length} input set${v.cases.length === 1 ? '' : 's'}, ${o.latency?.runtime ?? 'onnxruntime-web'}`;
  el.replaceChildren(verdict, table(['', 'output', 'inputs', 'shape', 'max |err|', 'max rel err', 'cosine', 'SNR'], rows, 'numeric'));
}

function renderPasses(o: CompileOutcome): void {
  const r = o.report;
  const row = (p: CompileOutcome['report']['passes'][number]): Child[] => [
    h('code', {}, p.name),
    p.skipped ? h('span', { class: 'muted' }, `skipped: ${p.skipped}`) : p.changes ? h('b', {}, count(p.changes)) : h('span', { class: 'muted' }, '0'),
    p.runs, ms(p.timeMs)];
  const changed = r.passes.filter((p) => p.changes > 0);
  const quiet = r.passes.filter((p) => p.changes === 0);
  const head = ['pass', 'changes', 'runs', 'time'];
  const quant = quantizationLine(r.quantization);
  const el = h('div', {},
    changed.length ? table(head, changed.map(row), 'numeric passes') : h('p', { class: 'hint' }, 'No pass changed the model.'),
    quiet.length ? h('details', { class: 'quiet' }, h('summary', {}, `${quiet.length} more pass${quiet.length === 1 ? '' : 'es'} found nothing to change`), table(head, quiet.map(row), 'numeric passes')) : null,
    quant ? h('p', { class: 'quant' }, quant) : null);
  $('passes').replaceChildren(el);
}

/** One line from the quantization pass's report (int8/int4: nodes and weight bytes; fp16: nodes and bytes). */
function quantizationLine(q: Record<string, unknown> | undefined): HTMLElement | undefined {
  if (!q) return undefined;
  const inner = (Object.values(q).find((v) => v && typeof v === 'object' && 'quantized' in (v as object)) ?? q) as Record<string, unknown>;
  const num = (k: string): number | undefined => (typeof inner[k] === 'number' ? inner[k] as number : undefined);
  if (num('quantized') !== undefined) {
    const skipped = Object.entries((inner.skipped ?? {}) as Record<string, number>).map(([why, n]) => `${n} × ${why}`).join('; ');
    const before = num('weightBytesBefore'), after = num('weightBytesAfter');
    return h('span', {}, h('b', {}, `${inner.mode ?? 'quantize'}: ${num('quantized')} node${num('quantized') === 1 ? '' : 's'} quantized`),
      before ? `, their weights ${bytes(before)} → ${bytes(after ?? 0)}` : '', inner.form ? ` (${String(inner.form)})` : '', skipped ? `. Left as they were: ${skipped}.` : '.');
  }
  if (num('convertedNodes') !== undefined) {
    return h('span', {}, h('b', {}, `fp16: ${num('convertedNodes')} nodes in half precision`),
      `, ${num('keptFloat32Nodes') ?? 0} kept in float32; constants ${bytes(num('bytesBefore') ?? 0)} → ${bytes(num('bytesAfter') ?? 0)}.`);
  }
  return undefined;
}

/** A grouped bar chart of op counts, before (grey) and after (accent), in SVG. */
function renderChart(before: Record<string, number>, after: Record<string, number>): void {
  // what the compiled model runs first (most frequent first), then what the passes removed
  const kept = Object.keys(after).sort((a, b) => after[b]! - after[a]! || (before[b] ?? 0) - (before[a] ?? 0) || a.localeCompare(b));
  const removed = Object.keys(before).filter((o) => !(o in after)).sort((a, b) => before[b]! - before[a]! || a.localeCompare(b));
  const ops = [...kept.slice(0, 16), ...removed].slice(0, 20);
  const max = Math.max(1, ...ops.map((o) => Math.max(before[o] ?? 0, after[o] ?? 0)));
  const rowH = 26, labelW = 215, barW = 250, width = labelW + barW + 80;
  // square-root lengths: a model's 200 Constants would otherwise flatten every other bar (the counts are printed)
  const len = (n: number): number => (n ? Math.max(2, (barW * Math.sqrt(n)) / Math.sqrt(max)) : 0);
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag: string, attrs: Record<string, string | number>, text?: string): SVGElement => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const svg = s('svg', { viewBox: `0 0 ${width} ${ops.length * rowH + 30}`, class: 'chart', role: 'img', 'aria-label': 'operator counts before and after' }) as SVGSVGElement;
  ops.forEach((op, i) => {
    const y = 26 + i * rowH;
    const b = before[op] ?? 0, a = after[op] ?? 0;
    const label = op.replace(/^ai\.onnx::/, '').replace(/^com\.microsoft::/, 'ms::');
    const text = s('text', { x: labelW - 8, y: y + 14, 'text-anchor': 'end', class: `chart-label${b === 0 ? ' new' : a === 0 ? ' gone' : ''}` }, label.length > 30 ? `${label.slice(0, 29)}…` : label);
    text.append(s('title', {}, op));
    svg.append(text);
    svg.append(s('rect', { x: labelW, y, width: len(b), height: 9, rx: 2, class: 'chart-before' }));
    svg.append(s('rect', { x: labelW, y: y + 10, width: len(a), height: 9, rx: 2, class: 'chart-after' }));
    svg.append(s('text', { x: labelW + len(Math.max(a, b)) + 6, y: y + 14, class: 'chart-n' }, b === a ? String(a) : `${b} → ${a}`));
  });
  svg.append(s('rect', { x: labelW, y: 4, width: 10, height: 10, rx: 2, class: 'chart-before' }));
  svg.append(s('text', { x: labelW + 14, y: 13, class: 'chart-n' }, 'before'));
  svg.append(s('rect', { x: labelW + 70, y: 4, width: 10, height: 10, rx: 2, class: 'chart-after' }));
  svg.append(s('text', { x: labelW + 84, y: 13, class: 'chart-n' }, 'after'));
  const total = Object.keys({ ...before, ...after }).length;
  const note = `${total > ops.length ? `${ops.length} of ${total} operator kinds. ` : ''}New operators in colour, removed ones struck through; bar length grows with the square root of the count.`;
  $('chart').replaceChildren(svg, h('p', { class: 'hint' }, note));
}
