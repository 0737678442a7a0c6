/** `plexus pair create|split|resync|display|wait|delete`: mirrored pairs. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { PlexusError } from '../../errors.js';
import type { Mirrors, PairInfo, PairSelector } from '../../mirror/mirrors.js';
import { promote, rotate, stage } from '../../mirror/plexes.js';
import { PlexSet } from '../../mirror/plexset.js';
import { parseState, PAIR_STATES } from '../../mirror/states.js';
import { formatBytes, formatRate, parseSize } from '../../util/size.js';
import { intOpt, mirrorsOf, sizeOpt } from '../context.js';
import { printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';

/** Exit status of `pair wait` when the timeout passes first. */
export const EXIT_TIMEOUT = 3;

interface SelectOpts {
  group?: string;
  plex?: string;
}

function selector(primary: string | undefined, o: SelectOpts): PairSelector {
  if (primary !== undefined && o.group !== undefined) throw new PlexusError('E_INVALID', 'give a primary volume or --group, not both');
  if (primary === undefined && o.group === undefined) throw new PlexusError('E_INVALID', 'give a primary volume or --group');
  if (o.plex !== undefined && primary === undefined) throw new PlexusError('E_INVALID', '--plex needs a primary volume');
  return primary !== undefined ? { primary, plex: o.plex } : { group: o.group };
}

/**
 * Runs this CLI again, detached, to carry on an operation after this process exits.
 * Returns once the child owns the pairs of `primary` (or has ended): until then the
 * operation looks interrupted, and a `pair wait` would resume it itself, racing the child.
 */
async function detach(mirrors: Mirrors, args: string[], logName: string, primary: string): Promise<number> {
  const log = path.join(mirrors.records.dir, `${logName}.log`);
  fs.mkdirSync(mirrors.records.dir, { recursive: true });
  const fd = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [process.argv[1]!, '--home', mirrors.home.dir, ...args], { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  let ended = false;
  child.once('exit', () => (ended = true)).once('error', () => (ended = true));
  const deadline = Date.now() + 10_000;
  while (!ended && Date.now() < deadline && !PlexSet.isOpenElsewhere(mirrors.records, primary)) await new Promise((r) => setTimeout(r, 20));
  child.unref();
  return child.pid ?? -1;
}

/** Ctrl-C (SIGINT) cancels the running operation: the library stops between chunks and
 * throws E_CANCELLED (exit 130). `done` removes the handler. */
function cancelOnSigint(): { signal: AbortSignal; done: () => void } {
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  return { signal: abort.signal, done: () => process.off('SIGINT', onSigint) };
}

function describe(p: PairInfo): string[] {
  const op = p.operation;
  // An interrupted fill resumes with `pair fill`; a resync would end the instant split.
  const resume = op?.kind === 'fill' ? 'fill' : 'resync';
  const progress = op ? `${op.kind} ${op.percent}%${op.interrupted ? ` (interrupted: run \`plexus pair ${resume}\` to resume)` : ''}` : p.fillPending ? 'fill pending' : '-';
  return [
    p.primary,
    p.secondary,
    p.state,
    p.group ?? '-',
    p.dirtyBytes === null ? (p.state === 'PSUE' ? 'all' : '?') : formatBytes(p.dirtyBytes),
    progress,
    p.splitAt ?? '-',
    p.readOnly || p.allow.length > 0 ? `${p.readOnly ? 'ro' : 'rw'}${p.allow.length ? ` allow=${p.allow.join(',')}` : ''}` : '-',
  ];
}

/** Registers the pair commands. */
export function pairCommand(): Command {
  const cmd = new Command('pair').description('mirrored pairs: create, split, resync, display, wait, delete');

  cmd
    .command('create <primary> <secondary>')
    .description('pair two volumes of equal size and copy the primary onto the secondary')
    .option('--group <name>', 'consistency group')
    .option('--granularity <size>', 'bytes per dirty-bitmap bit', '64K')
    .option('--instant', 'split at once without a prior copy; the secondary fills in the background')
    .option('--allow <host...>', 'hosts allowed to access the secondary once it is split (in every state no other host may)')
    .option('--no-write-intent', 'do not fsync a newly dirtied region before acknowledging its write (faster; a crash then needs a full resync)')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--background', 'return at once and copy in a detached process')
    .option('--json', 'print the pair as JSON')
    .action(async (primary: string, secondary: string, o: { group?: string; allow?: string[]; granularity: string; instant?: boolean; writeIntent: boolean; threads?: string; maxRate?: string; background?: boolean; json?: boolean }, c: Command) => {
      const mirrors = mirrorsOf(c);
      const threads = intOpt(o.threads, 'threads', 1, 256);
      const bar = progressBar(o.instant ? `fill ${secondary}` : `copy ${primary} → ${secondary}`, Boolean(process.stderr.isTTY) && !o.json && !o.background);
      let info: PairInfo;
      let pid: number | undefined;
      try {
        info = await mirrors.create(primary, secondary, {
          group: o.group,
          allow: o.allow,
          granularity: parseSize(o.granularity, 'granularity'),
          instant: o.instant,
          writeIntent: o.writeIntent,
          threads,
          maxRate: sizeOpt(o.maxRate, 'max rate'),
          deferCopy: o.background,
          onProgress: bar.callback,
        });
      } finally {
        bar.stop();
      }
      if (o.background) {
        const args = ['pair', o.instant ? 'fill' : 'resync', primary, '--plex', secondary];
        if (o.maxRate) args.push('--max-rate', o.maxRate);
        if (threads) args.push('--threads', String(threads));
        pid = await detach(mirrors, args, secondary, primary);
        info = mirrors.display({ primary, plex: secondary })[0]!;
        if (!o.json) process.stdout.write(`paired ${primary} → ${secondary}; ${o.instant ? 'fill' : 'copy'} running in process ${pid}\n`);
      } else if (!o.json) {
        process.stdout.write(`paired ${primary} → ${secondary}: ${info.state}${info.fillPending ? ' (fill pending)' : ''}\n`);
      }
      if (o.json) printJson(o.background ? { ...info, pid } : info);
    });

  cmd
    .command('split [primary]')
    .description('split pairs at one write boundary; the secondary becomes an independent image')
    .option('--group <name>', 'split every pair of a consistency group together')
    .option('--plex <secondary>', 'split only this plex of the primary')
    .option('--read-only', 'make the split secondary read-only')
    .option('--allow <host...>', 'hosts allowed to access the secondary while split (kept until replaced; no other host may access it in any state)')
    .option('--freeze <cmd>', 'command run before the split (e.g. put a database in backup mode)')
    .option('--thaw <cmd>', 'command run after the split')
    .option('--hook-timeout <seconds>', 'timeout of each hook command', '60')
    .option('--json', 'print the report as JSON')
    .action(async (primary: string | undefined, o: SelectOpts & { readOnly?: boolean; allow?: string[]; freeze?: string; thaw?: string; hookTimeout: string; json?: boolean }, c: Command) => {
      const sel = selector(primary, o);
      const timeout = intOpt(o.hookTimeout, 'hook timeout', 1, 86_400)! * 1000;
      const r = await mirrorsOf(c).split(sel, { readOnly: o.readOnly, allow: o.allow, freeze: o.freeze, thaw: o.thaw, hookTimeoutMs: timeout });
      if (o.json) return printJson(r);
      const hooks = [r.freeze && `freeze ${r.freeze.status} in ${r.freeze.ms} ms`, r.thaw && `thaw ${r.thaw.status} in ${r.thaw.ms} ms`].filter(Boolean).join(', ');
      process.stdout.write(`split ${r.pairs.join(', ')} at ${r.splitAt}${hooks ? `; ${hooks}` : ''}${r.frozenMs !== undefined ? `; frozen for ${r.frozenMs} ms` : ''}\n`);
    });

  cmd
    .command('resync [primary]')
    .description('resynchronise split pairs (only the regions changed on either side), or resume an interrupted copy')
    .option('--group <name>', 'every pair of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--full', 'copy everything, not only the dirty regions')
    .option('--reverse', 'restore the primary from the secondary')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--background', 'return at once and resync in a detached process')
    .option('--json', 'print the report as JSON')
    .action(async (primary: string | undefined, o: SelectOpts & { full?: boolean; reverse?: boolean; threads?: string; maxRate?: string; background?: boolean; json?: boolean }, c: Command) => {
      const sel = selector(primary, o);
      const threads = intOpt(o.threads, 'threads', 1, 256);
      const maxRate = sizeOpt(o.maxRate, 'max rate');
      const mirrors = mirrorsOf(c);
      if (o.background) {
        const [first] = mirrors.select(sel);
        const args = ['pair', 'resync', ...(primary !== undefined ? [primary] : ['--group', o.group!])];
        if (o.plex) args.push('--plex', o.plex);
        if (o.full) args.push('--full');
        if (o.reverse) args.push('--reverse');
        if (threads) args.push('--threads', String(threads));
        if (o.maxRate) args.push('--max-rate', o.maxRate);
        const pid = await detach(mirrors, args, primary ?? `group-${o.group}`, first!.primary);
        if (o.json) printJson({ background: true, pid });
        else process.stdout.write(`resync running in process ${pid}; see plexus pair display\n`);
        return;
      }
      const bar = progressBar(o.reverse ? 'restore' : 'resync', Boolean(process.stderr.isTTY) && !o.json);
      const cancel = cancelOnSigint();
      try {
        const results = await mirrors.resync(sel, { full: o.full, reverse: o.reverse, threads, maxRate, onProgress: bar.callback, signal: cancel.signal });
        bar.stop();
        if (o.json) return printJson(results);
        for (const r of results) {
          const rate = formatRate(r.bytesCopied / Math.max(r.elapsedMs / 1000, 1e-9));
          process.stdout.write(`${r.resumed ? 'resumed and ' : ''}resynced ${r.primary} → ${r.secondary}: copied ${formatBytes(r.bytesCopied)} in ${(r.elapsedMs / 1000).toFixed(2)} s (${rate})\n`);
        }
      } finally {
        bar.stop();
        cancel.done();
      }
    });

  cmd
    .command('display [primary]')
    .description('show pairs: state, copy progress, dirty bytes')
    .option('--group <name>', 'pairs of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--json', 'print JSON')
    .action((primary: string | undefined, o: SelectOpts & { json?: boolean }, c: Command) => {
      const mirrors = mirrorsOf(c);
      const list = primary === undefined && o.group === undefined ? mirrors.display() : mirrors.display(selector(primary, o));
      if (o.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no pairs\n');
      printTable(['PRIMARY', 'SECONDARY', 'STATE', 'GROUP', 'DIRTY', 'PROGRESS', 'SPLIT AT', 'ACCESS'], list.map(describe));
    });

  cmd
    .command('wait [primary]')
    .description(`wait until pairs reach a state (exit 0), or the timeout passes (exit ${EXIT_TIMEOUT})`)
    .requiredOption('--state <state>', `one of ${PAIR_STATES.join(', ')}`)
    .option('--group <name>', 'every pair of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--timeout <seconds>', 'give up after this long', '3600')
    .action(async (primary: string | undefined, o: SelectOpts & { state: string; timeout: string }, c: Command) => {
      const state = parseState(o.state);
      if (!state) throw new PlexusError('E_INVALID', `unknown state '${o.state}' (one of ${PAIR_STATES.join(', ')})`);
      const timeout = intOpt(o.timeout, 'timeout', 0, 31_536_000)! * 1000;
      const reached = await mirrorsOf(c).wait(selector(primary, o), state, timeout);
      if (reached) process.stdout.write(`${state}\n`);
      else {
        process.stderr.write(`plexus: timed out after ${o.timeout} s waiting for ${state} (E_TIMEOUT)\n`);
        process.exitCode = EXIT_TIMEOUT;
      }
    });

  cmd
    .command('fill [primary]')
    .description('finish (or resume) the background fill of instant splits')
    .option('--group <name>', 'every pair of a consistency group')
    .option('--plex <secondary>', 'only this plex of the primary')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--json', 'print the report as JSON')
    .action(async (primary: string | undefined, o: SelectOpts & { threads?: string; maxRate?: string; json?: boolean }, c: Command) => {
      const bar = progressBar('fill', Boolean(process.stderr.isTTY) && !o.json);
      const cancel = cancelOnSigint();
      try {
        const r = await mirrorsOf(c).fill(selector(primary, o), { threads: intOpt(o.threads, 'threads', 1, 256), maxRate: sizeOpt(o.maxRate, 'max rate'), onProgress: bar.callback, signal: cancel.signal });
        bar.stop();
        if (o.json) printJson(r);
        else process.stdout.write(`filled ${r.length} instant split${r.length === 1 ? '' : 's'} (${formatBytes(r.reduce((a, x) => a + x.bytesCopied, 0))})\n`);
      } finally {
        bar.stop();
        cancel.done();
      }
    });

  cmd
    .command('promote <primary>')
    .description('restore in seconds: make a split backup plex the live primary (no copy)')
    .requiredOption('--plex <secondary>', 'the backup plex to promote')
    .option('--json', 'print the report as JSON')
    .action((primary: string, o: { plex: string; json?: boolean }, c: Command) => {
      const r = promote(mirrorsOf(c), primary, o.plex);
      if (o.json) return printJson(r);
      process.stdout.write(`promoted ${o.plex} to be the live ${primary} in ${r.elapsedMs} ms; ${formatBytes(r.differingBytes)} differ from the other plexes${r.suspended.length ? ` (${r.suspended.join(', ')} suspended for resync)` : ''}\n`);
    });

  cmd
    .command('rotate <primary>')
    .description('rotate backup plexes: rejoin the oldest offline plex, then split the mirrored one off')
    .requiredOption('--plexes <list>', 'comma-separated plexes taking part in the rotation')
    .option('--read-only', 'make the new backup plex read-only')
    .option('--allow <host...>', 'hosts allowed to access the new backup plex')
    .option('--freeze <cmd>', 'command run before the split')
    .option('--thaw <cmd>', 'command run after the split')
    .option('--json', 'print the report as JSON')
    .action(async (primary: string, o: { plexes: string; readOnly?: boolean; allow?: string[]; freeze?: string; thaw?: string; json?: boolean }, c: Command) => {
      const bar = progressBar('rejoin', Boolean(process.stderr.isTTY) && !o.json);
      try {
        const plexes = o.plexes.split(',').map((x) => x.trim()).filter(Boolean);
        const r = await rotate(mirrorsOf(c), primary, plexes, { readOnly: o.readOnly, allow: o.allow, freeze: o.freeze, thaw: o.thaw, onProgress: bar.callback });
        bar.stop();
        if (o.json) return printJson(r);
        process.stdout.write(`${r.rejoined ? `rejoined ${r.rejoined}; ` : ''}detached ${r.detached} as the newest backup at ${r.split.splitAt}\n`);
      } finally {
        bar.stop();
      }
    });

  cmd
    .command('stage <primary>')
    .description('split, copy the split image to a third volume, resync the pair at once')
    .requiredOption('--plex <secondary>', 'the plex to split')
    .requiredOption('--to <volume>', 'the staging volume (created if missing)')
    .option('--freeze <cmd>', 'command run before the split')
    .option('--thaw <cmd>', 'command run after the split')
    .option('--threads <n>', 'copy threads (default: one per core)')
    .option('--json', 'print the report as JSON')
    .action(async (primary: string, o: { plex: string; to: string; freeze?: string; thaw?: string; threads?: string; json?: boolean }, c: Command) => {
      const bar = progressBar('stage', Boolean(process.stderr.isTTY) && !o.json);
      try {
        const r = await stage(mirrorsOf(c), primary, o.plex, o.to, { freeze: o.freeze, thaw: o.thaw, threads: intOpt(o.threads, 'threads', 1, 256), onProgress: bar.callback });
        bar.stop();
        if (o.json) return printJson(r);
        process.stdout.write(`staged ${o.plex} onto ${o.to} (${formatBytes(r.copy.bytesCopied)}); pair resynced, split window ${r.splitWindowMs} ms; back up from ${o.to}\n`);
      } finally {
        bar.stop();
      }
    });

  cmd
    .command('delete <primary>')
    .description('dissolve pairs (back to SMPL); both volumes are kept')
    .option('--plex <secondary>', 'only this plex of the primary')
    .action((primary: string, o: { plex?: string }, c: Command) => {
      const gone = mirrorsOf(c).delete(primary, o.plex);
      process.stdout.write(`deleted ${gone.join(', ')}\n`);
    });

  return cmd;
}
