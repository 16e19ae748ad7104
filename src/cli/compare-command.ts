/** `retarget compare`: registered on the program by main.ts. */
import { Command } from 'commander';
import { compareResults, formatCompareMarkdown, parseThreshold, type Thresholds } from '../bench/gate.js';
import { formatJUnit } from '../bench/junit.js';
import { loadBenchResult } from '../bench/report.js';
import { writeTextAtomic } from '../node/files.js';
import { RefusedError } from '../errors.js';

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('compare two `retarget bench --json` results (a CI gate): exit 1 on a regression beyond noise')
    .argument('<baseline>', 'the baseline bench result (JSON)')
    .argument('<current>', 'the current bench result (JSON)')
    .option('--max-regression <t>', 'latency: a regression when the 95% CI of current/baseline is entirely above 1 + t (5% or 0.05)', '5%')
    .option('--max-size-growth <t>', 'model size: a regression when it grows by more than t', '5%')
    .option('--max-accuracy-drop <t>', 'accuracy (when both runs measured it): a regression when the cosine drops by more than t, or outputs stop being ok', '0.001')
    .option('--markdown <file>', 'also write the Markdown summary to a file')
    .option('--junit <file>', 'write JUnit XML (one testcase per model and check) for CI test reporters')
    .action((baselineFile: string, currentFile: string, opts: { maxRegression: string; maxSizeGrowth: string; maxAccuracyDrop: string; markdown?: string; junit?: string }) => {
      // a threshold that is not one is a ThresholdError: a usage error
      const thresholds: Thresholds = {
        maxRegression: parseThreshold(opts.maxRegression, '--max-regression'),
        maxSizeGrowth: parseThreshold(opts.maxSizeGrowth, '--max-size-growth'),
        maxAccuracyDrop: parseThreshold(opts.maxAccuracyDrop, '--max-accuracy-drop'),
      };
      const comparison = compareResults(loadBenchResult(baselineFile), loadBenchResult(currentFile), thresholds);
      if (comparison.environmentDifferences.length) {
        process.stderr.write(`warning: the environments differ (${comparison.environmentDifferences.join('; ')}): the ratios compare different hardware or settings\n`);
      }
      const markdown = formatCompareMarkdown(comparison, { baseline: baselineFile, current: currentFile });
      process.stdout.write(markdown);
      if (opts.markdown) writeTextAtomic(opts.markdown, markdown);
      if (opts.junit) writeTextAtomic(opts.junit, formatJUnit(comparison));
      const n = comparison.failures.length;
      if (n) throw new RefusedError(undefined, `${n} regression${n === 1 ? '' : 's'}: ${comparison.failures.join('; ')}`);
    });
}
