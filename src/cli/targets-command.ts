/** `retarget targets`: registered on the program by main.ts. */
import { Command } from 'commander';
import { detectHost } from '../node/host.js';
import { TARGETS } from '../../targets/index.js';
import { toJson } from './shared.js';

export function registerTargets(program: Command): void {
  program
    .command('targets')
    .description('list the targets (host: the one this machine gets)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const host = detectHost();
      if (opts.json) {
        const slim = TARGETS.map(({ capabilities, ...t }) => ({ ...t, ...(capabilities ? { capabilities: { source: capabilities.source, domains: capabilities.domains, ops: Object.keys(capabilities.kernels).length } } : {}) }));
        process.stdout.write(`${toJson({ targets: slim, host: { chosen: host.chosen, why: host.why } })}\n`);
        return;
      }
      for (const t of TARGETS) process.stdout.write(`${t.name.padEnd(12)} ${t.description}\n`);
      process.stdout.write(`${'host'.padEnd(12)} this machine: ${host.chosen} (${host.why})\n`);
    });
}
