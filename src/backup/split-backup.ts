/**
 * The split-mirror backup in one command (JP 2002-041345, Fig. 2): the application is
 * put in backup mode (freeze), the mirror split, the application resumed (thaw), the
 * split image backed up, and the pair resynced, each step logged. Whatever fails, the
 * application is thawed (a thaw always follows a freeze that succeeded) and the pair is
 * left resynced or resyncable: a backup that fails still resyncs the pair; a resync that
 * fails leaves it split with its dirty bitmap, for `pair resync`.
 *
 * With `stage`, the split image is first copied to a staging volume and the pair
 * resynced at once (the second embodiment, [0044]: a shorter split window); the staging
 * volume is then backed up.
 *
 * With `pool` (Fig. 19 of the same patent's English part: replicas taken from a free
 * pool), a primary with no pair in PAIR borrows the first free volume of the pool: the
 * pair is created (its initial copy), split, the image backed up, and the pair deleted,
 * so the volume goes back to the pool whatever happened.
 *
 * A plain backup can run the same hooks: freeze, back up, thaw (`runHookedBackup`).
 */
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { describeHook, type HookResult, runHook } from '../mirror/hooks.js';
import { Mirrors, type ResyncResult, type SplitReport } from '../mirror/mirrors.js';
import { stage } from '../mirror/plexes.js';
import type { PairRecord } from '../mirror/record.js';
import { failpoint } from '../util/failpoints.js';
import { type BackupOptions, type BackupReport, runBackup } from './backup.js';

/** Options of a split backup. */
export interface SplitBackupOptions extends BackupOptions {
  /** The pair's secondary to split (default: the primary's only pair in PAIR). */
  plex?: string;
  /** Shell command putting the application in backup mode (e.g. `fsfreeze -f MNT`). */
  freeze?: string;
  /** Shell command resuming it. */
  thaw?: string;
  /** Longest a hook may run (default 60 s). */
  hookTimeoutMs?: number;
  /** Copy the split image to this volume, resync at once, and back up the copy. */
  stage?: string;
  /** Free volumes to borrow a secondary from when the primary has no pair in PAIR. */
  pool?: string[];
  /** Told each step of the flow as it ends (the agent logs them; a terminal shows them). */
  onStep?: (step: FlowStep) => void;
}

/** One line for a step, as logs show it. */
export function describeStep(s: FlowStep): string {
  return `${s.step}: ${s.ok ? 'ok' : 'FAILED'} in ${s.ms} ms${s.detail ? ` (${s.detail})` : ''}`;
}

/** One step of the flow as it happened. */
export interface FlowStep {
  step: 'pair' | 'freeze' | 'split' | 'thaw' | 'stage' | 'backup' | 'resync' | 'return';
  ok: boolean;
  ms: number;
  detail: string;
}

/** What a split backup did. */
export interface SplitBackupReport {
  primary: string;
  plex: string;
  /** The volume backed up: the split secondary, or the staging volume. */
  source: string;
  splitAt: string;
  /** From the start of the freeze command to the end of the thaw command (no hooks: the split alone). */
  frozenMs: number;
  freeze?: HookResult;
  thaw?: HookResult;
  backup: BackupReport;
  resync: ResyncResult[];
  steps: FlowStep[];
  elapsedMs: number;
}

/** The split backup of `primary` (see the module notes). Every failure is a PlexusError naming what was left. */
export async function runSplitBackup(home: Home, primary: string, opts: SplitBackupOptions = {}): Promise<SplitBackupReport> {
  const started = Date.now();
  const mirrors = new Mirrors(home);
  const steps: FlowStep[] = [];
  const step = (s: FlowStep): void => {
    steps.push(s);
    opts.onStep?.(s);
  };
  const borrowed = opts.pool && opts.pool.length > 0 && opts.plex === undefined && !mirrors.records.ofPrimary(primary).some((p) => p.state === 'PAIR');
  if (!borrowed) return flow(home, mirrors, primary, choosePair(mirrors, primary, opts.plex).secondary, opts, steps, step, started);
  if (opts.stage !== undefined) throw new PlexusError('E_INVALID', '--stage does not combine with --pool: the borrowed volume is the copy');
  const plex = borrowFromPool(mirrors, primary, opts.pool!);
  const t = Date.now();
  try {
    await mirrors.create(primary, plex, { onProgress: opts.onProgress });
  } catch (e) {
    step({ step: 'pair', ok: false, ms: Date.now() - t, detail: (e as Error).message });
    giveBack(mirrors, primary, plex, step);
    throw e;
  }
  step({ step: 'pair', ok: true, ms: Date.now() - t, detail: `${plex} borrowed from the pool and paired with ${primary} (initial copy)` });
  try {
    return await flow(home, mirrors, primary, plex, { ...opts, returnToPool: true }, steps, step, started);
  } finally {
    giveBack(mirrors, primary, plex, step);
  }
}

/** The first volume of `pool` that is in no pair and large enough for `primary`; E_RESOURCES when none is. */
function borrowFromPool(mirrors: Mirrors, primary: string, pool: readonly string[]): string {
  const size = mirrors.store.open(primary, { readOnly: true }).info().size;
  const taken = new Set(mirrors.records.all().flatMap((r) => [r.primary, r.secondary]));
  const why: string[] = [];
  for (const v of pool) {
    if (v === primary) continue;
    if (taken.has(v)) {
      why.push(`${v} is in a pair`);
      continue;
    }
    if (!mirrors.store.exists(v)) {
      why.push(`${v} does not exist`);
      continue;
    }
    const s = mirrors.store.open(v, { readOnly: true }).info().size;
    if (s < size) {
      why.push(`${v} is smaller (${s} bytes)`);
      continue;
    }
    return v;
  }
  throw new PlexusError('E_RESOURCES', `no free volume in the pool for ${primary} (${size} bytes): ${why.join('; ') || 'the pool is empty'}`);
}

/** Deletes the borrowed pair, so its volume is free again; a failure is a step, not an exception. */
function giveBack(mirrors: Mirrors, primary: string, plex: string, step: (s: FlowStep) => void): void {
  if (!mirrors.records.ofPrimary(primary).some((r) => r.secondary === plex)) return;
  const t = Date.now();
  try {
    mirrors.delete(primary, plex);
    step({ step: 'return', ok: true, ms: Date.now() - t, detail: `pair ${primary} → ${plex} deleted: ${plex} is free in the pool again` });
  } catch (e) {
    step({ step: 'return', ok: false, ms: Date.now() - t, detail: `${(e as Error).message}; delete it with plexus pair delete ${primary} --plex ${plex}` });
  }
}

/** Freeze, split, thaw, back up, resync (or, for a borrowed volume, leave the resync to its return). */
async function flow(
  home: Home,
  mirrors: Mirrors,
  primary: string,
  plex: string,
  opts: SplitBackupOptions & { returnToPool?: boolean },
  steps: FlowStep[],
  step: (s: FlowStep) => void,
  started: number,
): Promise<SplitBackupReport> {
  const hooks = { freeze: opts.freeze, thaw: opts.thaw, hookTimeoutMs: opts.hookTimeoutMs };

  // Freeze, split, thaw: Mirrors.split runs the hooks around the split and thaws
  // whatever the split did; a failed freeze splits nothing and runs no thaw.
  let split: SplitReport;
  let resync: ResyncResult[] = [];
  let source = plex;
  const t0 = Date.now();
  try {
    if (opts.stage !== undefined) {
      const r = await stage(mirrors, primary, plex, opts.stage, { ...hooks, onProgress: opts.onProgress });
      split = r.split;
      resync = r.resync;
      source = opts.stage;
      recordSplit(step, split);
      step({ step: 'stage', ok: true, ms: r.splitWindowMs, detail: `${plex} copied to ${opts.stage}, ${r.copy.bytesCopied} bytes; pair resynced` });
    } else {
      split = await mirrors.split({ primary, plex }, hooks);
      recordSplit(step, split);
    }
  } catch (e) {
    const f = e instanceof PlexusError ? e : new PlexusError('E_IO', String(e));
    step({ step: 'split', ok: false, ms: Date.now() - t0, detail: f.message });
    throw new PlexusError(f.code, `split backup of ${primary}: ${f.message}; the pair ${primary} → ${plex} is as it was (${stateOf(mirrors, primary, plex)})`, { cause: e });
  }

  // Back up the image; resync whether or not that worked.
  let backup: BackupReport | undefined;
  let backupError: unknown;
  const t1 = Date.now();
  try {
    failpoint('split-backup.backup');
    // Only the primary's size is mirrored: a larger secondary's tail is not the image.
    const length = mirrors.store.open(primary, { readOnly: true }).info().size;
    backup = await runBackup(home, source, { ...opts, length });
    step({ step: 'backup', ok: true, ms: Date.now() - t1, detail: `job ${backup.job}: ${backup.bytes} bytes of ${source} on ${backup.cartridges.join(', ')}` });
  } catch (e) {
    backupError = e;
    step({ step: 'backup', ok: false, ms: Date.now() - t1, detail: (e as Error).message });
  }
  if (opts.stage === undefined && !opts.returnToPool) {
    const t2 = Date.now();
    try {
      failpoint('split-backup.resync');
      resync = await mirrors.resync({ primary, plex }, { onProgress: opts.onProgress });
      step({ step: 'resync', ok: true, ms: Date.now() - t2, detail: `${resync.reduce((a, r) => a + r.bytesCopied, 0)} bytes copied` });
    } catch (e) {
      step({ step: 'resync', ok: false, ms: Date.now() - t2, detail: (e as Error).message });
      const f = e instanceof PlexusError ? e : new PlexusError('E_IO', String(e));
      const why = backupError ? `the backup failed (${(backupError as Error).message}) and ` : '';
      throw new PlexusError(f.code, `split backup of ${primary}: ${why}the resync failed: ${f.message}; the pair stays split and resyncable (\`plexus pair resync ${primary}\`)`, { cause: e });
    }
  }
  if (backupError !== undefined || !backup) {
    const f = backupError instanceof PlexusError ? backupError : new PlexusError('E_IO', String(backupError));
    const pair = opts.returnToPool ? 'the borrowed volume goes back to the pool' : 'the pair resynced';
    throw new PlexusError(f.code, `split backup of ${primary}: the backup of ${source} failed: ${f.message}; the application was thawed and ${pair}`, { cause: backupError });
  }
  return {
    primary,
    plex,
    source,
    splitAt: split.splitAt,
    frozenMs: split.frozenMs ?? 0,
    freeze: split.freeze,
    thaw: split.thaw,
    backup,
    resync,
    steps,
    elapsedMs: Date.now() - started,
  };
}

/** The steps of a split as its report tells them. */
function recordSplit(step: (s: FlowStep) => void, split: SplitReport): void {
  if (split.freeze) step({ step: 'freeze', ok: true, ms: split.freeze.ms, detail: describeHook('freeze', split.freeze) });
  step({ step: 'split', ok: true, ms: split.splitMs, detail: `${split.pairs.join(', ')} at ${split.splitAt}` });
  if (split.thaw) step({ step: 'thaw', ok: true, ms: split.thaw.ms, detail: describeHook('thaw', split.thaw) });
}

function stateOf(mirrors: Mirrors, primary: string, plex: string): string {
  return mirrors.records.ofPrimary(primary).find((r) => r.secondary === plex)?.state ?? 'gone';
}

/** The pair to split: `plex`, or the primary's only pair in PAIR. */
function choosePair(mirrors: Mirrors, primary: string, plex?: string): PairRecord {
  const pairs = mirrors.records.ofPrimary(primary);
  if (pairs.length === 0) throw new PlexusError('E_NOENT', `volume ${primary} has no pair to split; create one (plexus pair create ${primary} SECONDARY) or back it up directly`);
  if (plex !== undefined) {
    const r = pairs.find((p) => p.secondary === plex);
    if (!r) throw new PlexusError('E_NOENT', `no pair ${primary} → ${plex}`);
    if (r.state !== 'PAIR') throw new PlexusError('E_STATE', `pair ${primary} → ${plex} is in ${r.state}; a split backup starts from PAIR (resync it first)`);
    return r;
  }
  const mirrored = pairs.filter((p) => p.state === 'PAIR');
  if (mirrored.length === 1) return mirrored[0]!;
  if (mirrored.length === 0) throw new PlexusError('E_STATE', `no pair of ${primary} is in PAIR (${pairs.map((p) => `${p.secondary}: ${p.state}`).join(', ')}); resync one first`);
  throw new PlexusError('E_INVALID', `${primary} has ${mirrored.length} pairs in PAIR (${mirrored.map((p) => p.secondary).join(', ')}); name one with --plex`);
}

/** What a hooked plain backup did. */
export interface HookedBackupReport extends BackupReport {
  freeze?: HookResult;
  thaw?: HookResult;
  /** From the start of the freeze command to the end of the thaw command. */
  frozenMs?: number;
}

/**
 * A plain backup between a freeze and a thaw: the application stays in backup mode for
 * the whole backup (no mirror to split). The thaw runs however the backup ends.
 */
export async function runHookedBackup(home: Home, source: string, opts: BackupOptions & { freeze?: string; thaw?: string; hookTimeoutMs?: number }): Promise<HookedBackupReport> {
  const timeout = opts.hookTimeoutMs ?? 60_000;
  const started = Date.now();
  const freeze = opts.freeze ? await runHook('freeze', opts.freeze, timeout) : undefined;
  let report: BackupReport | undefined;
  let failure: unknown;
  try {
    report = await runBackup(home, source, opts);
  } catch (e) {
    failure = e;
  }
  let thaw: HookResult | undefined;
  let thawError: unknown;
  if (opts.thaw) {
    try {
      thaw = await runHook('thaw', opts.thaw, timeout);
    } catch (e) {
      thawError = e;
    }
  }
  if (failure !== undefined) {
    const f = failure instanceof PlexusError ? failure : new PlexusError('E_IO', String(failure));
    const after = thawError ? `; and ${(thawError as Error).message}` : thaw ? '; the thaw ran' : '';
    throw new PlexusError(f.code, `${f.message}${after}`, { cause: failure });
  }
  if (thawError !== undefined)
    throw new PlexusError((thawError as PlexusError).code ?? 'E_HOOK', `the backup succeeded (job ${report!.job}), but ${(thawError as Error).message}`, { cause: thawError });
  return { ...report!, freeze, thaw, frozenMs: freeze || thaw ? Date.now() - started : undefined };
}
