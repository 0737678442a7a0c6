/**
 * CLI start-up benchmark: how much longer `plexus --version` and `plexus volume list` take
 * than `node -e 0`, whole processes. Each round runs every contender once, in a rotated
 * order; the verdict is the median of the per-round ratios (each paired with the round's
 * own `node -e 0`), so a burst of load on the shared machine moves both sides of a ratio.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlexusError } from '../errors.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { median } from './measure.js';

/** The CLI entry point of this package. */
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/plexus.js');

/** The goal: each CLI contender at most this many times `node -e 0`. */
export const STARTUP_TARGET = 1.5;

/** Options of the start-up benchmark. */
export interface StartupBenchOptions {
  /** Rounds (default 30). */
  rounds?: number;
  /** Volumes in the scratch home `volume list` lists (default 3). */
  volumes?: number;
}

/** One contender's times. */
export interface StartupTiming {
  name: string;
  command: string[];
  medianSeconds: number;
  bestSeconds: number;
  /** Median over the rounds of (this contender's time / node -e 0's time in that round); 1 for the baseline. */
  medianRatio: number;
  seconds: number[];
}

/** The result, as stored in bench/results/. */
export interface StartupBenchResult {
  benchmark: 'startup';
  date: string;
  rounds: number;
  machine: MachineInfo;
  node: string;
  loadAverage: { start: number; end: number };
  timings: StartupTiming[];
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

function timeOnce(args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PLEXUS_HOME: '' } });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new PlexusError('E_IO', `node ${args.join(' ')} exited ${r.status}: ${r.stderr?.toString().trim()}`);
  return s;
}

/** Runs the benchmark in a scratch home it removes afterwards. */
export function benchStartup(opts: StartupBenchOptions = {}): StartupBenchResult {
  const rounds = opts.rounds ?? 30;
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 10_000)) throw new PlexusError('E_INVALID', `rounds must be 1 to 10000, got ${rounds}`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-bench-startup-'));
  try {
    const home = path.join(scratch, 'home');
    for (let i = 0; i < (opts.volumes ?? 3); i++) timeOnce([CLI, '--home', home, 'volume', 'create', `v${i}`, '--size', '1M']);
    const contenders = [
      { name: 'node -e 0', command: ['-e', '0'] },
      { name: 'plexus --version', command: [CLI, '--version'] },
      { name: 'plexus volume list', command: [CLI, '--home', home, 'volume', 'list'] },
    ];
    // One warm-up round: the page cache holds node, the modules and the addon for everyone.
    for (const c of contenders) timeOnce(c.command);
    const loadStart = os.loadavg()[0]!;
    const seconds = contenders.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const i = (k + r) % contenders.length;
        seconds[i]!.push(timeOnce(contenders[i]!.command));
      }
    }
    const loadEnd = os.loadavg()[0]!;
    const base = seconds[0]!;
    const timings = contenders.map((c, i) => ({
      ...c,
      medianSeconds: median(seconds[i]!),
      bestSeconds: Math.min(...seconds[i]!),
      medianRatio: median(seconds[i]!.map((s, r) => s / base[r]!)),
      seconds: seconds[i]!,
    }));
    const targets: StartupBenchResult['targets'] = {};
    for (const t of timings.slice(1)) {
      targets[`${t.name} / node -e 0`] = { target: `<= ${STARTUP_TARGET}`, measured: t.medianRatio, met: t.medianRatio <= STARTUP_TARGET };
    }
    return {
      benchmark: 'startup',
      date: new Date().toISOString(),
      rounds,
      machine: describeMachine(),
      node: process.version,
      loadAverage: { start: loadStart, end: loadEnd },
      timings,
      targets,
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
