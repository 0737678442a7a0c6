/** `plexus bench copy|resync`: benchmarks with tables, JSON results and SVG plots. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { benchBackup, cacheDescription } from '../../bench/backup.js';
import { benchChunked } from '../../bench/chunked.js';
import { benchCopy } from '../../bench/copy.js';
import { type CachePolicy, saveResult, type Timing } from '../../bench/measure.js';
import { benchResync, DEFAULT_FRACTIONS, DEFAULT_GRANULARITIES, type ResyncBenchResult, type WriteCost } from '../../bench/resync.js';
import { barChart, logLineChart, type Series } from '../../bench/svg.js';
import { PlexusError } from '../../errors.js';
import { formatBytes, formatRate, parseSize } from '../../util/size.js';
import { homeOf, intOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';
import type { ProgressCallback } from '../../progress.js';
import { progressBar } from '../render/progress.js';

const DEFAULT_RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bench/results');

/**
 * Progress of a benchmark on stderr: a bar per stage, each log line ending the bar
 * before it; silent with --json.
 */
function benchReporter(name: string, quiet: boolean): { log: (line: string) => void; onProgress: ProgressCallback; stop: () => void } {
  const tty = Boolean(process.stderr.isTTY) && !quiet;
  let bar = progressBar(name, tty);
  return {
    log: (line) => {
      bar.stop();
      bar = progressBar(name, tty);
      if (!quiet) process.stderr.write(`${line}\n`);
    },
    onProgress: (e) => bar.callback(e),
    stop: () => bar.stop(),
  };
}

/** A benchmark result made of timed contenders and targets. */
interface TimedBench {
  benchmark: string;
  date: string;
  timings: Timing[];
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

/**
 * Stores a timed benchmark's result, plots its throughputs when asked, and prints it:
 * JSON, or the contenders, the targets, `notes` and where the result went.
 */
function printTimedBench(o: { json?: boolean; plot?: string; results: string }, r: TimedBench, chartTitle: string, notes?: string): void {
  const file = saveResult(o.results, r);
  if (o.plot) fs.writeFileSync(o.plot, barChart(chartTitle, 'GiB/s', r.timings.map((t) => ({ label: t.name, value: t.rate / 2 ** 30 }))));
  if (o.json) {
    printJson({ ...r, resultFile: file });
    return;
  }
  printTable(
    ['CONTENDER', 'BEST', 'MEDIAN', 'RATE'],
    r.timings.map((t) => [t.name, `${t.bestSeconds.toFixed(3)} s`, `${t.medianSeconds.toFixed(3)} s`, formatRate(t.rate)]),
  );
  process.stdout.write('\n');
  printTable(
    ['TARGET', 'GOAL', 'MEASURED', 'MET'],
    Object.entries(r.targets).map(([k, v]) => [k, v.target, v.measured.toFixed(3), v.met ? 'yes' : 'NO']),
  );
  process.stdout.write(`${notes ? `\n${notes}` : ''}\nresult: ${file}\n`);
}

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
      const report = benchReporter('copy', Boolean(o.json));
      const r = await benchCopy(homeOf(c), {
        size: parseSize(o.size, 'size'),
        rounds: intOpt(o.rounds, 'rounds', 1, 100),
        threads: intOpt(o.threads, 'threads', 1, 256),
        log: report.log,
        onProgress: report.onProgress,
      });
      report.stop();
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
  bench
    .command('resync')
    .description('differential resync of 0.1%..100% dirty regions vs a full resync and rsync; the write path of split and mirrored primaries')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'repetitions of each case with fresh random regions (best and median reported)', '3')
    .option('--granularities <list>', 'bytes per bitmap bit, comma-separated', DEFAULT_GRANULARITIES.map(formatGranularity).join(','))
    .option('--fractions <list>', 'fractions of the regions dirtied, comma-separated (0.01 or 1%)', DEFAULT_FRACTIONS.join(','))
    .option('--writes <n>', 'random 4 KiB writes per case of the write-path measurement (0 skips it)', '50000')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--seed <n>', 'seed of the data and of the regions dirtied', '7')
    .option('--no-rsync', 'do not compare with rsync (needed when rsync is not installed)')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a chart of resync time against the fraction dirtied')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(async (o: ResyncOpts, c: Command) => {
      const report = benchReporter('copy', Boolean(o.json));
      const r = await benchResync(homeOf(c), {
        size: parseSize(o.size, 'size'),
        rounds: intOpt(o.rounds, 'rounds', 1, 100),
        granularities: o.granularities.split(',').map((g) => parseSize(g, 'granularity')),
        fractions: o.fractions.split(',').map(parseFraction),
        writes: intOpt(o.writes, 'writes', 0, 100_000_000),
        threads: intOpt(o.threads, 'threads', 1, 256),
        seed: intOpt(o.seed, 'seed', 0, 2 ** 32 - 1),
        rsync: o.rsync,
        log: report.log,
        onProgress: report.onProgress,
      });
      report.stop();
      const file = saveResult(o.results, r);
      if (o.plot) fs.writeFileSync(o.plot, resyncChart(r));
      if (o.json) return printJson({ ...r, resultFile: file });
      printResync(r);
      process.stdout.write(`\nload average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores\nresult: ${file}\n`);
    });
  bench
    .command('backup')
    .description('backup and restore through a tape library vs dd and tar; spanning 1 vs 8 cartridges')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds; each ratio is the median of the per-round ratios', '5')
    .option('--cartridges <n>', 'cartridges the spanning job is spread over', '8')
    .option('--cache <mode>', 'start of every contender: drop (page cache, root), fadvise (the files), none (sync only), auto', 'auto')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(async (o: { size: string; rounds: string; cartridges: string; cache: string; json?: boolean; plot?: string; results: string }, c: Command) => {
      if (!['auto', 'drop', 'fadvise', 'none'].includes(o.cache)) throw new PlexusError('E_INVALID', `--cache '${o.cache}' must be auto, drop, fadvise or none`);
      const report = benchReporter('backup', Boolean(o.json));
      const r = await benchBackup(homeOf(c), {
        size: parseSize(o.size, 'size'),
        rounds: intOpt(o.rounds, 'rounds', 1, 100),
        spanCartridges: intOpt(o.cartridges, 'cartridges', 2, 64),
        cache: o.cache as CachePolicy,
        log: report.log,
        onProgress: report.onProgress,
      });
      report.stop();
      const rounds = (xs: number[]): string => xs.map((x) => x.toFixed(3)).join(' ');
      printTimedBench(
        o,
        r,
        `Backup and restore of ${formatBytes(r.sizeBytes)} (best of ${r.rounds}), GiB/s`,
        `ratios are medians of the per-round ratios; per round:\n` +
          `  backup vs dd        ${rounds(r.roundRatios.backupVsDd)}\n` +
          `  restore vs dd       ${rounds(r.roundRatios.restoreVsDd)}\n` +
          `  spanning overhead   ${rounds(r.roundRatios.spanningOverhead)}\n` +
          `every contender started from: ${cacheDescription(r.cache)}\n` +
          `load average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores`,
      );
    });
  bench
    .command('chunked')
    .description('redundant streams: chunked EXTENDED COPY vs single-stream backup, switch-over cost, parallel copies')
    .option('--size <size>', 'volume size', '1G')
    .option('--rounds <n>', 'rounds per contender (best and median reported)', '3')
    .option('--chunk <bytes>', 'bytes per segment command', '10M')
    .option('--json', 'print the result as JSON')
    .option('--plot <file.svg>', 'write a bar chart of the throughputs')
    .option('--results <dir>', 'where to store the JSON result', DEFAULT_RESULTS)
    .action(async (o: { size: string; rounds: string; chunk: string; json?: boolean; plot?: string; results: string }, c: Command) => {
      const report = benchReporter('chunked', Boolean(o.json));
      const r = await benchChunked(homeOf(c), {
        size: parseSize(o.size, 'size'),
        rounds: intOpt(o.rounds, 'rounds', 1, 100),
        chunk: parseSize(o.chunk, 'chunk'),
        log: report.log,
        onProgress: report.onProgress,
      });
      report.stop();
      printTimedBench(
        o,
        r,
        `Backup of ${formatBytes(r.sizeBytes)} by mode (best of ${r.rounds}), GiB/s`,
        `not targets: parallel with every cartridge on the one disk / one stream ${r.parallelSameDiskRatio.toFixed(3)}` +
          (r.chunkingOverheadInMemory === null ? '' : `; chunked / single, cartridges in memory ${r.chunkingOverheadInMemory.toFixed(3)}`) +
          '\nratios are medians of the per-round ratios',
      );
    });
  return bench;
}

interface ResyncOpts {
  size: string;
  rounds: string;
  granularities: string;
  fractions: string;
  writes: string;
  threads?: string;
  seed: string;
  rsync: boolean;
  json?: boolean;
  plot?: string;
  results: string;
}

const formatGranularity = (g: number): string => (g >= 1 << 20 ? `${g / (1 << 20)}M` : `${g / 1024}K`);
const percent = (f: number): string => `${Number((f * 100).toPrecision(3))}%`;
const secs = (s: number): string => (s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(3)} s`);

/** A fraction as `0.01` or `1%`; E_INVALID unless it is in (0, 1]. */
function parseFraction(text: string): number {
  const t = text.trim();
  const m = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(t);
  const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(v > 0 && v <= 1)) throw new PlexusError('E_INVALID', `fraction '${text}' must be a number in (0, 1] or a percentage in (0%, 100%]`);
  return v;
}

/** The result as tables: cases, peers, write path, targets. */
function printResync(r: ResyncBenchResult): void {
  const full = new Map(r.fullResync.map((f) => [f.granularity, f]));
  const rsync = new Map((r.rsync ?? []).map((x) => [x.fraction, x]));
  printTable(
    ['GRANULARITY', 'DIRTY', 'REGIONS', 'COPIED', 'BEST', 'MEDIAN', 'RATE', 'VS FULL', 'VS RSYNC'],
    r.cases.map((c) => {
      const f = full.get(c.granularity);
      const x = rsync.get(c.fraction);
      return [
        formatBytes(c.granularity),
        percent(c.fraction),
        String(c.regions),
        formatBytes(c.bytesCopied),
        secs(c.bestSeconds),
        secs(c.medianSeconds),
        formatRate(c.rate),
        f ? `${(f.bestSeconds / c.bestSeconds).toFixed(1)}x` : '-',
        x ? `${(x.bestSeconds / c.bestSeconds).toFixed(1)}x` : '-',
      ];
    }),
  );
  process.stdout.write('\n');
  const peers: string[][] = r.fullResync.map((f) => [`full resync (pair resync --full), ${formatBytes(f.granularity)}`, '100%', secs(f.bestSeconds), secs(f.medianSeconds), formatRate(f.rate)]);
  peers.push(['full copy (copy engine, no fsync)', '100%', secs(r.plainCopy.bestSeconds), secs(r.plainCopy.medianSeconds), formatRate(r.plainCopy.rate)]);
  for (const x of r.rsync ?? []) peers.push(['rsync --inplace --no-whole-file', percent(x.fraction), secs(x.bestSeconds), secs(x.medianSeconds), '']);
  if (r.wholeProcess) {
    const w = r.wholeProcess;
    peers.push([`plexus pair resync (whole process), ${formatBytes(w.granularity)}`, percent(w.fraction), secs(w.bestSeconds), secs(w.medianSeconds), '']);
  }
  printTable(['CONTENDER', 'DIRTY', 'BEST', 'MEDIAN', 'RATE'], peers);
  if (r.writePath) {
    const w = r.writePath;
    process.stdout.write(`\nwrite path: ${w.writes} random 4 KiB writes per case over ${formatBytes(r.sizeBytes)}, ${formatBytes(w.granularity)} regions\n`);
    const rows: Array<[string, WriteCost]> = [
      ['plain volume', w.plain],
      ['split primary, write intent, region marked (steady)', w.splitIntent],
      ['split primary, no write intent', w.split],
      [`split primary, write intent, new region (${w.newRegionWrites} writes)`, w.splitIntentNew],
      ['PAIR (two copies), write intent, region marked', w.pair],
      [`PAIR, write intent, new region (${w.newRegionWrites} writes)`, w.pairNew],
    ];
    printTable(
      ['WRITE TO', 'MEDIAN NS', 'VS PLAIN', 'MEAN NS', 'VS PLAIN'],
      rows.map(([k, c]) => [k, c.medianNs.toFixed(0), `${(c.medianNs / w.plain.medianNs).toFixed(2)}x`, c.meanNs.toFixed(0), `${(c.meanNs / w.plain.meanNs).toFixed(2)}x`]),
    );
  }
  process.stdout.write('\n');
  printTable(
    ['TARGET', 'GOAL', 'MEASURED', 'MET'],
    Object.entries(r.targets).map(([k, v]) => [k, v.target, v.measured.toFixed(2), v.met ? 'yes' : 'NO']),
  );
}

/** Resync time against the fraction dirtied (both axes logarithmic), with the peers. */
function resyncChart(r: ResyncBenchResult): string {
  const xs = r.fractions.map((f) => f * 100);
  const series: Series[] = r.granularities.map((g) => ({
    label: `resync, ${formatBytes(g)} regions`,
    points: r.cases.filter((c) => c.granularity === g).map((c) => ({ x: c.fraction * 100, y: c.bestSeconds })),
  }));
  const ref = r.fullResync.find((f) => f.granularity === 65536) ?? r.fullResync[0];
  if (ref) series.push({ label: `full resync (${formatBytes(ref.granularity)})`, points: xs.map((x) => ({ x, y: ref.bestSeconds })), dashed: true });
  if (r.rsync && r.rsync.length > 0) {
    series.push({ label: 'rsync --inplace --no-whole-file', points: r.rsync.map((x) => ({ x: x.fraction * 100, y: x.bestSeconds })), dashed: true });
  }
  return logLineChart(`Resync of a ${formatBytes(r.sizeBytes)} pair after random writes (best of ${r.rounds})`, { x: 'regions dirtied (%)', y: 'time (log scale)', xTick: (v) => `${v}%`, yTick: (v) => (v < 1 ? `${Number((v * 1000).toPrecision(3))} ms` : `${v} s`) }, series);
}
