/** `plexus bench startup` (declared in ../tree/bench.ts); also bench/startup.mjs. */
import { saveResult } from '../../bench/measure.js';
import { benchStartup } from '../../bench/startup.js';
import { type GlobalOptions, intOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';

/** `bench startup`: prints the contenders, the targets and the load average; stores the result. */
export function runBenchStartup(o: GlobalOptions & { rounds: string; json?: boolean; results: string }): void {
  const r = benchStartup({ rounds: intOpt(o.rounds, 'rounds', 1, 10_000) });
  const file = saveResult(o.results, r);
  if (o.json) {
    printJson({ ...r, resultFile: file });
    return;
  }
  printTable(
    ['CONTENDER', 'BEST', 'MEDIAN', 'RATIO'],
    r.timings.map((t) => [t.name, `${(t.bestSeconds * 1000).toFixed(1)} ms`, `${(t.medianSeconds * 1000).toFixed(1)} ms`, t.medianRatio.toFixed(2)]),
  );
  process.stdout.write('\n');
  printTable(
    ['TARGET', 'GOAL', 'MEASURED', 'MET'],
    Object.entries(r.targets).map(([k, v]) => [k, v.target, v.measured.toFixed(2), v.met ? 'yes' : 'NO']),
  );
  process.stdout.write(
    `\n${r.rounds} rounds; ratios are medians of the per-round ratios\nload average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores\nresult: ${file}\n`,
  );
}
