/** `plexus bench copy|resync|backup|chunked`: benchmarks with tables, JSON results and SVG plots (declared in ../tree/bench.ts). */
import fs from 'node:fs';
import { benchBackup, cacheDescription } from '../../bench/backup.js';
import { benchChunked } from '../../bench/chunked.js';
import { benchCopy } from '../../bench/copy.js';
import { benchDisk } from '../../bench/disk-target.js';
import { type CachePolicy, median, saveResult, type Timing } from '../../bench/measure.js';
import type { ModelSweep } from '../../bench/model.js';
import type { ModelCosts } from '../../bench/model-costs.js';
import { benchResync, type ResyncBenchResult, type WriteCost } from '../../bench/resync.js';
import { barChart, logLineChart, type Series } from '../../bench/svg.js';
import { PlexusError } from '../../errors.js';
import type { ProgressCallback } from '../../progress.js';
import { formatBytes, formatRate, parseSize } from '../../util/size.js';
import { type GlobalOptions, homeOf, intOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';

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
  if (o.plot)
    fs.writeFileSync(
      o.plot,
      barChart(
        chartTitle,
        'GiB/s',
        r.timings.map((t) => ({ label: t.name, value: t.rate / 2 ** 30 })),
      ),
    );
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

/** `bench copy`. */
export async function runBenchCopy(
  o: GlobalOptions & { size: string; rounds: string; threads?: string; sparse?: boolean; data: string; json?: boolean; plot?: string; results: string },
): Promise<void> {
  if (o.sparse) return runBenchSparse(o);
  const report = benchReporter('copy', Boolean(o.json));
  const r = await benchCopy(homeOf(o, { create: true }), {
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
  if (o.json) {
    printJson({ ...r, resultFile: file });
    return;
  }
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
}

/** `bench resync`. */
export async function runBenchResync(o: GlobalOptions & ResyncOpts): Promise<void> {
  const report = benchReporter('copy', Boolean(o.json));
  const r = await benchResync(homeOf(o, { create: true }), {
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
  if (o.json) {
    printJson({ ...r, resultFile: file });
    return;
  }
  printResync(r);
  process.stdout.write(`\nload average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores\nresult: ${file}\n`);
}

/** `bench backup`. */
export async function runBenchBackup(o: GlobalOptions & { size: string; rounds: string; cartridges: string; cache: string; json?: boolean; plot?: string; results: string }): Promise<void> {
  if (!['auto', 'drop', 'fadvise', 'none'].includes(o.cache)) throw new PlexusError('E_INVALID', `--cache '${o.cache}' must be auto, drop, fadvise or none`);
  const report = benchReporter('backup', Boolean(o.json));
  const r = await benchBackup(homeOf(o, { create: true }), {
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
}

/** `bench chunked`. */
export async function runBenchChunked(o: GlobalOptions & { size: string; rounds: string; chunk: string; json?: boolean; plot?: string; results: string }): Promise<void> {
  const report = benchReporter('chunked', Boolean(o.json));
  const r = await benchChunked(homeOf(o, { create: true }), {
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
  return logLineChart(
    `Resync of a ${formatBytes(r.sizeBytes)} pair after random writes (best of ${r.rounds})`,
    { x: 'regions dirtied (%)', y: 'time (log scale)', xTick: (v) => `${v}%`, yTick: (v) => (v < 1 ? `${Number((v * 1000).toPrecision(3))} ms` : `${v} s`) },
    series,
  );
}

/** `bench nbd`. */
export async function runBenchNbd(o: GlobalOptions & { size: string; rounds: string; random: string; json?: boolean; plot?: string; results: string }): Promise<void> {
  const { benchNbd } = await import('../../bench/nbd.js');
  const report = benchReporter('nbd', Boolean(o.json));
  const r = await benchNbd(homeOf(o, { create: true }), {
    size: parseSize(o.size, 'size'),
    rounds: intOpt(o.rounds, 'rounds', 1, 100),
    randomBytes: parseSize(o.random, 'random bytes'),
    log: report.log,
    onProgress: report.onProgress,
  });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.plot) {
    fs.writeFileSync(
      o.plot,
      barChart(`NBD: nbdcopy of ${formatBytes(r.sizeBytes)} (best of ${r.rounds}), GiB/s`, 'GiB/s', [
        ...r.write.map((t) => ({ label: `write ${t.name}`, value: t.rate / 2 ** 30 })),
        ...r.read.map((t) => ({ label: `read ${t.name}`, value: t.rate / 2 ** 30 })),
      ]),
    );
  }
  if (o.json) {
    printJson({ ...r, resultFile: file });
    return;
  }
  printTable(
    ['NBDCOPY', 'BEST', 'MEDIAN', 'RATE'],
    [...r.write.map((t) => [`write ${t.name}`, t]), ...r.read.map((t) => [`read ${t.name}`, t])].map(([n, t]) => {
      const x = t as (typeof r.write)[number];
      return [n as string, `${x.bestSeconds.toFixed(3)} s`, `${x.medianSeconds.toFixed(3)} s`, formatRate(x.rate)];
    }),
  );
  process.stdout.write('\n');
  printTable(
    ['4K RANDOM WRITES', 'MEDIAN IOPS', 'ROUNDS'],
    r.randomWrite.map((t) => [t.name, t.medianIops.toFixed(0), t.iops.map((x) => x.toFixed(0)).join(' ')]),
  );
  process.stdout.write('\n');
  printTable(
    ['TARGET', 'GOAL', 'MEASURED', 'MET'],
    Object.entries(r.targets).map(([k, v]) => [k, v.target, v.measured.toFixed(3), v.met ? 'yes' : 'NO']),
  );
  process.stdout.write(
    `\npeers: ${Object.values(r.peers).join('; ')}\nload average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores\nresult: ${file}\n`,
  );
}

/** `bench replay`. */
export async function runBenchReplay(o: GlobalOptions & { rounds: string; window: string; windowBytes: string; json?: boolean; results: string }): Promise<void> {
  const { benchReplay } = await import('../../bench/replay.js');
  const report = benchReporter('replay', Boolean(o.json));
  const r = await benchReplay({ rounds: intOpt(o.rounds, 'rounds', 1, 100), window: intOpt(o.window, 'window', 1, 1 << 20), windowBytes: parseSize(o.windowBytes, 'window bytes'), log: report.log });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  printTable(
    ['RECORD', 'RECORDS/S', 'APPLIED', 'MEMCPY', 'SHARE'],
    r.cases.map((c) => [
      formatBytes(c.recordBytes),
      `${(c.medianRecordsPerSecond / 1e6).toFixed(2)} M`,
      formatRate(median(c.bytesPerSecond)),
      formatRate(median(c.memcpyBytesPerSecond)),
      c.medianRatio.toFixed(2),
    ]),
  );
  process.stdout.write('\n');
  printTargets(r.targets, r.loadAverage, file);
}

/** `bench catalog`. */
export async function runBenchCatalog(o: GlobalOptions & { jobs: string; segments: string; cartridges: string; rounds: string; json?: boolean; results: string }): Promise<void> {
  const { benchCatalog } = await import('../../bench/catalog-scale.js');
  const report = benchReporter('catalog', Boolean(o.json));
  const r = await benchCatalog(homeOf(o, { create: true }), {
    jobs: intOpt(o.jobs, 'jobs', 2, 10_000_000),
    segments: intOpt(o.segments, 'segments', 2, 100_000_000),
    cartridges: intOpt(o.cartridges, 'cartridges', 1, 1_000_000),
    rounds: intOpt(o.rounds, 'rounds', 1, 100),
    log: report.log,
  });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  printTable(
    ['OPERATION', 'MEDIAN', 'BEST', 'ROWS', 'FULL SCANS'],
    r.operations.map((op) => [op.name, `${op.medianMs.toFixed(2)} ms`, `${op.bestMs.toFixed(2)} ms`, String(op.rows), String(op.fullScans.length)]),
  );
  process.stdout.write('\n');
  printTable(
    ['REBUILD --LIBRARY', 'CARTRIDGES', 'SEGMENTS', 'OF', 'MEDIAN'],
    r.rebuild.map((b) => [b.library, String(b.cartridges), String(b.segments), String(b.catalogSegments), `${b.medianMs.toFixed(1)} ms`]),
  );
  process.stdout.write('\n');
  printTargets(r.targets, r.loadAverage, file);
}

/** A `--cache` option, checked. */
function cacheOpt(text: string): CachePolicy {
  if (!['auto', 'drop', 'fadvise', 'none'].includes(text)) throw new PlexusError('E_INVALID', `--cache '${text}' must be auto, drop, fadvise or none`);
  return text as CachePolicy;
}

/** `bench restore`. */
export async function runBenchRestore(o: GlobalOptions & { size: string; rounds: string; cache: string; json?: boolean; results: string }): Promise<void> {
  const { benchRestoreVolume } = await import('../../bench/operations.js');
  const report = benchReporter('restore', Boolean(o.json));
  const r = await benchRestoreVolume(homeOf(o, { create: true }), {
    size: parseSize(o.size, 'size'),
    rounds: intOpt(o.rounds, 'rounds', 1, 100),
    cache: cacheOpt(o.cache),
    log: report.log,
    onProgress: report.onProgress,
  });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  const row = (name: string, xs: number[]) => [name, `${median(xs).toFixed(3)} s`, formatRate(r.sizeBytes / median(xs)), xs.map((x) => x.toFixed(3)).join(' ')];
  printTable(
    ['RESTORE', 'MEDIAN', 'RATE', 'ROUNDS'],
    [row('to a file', r.seconds.toFile), row('into a volume', r.seconds.toVolume), row('into a mirrored primary (duplexed)', r.seconds.toMirroredPrimary)],
  );
  process.stdout.write(`\n${formatBytes(r.sizeBytes)} job, cache ${r.cache}\n\n`);
  printTargets(r.targets, r.loadAverage, file);
}

/** `bench split`. */
export async function runBenchSplit(o: GlobalOptions & { sizes: string; rounds: string; json?: boolean; results: string }): Promise<void> {
  const { benchSplitFreeze } = await import('../../bench/operations.js');
  const report = benchReporter('split', Boolean(o.json));
  const r = await benchSplitFreeze(homeOf(o, { create: true }), {
    sizes: o.sizes.split(',').map((x) => parseSize(x.trim(), 'size')),
    rounds: intOpt(o.rounds, 'rounds', 1, 100),
    log: report.log,
    onProgress: report.onProgress,
  });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  printTable(
    ['PRIMARY', 'FROZEN (MEDIAN)', 'OF WHICH HOOKS', 'ROUNDS'],
    r.cases.map((c) => [formatBytes(c.sizeBytes), `${c.medianFrozenMs} ms`, `${median(c.hookMs)} ms`, c.frozenMs.join(' ')]),
  );
  process.stdout.write('\n');
  printTargets(r.targets, r.loadAverage, file);
}

/** `bench scale`: the checkpoint and mark costs (src/bench/scale-costs.ts) and the catalog's (bench catalog). */
export async function runBenchScale(
  o: GlobalOptions & { sizes: string; data: string; markRounds: string; jobs: string; segments: string; cartridges: string; json?: boolean; results: string },
): Promise<void> {
  const { benchScaleCosts } = await import('../../bench/scale-costs.js');
  const { benchCatalog } = await import('../../bench/catalog-scale.js');
  const report = benchReporter('scale', Boolean(o.json));
  const sizes = o.sizes.split(',').map((x) => parseSize(x.trim(), 'size'));
  const jobs = intOpt(o.jobs, 'jobs', 0, 10_000_000)!;
  const home = homeOf(o, { create: true });
  const costs = await benchScaleCosts({ dir: home.dir, sizes, data: parseSize(o.data, 'data'), markRounds: intOpt(o.markRounds, 'mark rounds', 1, 100), log: report.log });
  const catalog =
    jobs > 0
      ? await benchCatalog(home, { jobs, segments: intOpt(o.segments, 'segments', 2, 100_000_000), cartridges: intOpt(o.cartridges, 'cartridges', 1, 1_000_000), rounds: 5, log: report.log })
      : undefined;
  report.stop();
  const targets = { ...costs.targets, ...Object.fromEntries(Object.entries(catalog?.targets ?? {}).map(([k, v]) => [`catalog: ${k}`, v])) };
  const r = {
    benchmark: 'scale',
    date: costs.date,
    machine: costs.machine,
    costs,
    catalog,
    targets,
    loadAverage: { start: costs.loadAverage.start, end: catalog?.loadAverage.end ?? costs.loadAverage.end },
  };
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  printTable(
    ['VOLUME', 'DATA', 'SIDECAR BYTES', 'SYNCS', 'PER GIB COPIED', 'COPY'],
    costs.checkpoints.map((c) => [
      formatBytes(c.sizeBytes),
      formatBytes(c.dataBytes),
      String(c.sidecarBytes),
      String(c.sidecarSyncs),
      `${c.perGiBCopied.bytes.toFixed(0)} B, ${c.perGiBCopied.syncs.toFixed(1)} syncs`,
      `${c.medianSeconds.toFixed(2)} s`,
    ]),
  );
  process.stdout.write(
    `\ndurable marks: 1 writer ${costs.marks.one.medianMarksPerSecond.toFixed(0)}/s, 8 writers ${costs.marks.eight.medianMarksPerSecond.toFixed(0)}/s (${costs.marks.eight.marksPerSync.toFixed(1)} marks per fdatasync), median ratio ${costs.marks.medianRatio.toFixed(2)}\n\n`,
  );
  if (catalog) {
    printTable(
      ['CATALOG OPERATION', 'MEDIAN', 'ROWS'],
      catalog.operations.map((op) => [op.name, `${op.medianMs.toFixed(2)} ms`, String(op.rows)]),
    );
    process.stdout.write('\n');
  }
  printTargets(targets, r.loadAverage, file);
}

/** `bench replicate`. */
export async function runBenchReplicate(o: GlobalOptions & { size: string; rounds: string; delay: string; json?: boolean; results: string }): Promise<void> {
  const { benchReplicate } = await import('../../bench/replicate.js');
  const report = benchReporter('replicate', Boolean(o.json));
  const r = await benchReplicate(homeOf(o, { create: true }), {
    size: parseSize(o.size, 'size'),
    rounds: intOpt(o.rounds, 'rounds', 1, 100),
    delayMs: intOpt(o.delay, 'delay', 0, 10_000),
    log: report.log,
    onProgress: report.onProgress,
  });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  printTable(
    ['CONTENDER', 'MEDIAN RATE', 'ROUNDS'],
    [
      ['loopback TCP copy', r.tcp],
      ['replication drain', r.drain],
      ['replication live burst', r.live],
      ['the writer alone (not replicated)', r.writer],
      [`TCP copy, ${r.delayMs} ms link`, r.tcpDelayed],
      [`replication drain, ${r.delayMs} ms link`, r.drainDelayed],
    ].map(([n, xs]) => [n as string, formatRate(median(xs as number[])), (xs as number[]).map((x) => formatRate(x)).join(' ')]),
  );
  process.stdout.write(
    `\nlag after a live burst: ${median(r.lagAfterBurstSeconds).toFixed(2)} s; idle sync-wait: ${median(r.syncWaitIdleMs.control).toFixed(2)} ms (control socket), ${median(r.syncWaitIdleMs.command).toFixed(0)} ms (whole command)\n\n`,
  );
  printTargets(r.targets, r.loadAverage, file);
}

function printTargets(targets: Record<string, { target: string; measured: number; met: boolean }>, load: { start: number; end: number }, file: string): void {
  printTable(
    ['TARGET', 'GOAL', 'MEASURED', 'MET'],
    Object.entries(targets).map(([k, v]) => [k, v.target, v.measured >= 1000 ? v.measured.toFixed(0) : v.measured.toFixed(3), v.met ? 'yes' : 'NO']),
  );
  process.stdout.write(`load average ${load.start.toFixed(2)} → ${load.end.toFixed(2)}; result ${file}\n`);
}

/** `bench copy --sparse` (the default size is 16 GiB there). */
async function runBenchSparse(o: GlobalOptions & { size: string; rounds: string; data: string; json?: boolean; results: string }): Promise<void> {
  const { benchSparse } = await import('../../bench/sparse.js');
  const report = benchReporter('copy --sparse', Boolean(o.json));
  const size = o.size === '1G' ? 16 * 2 ** 30 : parseSize(o.size, 'size');
  const r = await benchSparse(homeOf(o, { create: true }), { size, data: parseSize(o.data, 'data'), rounds: intOpt(o.rounds, 'rounds', 1, 100), log: report.log, onProgress: report.onProgress });
  report.stop();
  const file = saveResult(o.results, r);
  if (o.json) return printJson({ ...r, resultFile: file });
  printTable(
    ['CONTENDER', 'MEDIAN', 'ALLOCATED', 'ROUNDS'],
    r.contenders.map((c) => [c.name, `${median(c.seconds).toFixed(3)} s`, formatBytes(median(c.allocated)), c.seconds.map((x) => x.toFixed(3)).join(' ')]),
  );
  process.stdout.write(`\n${formatBytes(r.dataBytes)} of data in a ${formatBytes(r.sizeBytes)} volume\n\n`);
  printTargets(r.targets, r.loadAverage, file);
}

interface ModelOpts {
  volumes: string;
  minSize: string;
  maxSize: string;
  allocated: string;
  fractions: string;
  drives: string;
  cartridge: string;
  window: string;
  seed: string;
  costs?: string;
  secondsPerGib?: string;
  jobOverhead?: string;
  cartridgeChange?: string;
  sampleSize: string;
  rounds: string;
  cache: string;
  json?: boolean;
  plot?: string;
  svg?: string;
  results: string;
}

/** A size that may have a decimal point (`2.5T`, `18T`, `800G`); whole sizes as `parseSize`. */
function parseDecimalSize(text: string, what: string): number {
  const m = /^\s*(\d+\.\d+)\s*([kmgtp])(i?b)?\s*$/i.exec(text);
  if (!m) return parseSize(text, what);
  return Math.round(Number(m[1]) * 1024 ** ' kmgtp'.indexOf(m[2]!.toLowerCase()));
}

/** A duration as `8h`, `7h30m`, `90m`, `1.5h`, `3600s` or `h:mm`, in seconds; E_INVALID unless positive. */
function parseDuration(text: string, what: string): number {
  const t = text.trim();
  const clock = /^(\d+):([0-5]\d)$/.exec(t);
  const units = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/i.exec(t);
  const s = clock ? Number(clock[1]) * 3600 + Number(clock[2]) * 60 : units && t !== '' ? Number(units[1] ?? 0) * 3600 + Number(units[2] ?? 0) * 60 + Number(units[3] ?? 0) : NaN;
  if (!(s > 0)) throw new PlexusError('E_INVALID', `${what} '${text}' must be a positive duration such as 8h, 7h30m, 90m or 6:00`);
  return s;
}

/** A non-negative number of seconds given on the command line. */
function secondsOpt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (text.trim() === '' || !(v >= 0 && Number.isFinite(v))) throw new PlexusError('E_INVALID', `${what} must be a number of seconds >= 0, got '${text}'`);
  return v;
}

/** `bench model`: the costs (given, or measured now), then the simulated sweep. */
export async function runBenchModel(o: GlobalOptions & ModelOpts): Promise<void> {
  const { runModel, hoursMinutes } = await import('../../bench/model.js');
  const { measureCosts, readCosts } = await import('../../bench/model-costs.js');
  const { describeMachine } = await import('../../bench/machine.js');
  const { loadAverage } = await import('../../bench/measure.js');
  if (!['auto', 'drop', 'fadvise', 'none'].includes(o.cache)) throw new PlexusError('E_INVALID', `--cache '${o.cache}' must be auto, drop, fadvise or none`);
  const flags = {
    secondsPerGiB: secondsOpt(o.secondsPerGib, '--seconds-per-gib'),
    jobOverheadSeconds: secondsOpt(o.jobOverhead, '--job-overhead'),
    cartridgeChangeSeconds: secondsOpt(o.cartridgeChange, '--cartridge-change'),
  };
  if (flags.secondsPerGiB === 0) throw new PlexusError('E_INVALID', '--seconds-per-gib must be above 0');
  // Everything but the costs is checked before a measurement that takes a while.
  const sweep = {
    volumes: intOpt(o.volumes, 'volumes', 1, 10_000_000)!,
    minBytes: parseDecimalSize(o.minSize, 'min size'),
    maxBytes: parseDecimalSize(o.maxSize, 'max size'),
    allocatedFraction: parseFraction(o.allocated),
    fractions: o.fractions.split(',').map(parseFraction),
    driveCounts: o.drives.split(',').map((d) => intOpt(d.trim(), 'drives', 1, 1_000_000)!),
    cartridgeBytes: parseDecimalSize(o.cartridge, 'cartridge'),
    windowSeconds: parseDuration(o.window, 'window'),
    seed: intOpt(o.seed, 'seed', 0, 2 ** 32 - 1)!,
  };
  if (sweep.cartridgeBytes <= 0) throw new PlexusError('E_INVALID', '--cartridge must be above 0');
  const sampleBytes = parseSize(o.sampleSize, 'sample size');
  const rounds = intOpt(o.rounds, 'rounds', 1, 100)!;
  const loadStart = loadAverage();
  const allFlags = Object.values(flags).every((v) => v !== undefined);
  let base: ModelCosts;
  if (o.costs !== undefined) base = readCosts(o.costs);
  else if (allFlags) base = { source: 'flags', secondsPerGiB: flags.secondsPerGiB!, jobOverheadSeconds: flags.jobOverheadSeconds!, cartridgeChangeSeconds: flags.cartridgeChangeSeconds! };
  else {
    const report = benchReporter('model costs', Boolean(o.json));
    base = await measureCosts(homeOf(o, { create: true }), { sampleBytes, rounds, cache: o.cache as CachePolicy, log: report.log, onProgress: report.onProgress });
    report.stop();
  }
  const costs = {
    ...base,
    secondsPerGiB: flags.secondsPerGiB ?? base.secondsPerGiB,
    jobOverheadSeconds: flags.jobOverheadSeconds ?? base.jobOverheadSeconds,
    cartridgeChangeSeconds: flags.cartridgeChangeSeconds ?? base.cartridgeChangeSeconds,
  };
  const model = runModel({ ...sweep, costs });
  const r = { benchmark: 'model', date: new Date().toISOString(), machine: describeMachine(), loadAverage: { start: loadStart, end: loadAverage() }, costs, ...model };
  const file = saveResult(o.results, r);
  const plot = o.plot ?? o.svg;
  if (plot) fs.writeFileSync(plot, modelChart(model));
  if (o.json) return printJson({ ...r, resultFile: file });

  const f = model.fleet;
  const measured = costs.measurement;
  process.stdout.write(
    `fleet: ${f.volumes} volumes of ${formatBytes(f.minBytes)} to ${formatBytes(f.maxBytes)} (log-uniform, seed ${f.seed}), ${percent(f.allocatedFraction)} allocated: ` +
      `${formatBytes(f.allocatedBytes)} in all, the largest ${formatBytes(f.largestAllocatedBytes)}\n` +
      `costs (${costs.source === 'measured' && measured ? `measured: ${formatBytes(measured.sampleBytes)} sample, median of ${measured.rounds} rounds` : costs.source === 'file' ? `from ${costs.file}` : 'given'}` +
      `${costs.source !== 'flags' && (o.secondsPerGib ?? o.jobOverhead ?? o.cartridgeChange) !== undefined ? ', overridden by flags' : ''}): ` +
      `${costs.secondsPerGiB.toFixed(3)} s per GiB (${formatRate(2 ** 30 / costs.secondsPerGiB)} per drive), ` +
      `${secs(costs.jobOverheadSeconds)} per job, ${secs(costs.cartridgeChangeSeconds)} per cartridge change\n` +
      `cartridge ${formatBytes(model.cartridgeBytes)}; window ${hoursMinutes(model.windowSeconds)}; each cell: window needed (h:mm) and drive utilisation\n\n`,
  );
  const cell = (fr: number, d: number) => model.cells.find((c) => c.dirtyFraction === fr && c.drives === d)!;
  let over = false;
  printTable(
    ['DIRTY', 'BYTES', 'JOBS', ...model.driveCounts.map((d) => `${d} DRIVES`)],
    model.fractions.map((fr) => {
      const first = cell(fr, model.driveCounts[0]!);
      return [
        percent(fr),
        formatBytes(first.bytes),
        String(first.jobs),
        ...model.driveCounts.map((d) => {
          const c = cell(fr, d);
          over ||= !c.fits;
          return `${hoursMinutes(c.makespanSeconds)} ${(c.utilisation * 100).toFixed(0)}%${c.fits ? '' : ' *'}`;
        }),
      ];
    }),
  );
  process.stdout.write(
    `${over ? `* does not fit the ${hoursMinutes(model.windowSeconds)} window\n` : ''}\nload average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores\nresult: ${file}\n`,
  );
}

/** A tick of an hours axis in the unit a reader plans in: 36 s, 6 min, 1 h. */
function hoursTick(h: number): string {
  const s = h * 3600;
  if (s < 60) return `${Number(s.toPrecision(2))} s`;
  return s < 3600 ? `${Number((s / 60).toPrecision(2))} min` : `${Number(h.toPrecision(3))} h`;
}

/** The window needed against the dirty fraction (both axes logarithmic), a line per drive count, and the window. */
function modelChart(m: ModelSweep): string {
  const xs = m.fractions.map((f) => f * 100);
  const series: Series[] = m.driveCounts.map((d) => ({
    label: `${d} drives`,
    points: m.cells.filter((c) => c.drives === d).map((c) => ({ x: c.dirtyFraction * 100, y: c.makespanSeconds / 3600 })),
  }));
  series.push({ label: `window (${Number((m.windowSeconds / 3600).toPrecision(3))} h)`, points: xs.map((x) => ({ x, y: m.windowSeconds / 3600 })), dashed: true });
  return logLineChart(
    `Nightly backup of ${m.fleet.volumes} volumes (${formatBytes(m.fleet.allocatedBytes)} allocated): window needed`,
    { x: 'dirty fraction of a night (%)', y: 'window needed (log scale)', xTick: (v) => `${v}%`, yTick: hoursTick },
    series,
  );
}

/** `bench disk`. */
export async function runBenchDisk(o: GlobalOptions & { size: string; rounds: string; dir?: string; cache: string; json?: boolean; plot?: string; results: string }): Promise<void> {
  if (!['auto', 'drop', 'fadvise', 'none'].includes(o.cache)) throw new PlexusError('E_INVALID', `--cache '${o.cache}' must be auto, drop, fadvise or none`);
  const report = benchReporter('disk', Boolean(o.json));
  const r = await benchDisk(homeOf(o, { create: true }), {
    size: parseSize(o.size, 'size'),
    rounds: intOpt(o.rounds, 'rounds', 1, 100),
    dir: o.dir,
    cache: o.cache as CachePolicy,
    log: report.log,
    onProgress: report.onProgress,
  });
  report.stop();
  printTimedBench(
    o,
    r,
    `Backup of ${formatBytes(r.sizeBytes)} to a disk library vs dd (best of ${r.rounds}), GiB/s`,
    `the ratio is the median of the per-round ratios; per round: ${r.roundRatios.diskVsDd.map((x) => x.toFixed(3)).join(' ')}\n` +
      `written to ${r.dir} (${r.fileSystem}${r.sourceOnSameFileSystem ? ', the file system of the source volume too' : ''})\n` +
      `every contender started from: ${cacheDescription(r.cache)} (the source cached for both)\n` +
      `load average (1 min) at start / end: ${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)} on ${r.machine.cores} cores`,
  );
}
