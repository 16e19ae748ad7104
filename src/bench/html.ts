/**
 * The cost report as one self-contained HTML page: inline CSS, inline SVG bar charts drawn here,
 * no scripts, no fonts or styles from elsewhere, so it can be archived as a CI artifact and opened
 * offline.
 */
import { fmtNum } from './gate.js';
import { fmtUsd, REPORT_HEADERS, reportCells, sortedRows, type Report, type ReportRow } from './report.js';

export function htmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export interface Bar { group: string; label: string; value: number; text: string; color: string }

/**
 * A horizontal bar chart, bars grouped (one group per model), the value written after each bar.
 * Scaled to the largest value; bars of a value that is not finite are left out.
 */
export function barChartSvg(title: string, bars: Bar[]): string {
  const shown = bars.filter((b) => Number.isFinite(b.value) && b.value >= 0);
  const width = 760, labelW = 250, valueW = 110, barW = width - labelW - valueW - 20;
  const rowH = 22, groupH = 24, top = 34;
  const max = Math.max(...shown.map((b) => b.value), 0) || 1;
  const parts: string[] = [];
  let y = top;
  let group: string | undefined;
  for (const b of shown) {
    if (b.group !== group) {
      group = b.group;
      y += 4;
      parts.push(`<text x="8" y="${y + 15}" class="g">${htmlEscape(b.group)}</text>`);
      y += groupH;
    }
    const w = Math.max(1, (b.value / max) * barW);
    parts.push(`<text x="${labelW - 8}" y="${y + 15}" text-anchor="end">${htmlEscape(b.label)}</text>`);
    parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" rx="2" fill="${b.color}"><title>${htmlEscape(`${b.group} · ${b.label}: ${b.text}`)}</title></rect>`);
    parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}">${htmlEscape(b.text)}</text>`);
    y += rowH;
  }
  if (!shown.length) {
    parts.push(`<text x="8" y="${y + 15}">no data</text>`);
    y += rowH;
  }
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${htmlEscape(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`
    + `<style>text{font:12px system-ui,sans-serif;fill:#222}.t{font-weight:600;font-size:14px}.g{font-weight:600}</style>`
    + `<text x="8" y="20" class="t">${htmlEscape(title)}</text>${parts.join('')}</svg>`;
}

function machineColors(r: Report): Map<string, string> {
  return new Map(r.machines.map((m, i) => [m.machine, PALETTE[i % PALETTE.length]!]));
}

function rowLabel(row: ReportRow): string {
  return row.target ? `${row.machine} (${row.target})` : row.machine;
}

export function renderReportHtml(r: Report, opts: { title?: string; generatedAt?: string } = {}): string {
  const title = opts.title ?? 'retarget report';
  const colors = machineColors(r);
  const rows = sortedRows(r);
  const latencyBars: Bar[] = rows.map((row) => ({ group: row.model, label: rowLabel(row), value: row.p50Ms, text: `${fmtNum(row.p50Ms)} ms`, color: colors.get(row.machine)! }));
  const costRows = rows.filter((row) => row.costPerMillionUsd !== undefined);
  const costBars: Bar[] = costRows.map((row) => ({ group: row.model, label: rowLabel(row), value: row.costPerMillionUsd!, text: fmtUsd(row.costPerMillionUsd!), color: colors.get(row.machine)! }));

  const machineTable = [
    '<table><thead><tr><th>machine</th><th>CPU</th><th>arch</th><th class="n">cores</th><th class="n">threads</th><th class="n">$ / hour</th><th class="n">watts</th></tr></thead><tbody>',
    ...r.machines.map((m) => `<tr><td><span class="sw" style="background:${colors.get(m.machine)}"></span>${htmlEscape(m.machine)}${m.machine === r.baselineMachine ? ' <em>(baseline)</em>' : ''}</td><td>${htmlEscape(m.cpuModel)}</td><td>${htmlEscape(m.arch)}</td><td class="n">${m.cores}</td><td class="n">${m.threads}</td><td class="n">${m.usdPerHour !== undefined ? fmtUsd(m.usdPerHour) : 'n/a'}</td><td class="n">${m.watts ?? 'n/a'}</td></tr>`),
    '</tbody></table>',
  ].join('\n');
  const resultTable = [
    `<table><thead><tr>${REPORT_HEADERS.map((h, i) => `<th${i >= 3 ? ' class="n"' : ''}>${htmlEscape(h)}</th>`).join('')}</tr></thead><tbody>`,
    ...rows.map((row) => {
      const cells = reportCells(row, r.baselineMachine);
      const saving = row.vsBaseline?.savingsUsdPerMillion;
      const cls = saving === undefined ? '' : saving > 0 ? ' class="good"' : saving < 0 ? ' class="bad"' : '';
      return `<tr${cls}>${cells.map((c, i) => `<td${i >= 3 ? ' class="n"' : ''}>${htmlEscape(c)}</td>`).join('')}</tr>`;
    }),
    '</tbody></table>',
  ].join('\n');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${htmlEscape(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#666;font-size:12px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}
td.n,th.n{text-align:right}
tr.good td:last-child{color:#1a7f37}tr.bad td:last-child{color:#cf222e}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.note{color:#555;font-size:13px;max-width:900px}
.warn{background:#fff8c5;border:1px solid #e3d27a;padding:6px 10px;border-radius:4px;margin:6px 0}
svg{display:block;margin:8px 0;max-width:100%;height:auto}
</style>
</head>
<body>
<h1>${htmlEscape(title)}</h1>
<div class="meta">${htmlEscape(`${r.rows.length} results from ${r.machines.length} machine${r.machines.length === 1 ? '' : 's'}${r.baselineMachine ? `; baseline ${r.baselineMachine}` : ''}${opts.generatedAt ? `; generated ${opts.generatedAt}` : ''}`)}</div>
${r.warnings.map((w) => `<div class="warn">${htmlEscape(w)}</div>`).join('\n')}
<h2>Machines</h2>
${machineTable}
<h2>Results</h2>
${resultTable}
<p class="note">Cost per million inferences = $/hour ÷ 3600 ÷ throughput × 10<sup>6</sup>, one stream at the benchmarked batch and threads; energy per inference = watts ÷ throughput.${r.baselineMachine ? ` Speedup and savings compare the same model on ${htmlEscape(r.baselineMachine)}.` : ''}</p>
<h2>Latency</h2>
${barChartSvg('p50 latency per machine (ms, lower is better)', latencyBars)}
<h2>Cost</h2>
${costBars.length ? barChartSvg('cost per million inferences per machine (USD, lower is better)', costBars) : '<p class="note">No prices given (--prices prices.json): no cost chart.</p>'}
</body>
</html>
`;
}
