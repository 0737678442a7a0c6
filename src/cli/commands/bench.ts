/** `plexus bench copy`: benchmarks with tables, JSON results and SVG plots. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { benchCopy, saveResult } from '../../bench/copy.js';
import { barChart } from '../../bench/svg.js';
import { formatBytes, formatRate, parseSize } from '../../util/size.js';
import { homeOf, intOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';

const DEFAULT_RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/results');

/** Registers the bench commands. */
export function benchCommand(): Command {
  const bench = new Command('bench').description('measure Plexus against its peers');
  bench
    .command('copy')
    .description('full volume copy vs dd, memcpy bandwidth, dirty-bitmap kernels')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds per contender (best and median reported)', '3')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(async (o: { size: string; rounds: string; threads?: string; json?: boolean; plot?: string; results: string }, c: Command) => {
      const quiet = Boolean(o.json);
      let bar = progressBar('copy', Boolean(process.stderr.isTTY) && !quiet);
      const r = await benchCopy(homeOf(c), {
        size: parseSize(o.size, 'size'),
        rounds: intOpt(o.rounds, 'rounds', 1, 100),
        threads: intOpt(o.threads, 'threads', 1, 256),
        log: (l) => {
          bar.stop();
          bar = progressBar('copy', Boolean(process.stderr.isTTY) && !quiet);
          if (!quiet) process.stderr.write(`${l}\n`);
        },
        onProgress: (e) => bar.callback(e),
      });
      bar.stop();
      const file = saveResult(o.results, r);
      if (o.plot) {
        fs.writeFileSync(
          o.plot,
          barChart(`Full copy of ${formatBytes(r.sizeBytes)} (best of ${r.rounds}), GiB/s`, 'GiB/s', [
            ...r.timings.map((t) => ({ label: t.name, value: t.rate / 2 ** 30 })),
            { label: 'memcpy (in memory)', value: r.memcpyRate / 2 ** 30 },
          ]),
        );
      }
      if (o.json) return printJson({ ...r, resultFile: file });
      printTable(
        ['CONTENDER', 'BEST', 'MEDIAN', 'RATE'],
        r.timings.map((t) => [t.name, `${t.bestSeconds.toFixed(3)} s`, `${t.medianSeconds.toFixed(3)} s`, formatRate(t.rate)]),
      );
      process.stdout.write(`memcpy bandwidth: ${formatRate(r.memcpyRate)}\n\n`);
      printTable(
        ['TARGET', 'GOAL', 'MEASURED', 'MET'],
        Object.entries(r.targets).map(([k, v]) => [k, v.target, v.measured.toFixed(3), v.met ? 'yes' : 'NO']),
      );
      process.stdout.write(`\nwhole-process ratio vs dd: ${r.ratioVsDdWholeProcess.toFixed(2)}\nresult: ${file}\n`);
    });
  return bench;
}
