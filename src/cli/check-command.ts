/** `retarget check`: registered on the program by main.ts. */
import { Command } from 'commander';
import { readModel } from '../node/files.js';
import { hostTarget } from '../node/host.js';
import { checkPlacement, summarizeCpuPlaced, summarizeWithCasts } from '../../targets/capabilities/check.js';
import { findTarget, TARGETS } from '../../targets/index.js';
import { toJson, UsageError } from './shared.js';
import { formatBytes } from './inspect.js';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description("check that a target can run every node of a model (its capability table)")
    .argument('<model>', 'ONNX model file')
    .requiredOption('-t, --target <name>', 'target')
    .option('--json', 'print JSON')
    .action((file: string, opts: { target: string; json?: boolean }) => {
      const target = opts.target === 'host' ? hostTarget() : findTarget(opts.target);
      if (!target) throw new UsageError(`unknown target '${opts.target}' (known: ${[...TARGETS.map((t) => t.name), 'host'].join(', ')})`);
      const { model } = readModel(file);
      // nodes the target's EP lacks but its runtime's CPU fallback runs are a warning, not a refusal
      // so are nodes the runtime runs only through Casts it inserts around them (float16 on ORT's CPU EP)
      const { violations, cpuPlaced, withCasts } = target.capabilities ? checkPlacement(model, target.capabilities) : { violations: [], cpuPlaced: [], withCasts: [] };
      if (opts.json) process.stdout.write(`${toJson({ model: file, target: target.name, source: target.capabilities?.source ?? null, ok: violations.length === 0, violations, cpuPlaced, withCasts })}\n`);
      else {
        if (withCasts.length) {
          process.stdout.write(`warning: ${summarizeWithCasts(withCasts)} (ONNX Runtime inserts them: they run, converting on every run)\n`);
          for (const c of withCasts) process.stdout.write(`  cast  ${c.node}  ${c.domain}::${c.op}  ${c.from} -> ${c.to}\n`);
        }
        if (cpuPlaced.length) {
          process.stdout.write(`warning: ${summarizeCpuPlaced(cpuPlaced, formatBytes)} (ONNX Runtime places them there; they run, with copies between devices)\n`);
          for (const c of cpuPlaced) process.stdout.write(`  cpu  ${c.node}  ${c.domain}::${c.op}  ${c.reason}; crosses ${typeof c.crossBytes === 'number' ? formatBytes(c.crossBytes) : 'unknown (symbolic shape)'}\n`);
        }
        for (const v of violations) process.stdout.write(`${v.node}  ${v.domain}::${v.op}  ${v.reason}\n`);
        const fallback = [cpuPlaced.length ? `${cpuPlaced.length} of them on the CPU EP` : '', withCasts.length ? `${withCasts.length} with casts` : ''].filter(Boolean).map((x) => `, ${x}`).join('');
        process.stdout.write(violations.length ? `${violations.length} node(s) ${target.name} cannot run\n` : `ok: ${target.name} can run every node${fallback}${target.capabilities ? '' : ' (no capability table: any standard op)'}\n`);
      }
      if (violations.length) process.exitCode = 1;
    });
}
