/**
 * Background pair operations: a copy, resync or fill carried on by a detached Plexus
 * process after the caller returns (or exits). The work is run by the `plexus` CLI of
 * this package, so it survives the caller and resumes as any interrupted operation does.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { guarded, PlexusError } from '../errors.js';
import type { Mirrors } from './mirrors.js';
import { PlexSet } from './plexset.js';

/** The CLI entry point of this package (bin/plexus.js), from dist/mirror or src/mirror. */
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/plexus.js');

/** An operation to run in the background. */
export interface BackgroundOperation {
  /** `resync` (also finishes an initial copy) or `fill` (an instant split's background fill). */
  kind: 'resync' | 'fill';
  /** The pairs: of a primary (optionally one plex of it) or of a consistency group. */
  primary?: string;
  plex?: string;
  group?: string;
  full?: boolean;
  reverse?: boolean;
  threads?: number;
  /** Copy pace in bytes per second. */
  maxRate?: number;
  /** Name of the log file in the pair records directory (`NAME.log`; default from the selection). */
  logName?: string;
}

/** The detached process. */
export interface BackgroundReport {
  pid: number;
  /** Where its output goes. */
  log: string;
}

/** The CLI arguments that carry out `op` (after the global --home). */
export function backgroundArgs(op: BackgroundOperation): string[] {
  if ((op.primary === undefined) === (op.group === undefined)) throw new PlexusError('E_INVALID', 'give a primary volume or a group, not both or neither');
  const args = ['pair', op.kind, ...(op.primary !== undefined ? [op.primary] : ['--group', op.group!])];
  if (op.plex !== undefined) args.push('--plex', op.plex);
  if (op.full) args.push('--full');
  if (op.reverse) args.push('--reverse');
  if (op.threads !== undefined) args.push('--threads', String(op.threads));
  if (op.maxRate !== undefined) args.push('--max-rate', String(op.maxRate));
  return args;
}

/**
 * Starts `op` in a detached process. Resolves once that process owns the pairs (or has
 * ended): until then the operation looks interrupted, and a `pair wait` would resume it
 * itself, racing the child.
 */
export function runInBackground(mirrors: Mirrors, op: BackgroundOperation): Promise<BackgroundReport> {
  return guarded(() => start(mirrors, op));
}

async function start(mirrors: Mirrors, op: BackgroundOperation): Promise<BackgroundReport> {
  const args = backgroundArgs(op);
  // E_NOENT now, not in the child's log, when nothing is selected.
  const first = mirrors.select(op.primary !== undefined ? { primary: op.primary, plex: op.plex } : { group: op.group })[0]!.primary;
  const log = path.join(mirrors.records.dir, `${op.logName ?? op.primary ?? `group-${op.group}`}.log`);
  fs.mkdirSync(mirrors.records.dir, { recursive: true });
  const fd = fs.openSync(log, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(process.execPath, [CLI, '--home', mirrors.home.dir, ...args], { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    // The child has its own copy (or there is no child): ours is closed either way.
    fs.closeSync(fd);
  }
  let ended = false;
  child.once('exit', () => (ended = true)).once('error', () => (ended = true));
  const deadline = Date.now() + 10_000;
  while (!ended && Date.now() < deadline && !PlexSet.isOpenElsewhere(mirrors.records, first)) await new Promise((r) => setTimeout(r, 20));
  child.unref();
  return { pid: child.pid ?? -1, log };
}
