/** `plexus pair create|split|resync|display|wait|fill|promote|rotate|stage|delete`: mirrored pairs (declared in ../tree/pair.ts). */
import { PlexusError } from '../../errors.js';
import { runInBackground } from '../../mirror/background.js';
import type { PairInfo, PairSelector } from '../../mirror/mirrors.js';
import { promote, rotate, stage } from '../../mirror/plexes.js';
import { PAIR_STATES, parseState } from '../../mirror/states.js';
import { formatBytes, formatRate, parseSize } from '../../util/size.js';
import { cancellable } from '../cancel.js';
import { type GlobalOptions, intOpt, sizeOpt } from '../context.js';
import { mirrorsOf } from '../mirrors.js';
import { printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';
import { EXIT_TIMEOUT } from '../tree/pair.js';

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

/** `pair create`. */
export async function runPairCreate(
  primary: string,
  secondary: string,
  o: GlobalOptions & { group?: string; allow?: string[]; granularity: string; instant?: boolean; writeIntent: boolean; threads?: string; maxRate?: string; background?: boolean; json?: boolean },
): Promise<void> {
  const mirrors = mirrorsOf(o);
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
    ({ pid } = await runInBackground(mirrors, { kind: o.instant ? 'fill' : 'resync', primary, plex: secondary, threads, maxRate: sizeOpt(o.maxRate, 'max rate'), logName: secondary }));
    info = mirrors.display({ primary, plex: secondary })[0]!;
    if (!o.json) process.stdout.write(`paired ${primary} → ${secondary}; ${o.instant ? 'fill' : 'copy'} running in process ${pid}\n`);
  } else if (!o.json) {
    process.stdout.write(`paired ${primary} → ${secondary}: ${info.state}${info.fillPending ? ' (fill pending)' : ''}\n`);
  }
  if (o.json) printJson(o.background ? { ...info, pid } : info);
}

/** `pair split`. */
export async function runPairSplit(
  primary: string | undefined,
  o: GlobalOptions & SelectOpts & { readOnly?: boolean; allow?: string[]; freeze?: string; thaw?: string; hookTimeout: string; json?: boolean },
): Promise<void> {
  const sel = selector(primary, o);
  const timeout = intOpt(o.hookTimeout, 'hook timeout', 1, 86_400)! * 1000;
  const r = await mirrorsOf(o).split(sel, { readOnly: o.readOnly, allow: o.allow, freeze: o.freeze, thaw: o.thaw, hookTimeoutMs: timeout });
  if (o.json) {
    printJson(r);
    return;
  }
  const hooks = [r.freeze && `freeze ${r.freeze.status} in ${r.freeze.ms} ms`, r.thaw && `thaw ${r.thaw.status} in ${r.thaw.ms} ms`].filter(Boolean).join(', ');
  process.stdout.write(`split ${r.pairs.join(', ')} at ${r.splitAt}${hooks ? `; ${hooks}` : ''}${r.frozenMs !== undefined ? `; frozen for ${r.frozenMs} ms` : ''}\n`);
}

/** `pair resync`. */
export async function runPairResync(
  primary: string | undefined,
  o: GlobalOptions & SelectOpts & { full?: boolean; reverse?: boolean; threads?: string; maxRate?: string; background?: boolean; json?: boolean },
): Promise<void> {
  const sel = selector(primary, o);
  const threads = intOpt(o.threads, 'threads', 1, 256);
  const maxRate = sizeOpt(o.maxRate, 'max rate');
  const mirrors = mirrorsOf(o);
  if (o.background) {
    const { pid } = await runInBackground(mirrors, { kind: 'resync', ...sel, full: o.full, reverse: o.reverse, threads, maxRate });
    if (o.json) printJson({ background: true, pid });
    else process.stdout.write(`resync running in process ${pid}; see plexus pair display\n`);
    return;
  }
  const bar = progressBar(o.reverse ? 'restore' : 'resync', Boolean(process.stderr.isTTY) && !o.json);
  try {
    // Ctrl-C cancels between chunks (E_CANCELLED, exit 130); a rerun resumes.
    const results = await cancellable((signal) => mirrors.resync(sel, { full: o.full, reverse: o.reverse, threads, maxRate, onProgress: bar.callback, signal }));
    bar.stop();
    if (o.json) {
      printJson(results);
      return;
    }
    for (const r of results) {
      const rate = formatRate(r.bytesCopied / Math.max(r.elapsedMs / 1000, 1e-9));
      process.stdout.write(`${r.resumed ? 'resumed and ' : ''}resynced ${r.primary} → ${r.secondary}: copied ${formatBytes(r.bytesCopied)} in ${(r.elapsedMs / 1000).toFixed(2)} s (${rate})\n`);
    }
  } finally {
    bar.stop();
  }
}

/** `pair display`. */
export function runPairDisplay(primary: string | undefined, o: GlobalOptions & SelectOpts & { json?: boolean }): void {
  const mirrors = mirrorsOf(o);
  const list = primary === undefined && o.group === undefined ? mirrors.display() : mirrors.display(selector(primary, o));
  if (o.json) {
    printJson(list);
    return;
  }
  if (list.length === 0) return void process.stdout.write('no pairs\n');
  printTable(['PRIMARY', 'SECONDARY', 'STATE', 'GROUP', 'DIRTY', 'PROGRESS', 'SPLIT AT', 'ACCESS'], list.map(describe));
}

/** `pair wait`. */
export async function runPairWait(primary: string | undefined, o: GlobalOptions & SelectOpts & { state: string; timeout: string }): Promise<void> {
  const state = parseState(o.state);
  if (!state) throw new PlexusError('E_INVALID', `unknown state '${o.state}' (one of ${PAIR_STATES.join(', ')})`);
  const timeout = intOpt(o.timeout, 'timeout', 0, 31_536_000)! * 1000;
  const reached = await mirrorsOf(o).wait(selector(primary, o), state, timeout);
  if (reached) process.stdout.write(`${state}\n`);
  else {
    process.stderr.write(`plexus: timed out after ${o.timeout} s waiting for ${state} (E_TIMEOUT)\n`);
    process.exitCode = EXIT_TIMEOUT;
  }
}

/** `pair fill`. */
export async function runPairFill(primary: string | undefined, o: GlobalOptions & SelectOpts & { threads?: string; maxRate?: string; json?: boolean }): Promise<void> {
  const bar = progressBar('fill', Boolean(process.stderr.isTTY) && !o.json);
  try {
    const r = await cancellable((signal) =>
      mirrorsOf(o).fill(selector(primary, o), { threads: intOpt(o.threads, 'threads', 1, 256), maxRate: sizeOpt(o.maxRate, 'max rate'), onProgress: bar.callback, signal }),
    );
    bar.stop();
    if (o.json) printJson(r);
    else process.stdout.write(`filled ${r.length} instant split${r.length === 1 ? '' : 's'} (${formatBytes(r.reduce((a, x) => a + x.bytesCopied, 0))})\n`);
  } finally {
    bar.stop();
  }
}

/** `pair promote`. */
export function runPairPromote(primary: string, o: GlobalOptions & { plex: string; json?: boolean }): void {
  const r = promote(mirrorsOf(o), primary, o.plex);
  if (o.json) {
    printJson(r);
    return;
  }
  process.stdout.write(
    `promoted ${o.plex} to be the live ${primary} in ${r.elapsedMs} ms; ${formatBytes(r.differingBytes)} differ from the other plexes${r.suspended.length ? ` (${r.suspended.join(', ')} suspended for resync)` : ''}\n`,
  );
}

/** `pair rotate`. */
export async function runPairRotate(primary: string, o: GlobalOptions & { plexes: string; readOnly?: boolean; allow?: string[]; freeze?: string; thaw?: string; json?: boolean }): Promise<void> {
  const bar = progressBar('rejoin', Boolean(process.stderr.isTTY) && !o.json);
  try {
    const plexes = o.plexes
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    const r = await rotate(mirrorsOf(o), primary, plexes, { readOnly: o.readOnly, allow: o.allow, freeze: o.freeze, thaw: o.thaw, onProgress: bar.callback });
    bar.stop();
    if (o.json) {
      printJson(r);
      return;
    }
    process.stdout.write(`${r.rejoined ? `rejoined ${r.rejoined}; ` : ''}detached ${r.detached} as the newest backup at ${r.split.splitAt}\n`);
  } finally {
    bar.stop();
  }
}

/** `pair stage`. */
export async function runPairStage(primary: string, o: GlobalOptions & { plex: string; to: string; freeze?: string; thaw?: string; threads?: string; json?: boolean }): Promise<void> {
  const bar = progressBar('stage', Boolean(process.stderr.isTTY) && !o.json);
  try {
    const r = await stage(mirrorsOf(o), primary, o.plex, o.to, { freeze: o.freeze, thaw: o.thaw, threads: intOpt(o.threads, 'threads', 1, 256), onProgress: bar.callback });
    bar.stop();
    if (o.json) {
      printJson(r);
      return;
    }
    process.stdout.write(`staged ${o.plex} onto ${o.to} (${formatBytes(r.copy.bytesCopied)}); pair resynced, split window ${r.splitWindowMs} ms; back up from ${o.to}\n`);
  } finally {
    bar.stop();
  }
}

/** `pair delete`. */
export function runPairDelete(primary: string, o: GlobalOptions & { plex?: string }): void {
  const gone = mirrorsOf(o).delete(primary, o.plex);
  process.stdout.write(`deleted ${gone.join(', ')}\n`);
}
