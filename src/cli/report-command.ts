/** `retarget report`: registered on the program by main.ts. */
import { Command } from 'commander';
import { renderReportHtml } from '../bench/html.js';
import { buildReport, formatReportMarkdown, loadBenchResult, loadPrices, type Report } from '../bench/report.js';
import { writeTextAtomic } from '../node/files.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('merge bench results from several machines and targets: latency, throughput, cost per million inferences, energy, savings')
    .argument('<results...>', 'bench results (JSON) from `retarget bench --json`')
    .option('--prices <file>', 'JSON keyed by environment.machine: { "c7g.xlarge": { "usdPerHour": 0.145, "watts": 30 } }')
    .option('--baseline <machine>', "the machine that savings are computed against (default: the first file's)")
    .option('--markdown <file>', 'also write the Markdown report to a file')
    .option('--html <file>', 'write a self-contained HTML page (tables, SVG charts; no scripts)')
    .action((files: string[], opts: { prices?: string; baseline?: string; markdown?: string; html?: string }) => {
      const prices = opts.prices ? loadPrices(opts.prices) : {};
      const inputs = files.map((file) => ({ file, result: loadBenchResult(file) }));
      // a --baseline that names no machine is a ReportUsageError: a usage error
      const report: Report = buildReport(inputs, prices, opts.baseline !== undefined ? { baseline: opts.baseline } : {});
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      const markdown = formatReportMarkdown(report);
      process.stdout.write(markdown);
      if (opts.markdown) writeTextAtomic(opts.markdown, markdown);
      if (opts.html) writeTextAtomic(opts.html, renderReportHtml(report, { generatedAt: new Date().toISOString() }));
    });
}
