/** `plexus pair create|split|resync|display|wait|fill|promote|rotate|stage|delete|checkpoint`: mirrored pairs (declared in ../tree/pair.ts). */
import { PlexusError } from '../../errors.js';
import { runInBackground } from '../../mirror/background.js';
import type { CheckpointReport, PairInfo, PairSelector, ResyncResult, SplitReport } from '../../mirror/mirrors.js';
import { type PromoteReport, promote, type RotateReport, rotate, type StageReport, stage } from '../../mirror/plexes.js';
import type { MirrorCopyReport } from '../../mirror/plexset.js';
import { PAIR_STATES, parseState } from '../../mirror/states.js';
import { formatBytes, formatRate, parseSize } from '../../util/size.js';
import { agentOf, ask } from '../agent.js';
import { cancellable } from '../cancel.js';
import { type GlobalOptions, intOpt, sizeOpt } from '../context.js';
import { mirrorsOf } from '../mirrors.js';
import { printJson, printTable } from '../render/output.js';
import { progressBar } from '../render/progress.js';
import { EXIT_TIMEOUT } from '../tree/pair.js';
import { type GroupDisplay, printRemoteGroups } from './remote-display.js';

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
  const threads = intOpt(o.threads, 'threads', 1, 256);
  const bar = progressBar(o.instant ? `fill ${secondary}` : `copy ${primary} → ${secondary}`, Boolean(process.stderr.isTTY) && !o.json && !o.background);
  const agent = await agentOf(o);
  if (agent) {
    const params = {
      primary,
      secondary,
      group: o.group,
      allow: o.allow,
      granularity: parseSize(o.granularity, 'granularity'),
      instant: o.instant,
      noWriteIntent: o.writeIntent ? undefined : true,
      threads,
      maxRate: sizeOpt(o.maxRate, 'max rate'),
      background: o.background,
    };
    let r: PairInfo & { job?: string };
    try {
      r = await cancellable((signal) => ask<PairInfo & { job?: string }>(agent, 'pair.create', params, { onProgress: bar.callback, signal }));
    } finally {
      bar.stop();
    }
    if (o.json) printJson(r);
    else if (r.job !== undefined) process.stdout.write(`paired ${primary} → ${secondary}; ${o.instant ? 'fill' : 'copy'} running as agent job ${r.job} (plexus jobs)\n`);
    else process.stdout.write(`paired ${primary} → ${secondary}: ${r.state}${r.fillPending ? ' (fill pending)' : ''}\n`);
    return;
  }
  const mirrors = mirrorsOf(o);
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
  const opts = { readOnly: o.readOnly, allow: o.allow, freeze: o.freeze, thaw: o.thaw, hookTimeoutMs: timeout };
  const agent = await agentOf(o);
  const r = agent ? await ask<SplitReport>(agent, 'pair.split', { ...sel, ...opts }) : await mirrorsOf(o).split(sel, opts);
  if (o.json) {
    printJson(r);
    return;
  }
  const remote = r as unknown as { group?: string; state?: string; foldedBytes?: number };
  if (remote.foldedBytes !== undefined) {
    return void process.stdout.write(`remote group ${remote.group} is in ${remote.state}; changes are tracked for the next resync (${formatBytes(remote.foldedBytes)} of unsent journal folded)\n`);
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
  const agent = await agentOf(o);
  if (agent) {
    const params = { ...sel, full: o.full, reverse: o.reverse, threads, maxRate, background: o.background };
    if (o.background) {
      const { job } = await ask<{ job: string }>(agent, 'pair.resync', params);
      if (o.json) printJson({ background: true, job });
      else process.stdout.write(`resync running as agent job ${job}; see plexus jobs or plexus pair display\n`);
      return;
    }
    const bar = progressBar(o.reverse ? 'restore' : 'resync', Boolean(process.stderr.isTTY) && !o.json);
    try {
      printResync(await cancellable((signal) => ask<ResyncResult[]>(agent, 'pair.resync', params, { onProgress: bar.callback, signal })), bar, o.json);
    } finally {
      bar.stop();
    }
    return;
  }
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
    printResync(await cancellable((signal) => mirrors.resync(sel, { full: o.full, reverse: o.reverse, threads, maxRate, onProgress: bar.callback, signal })), bar, o.json);
  } finally {
    bar.stop();
  }
}

function printResync(results: ResyncResult[], bar: { stop(): void }, json?: boolean): void {
  bar.stop();
  if (json) {
    printJson(results);
    return;
  }
  if (!Array.isArray(results)) {
    // A remote group's resync (src/remote/).
    const r = results as { group: string; bytes: number; epoch: number; state: string };
    return void process.stdout.write(`resynced remote group ${r.group}: shipped ${formatBytes(r.bytes)} of dirty regions; ${r.state}, epoch ${r.epoch}\n`);
  }
  for (const r of results) {
    const rate = formatRate(r.bytesCopied / Math.max(r.elapsedMs / 1000, 1e-9));
    process.stdout.write(`${r.resumed ? 'resumed and ' : ''}resynced ${r.primary} → ${r.secondary}: copied ${formatBytes(r.bytesCopied)} in ${(r.elapsedMs / 1000).toFixed(2)} s (${rate})\n`);
  }
}

/** `pair display`. */
export async function runPairDisplay(primary: string | undefined, o: GlobalOptions & SelectOpts & { json?: boolean }): Promise<void> {
  const all = primary === undefined && o.group === undefined;
  const sel = all ? {} : selector(primary, o);
  // The agent's view is live: its jobs' progress and the dirty bytes in its memory.
  const agent = await agentOf(o);
  const list = agent ? await ask<PairInfo[]>(agent, 'pair.display', sel as Record<string, unknown>) : all ? mirrorsOf(o).display() : mirrorsOf(o).display(sel);
  if (o.json) {
    printJson(list);
    return;
  }
  const remote = list.filter((x) => (x as unknown as { kind?: string }).kind === 'remote') as unknown as GroupDisplay[];
  const local = list.filter((x) => (x as unknown as { kind?: string }).kind !== 'remote');
  if (list.length === 0) return void process.stdout.write('no pairs\n');
  if (local.length > 0) printTable(['PRIMARY', 'SECONDARY', 'STATE', 'GROUP', 'DIRTY', 'PROGRESS', 'SPLIT AT', 'ACCESS'], local.map(describe));
  if (remote.length > 0) printRemoteGroups(remote);
}

/** `pair wait`. */
export async function runPairWait(primary: string | undefined, o: GlobalOptions & SelectOpts & { state: string; timeout: string }): Promise<void> {
  const state = parseState(o.state);
  if (!state) throw new PlexusError('E_INVALID', `unknown state '${o.state}' (one of ${PAIR_STATES.join(', ')})`);
  const timeout = intOpt(o.timeout, 'timeout', 0, 31_536_000)! * 1000;
  const agent = await agentOf(o);
  const reached = agent
    ? (await ask<{ reached: boolean }>(agent, 'pair.wait', { ...selector(primary, o), state, timeoutMs: timeout })).reached
    : await mirrorsOf(o).wait(selector(primary, o), state, timeout);
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
    const sel = selector(primary, o);
    const opts = { threads: intOpt(o.threads, 'threads', 1, 256), maxRate: sizeOpt(o.maxRate, 'max rate') };
    const agent = await agentOf(o);
    const r = await cancellable((signal) =>
      agent ? ask<MirrorCopyReport[]>(agent, 'pair.fill', { ...sel, ...opts }, { onProgress: bar.callback, signal }) : mirrorsOf(o).fill(sel, { ...opts, onProgress: bar.callback, signal }),
    );
    bar.stop();
    if (o.json) printJson(r);
    else process.stdout.write(`filled ${r.length} instant split${r.length === 1 ? '' : 's'} (${formatBytes(r.reduce((a, x) => a + x.bytesCopied, 0))})\n`);
  } finally {
    bar.stop();
  }
}

/** `pair promote`. */
export async function runPairPromote(primary: string, o: GlobalOptions & { plex: string; json?: boolean }): Promise<void> {
  const agent = await agentOf(o);
  const r = agent ? await ask<PromoteReport>(agent, 'pair.promote', { primary, plex: o.plex }) : promote(mirrorsOf(o), primary, o.plex);
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
    const opts = { readOnly: o.readOnly, allow: o.allow, freeze: o.freeze, thaw: o.thaw };
    const agent = await agentOf(o);
    const r = agent
      ? await ask<RotateReport>(agent, 'pair.rotate', { primary, plexes, ...opts }, { onProgress: bar.callback })
      : await rotate(mirrorsOf(o), primary, plexes, { ...opts, onProgress: bar.callback });
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
    const opts = { freeze: o.freeze, thaw: o.thaw, threads: intOpt(o.threads, 'threads', 1, 256) };
    const agent = await agentOf(o);
    const r = agent
      ? await ask<StageReport>(agent, 'pair.stage', { primary, plex: o.plex, to: o.to, ...opts }, { onProgress: bar.callback })
      : await stage(mirrorsOf(o), primary, o.plex, o.to, { ...opts, onProgress: bar.callback });
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
export async function runPairDelete(primary: string, o: GlobalOptions & { plex?: string }): Promise<void> {
  const agent = await agentOf(o);
  const gone = agent ? (await ask<{ deleted: string[] }>(agent, 'pair.delete', { primary, plex: o.plex })).deleted : mirrorsOf(o).delete(primary, o.plex);
  process.stdout.write(`deleted ${gone.join(', ')}\n`);
}

/** `pair checkpoint`. */
export async function runPairCheckpoint(primary: string, o: GlobalOptions & { release?: string; json?: boolean }): Promise<void> {
  const release = intOpt(o.release, 'generation', 1);
  const agent = await agentOf(o);
  const r = agent ? await ask<CheckpointReport>(agent, 'pair.checkpoint', { primary, release }) : mirrorsOf(o).checkpoint(primary, release);
  if (o.json) return printJson(r);
  if (r.released) process.stdout.write(`released checkpoint generation ${r.generation} of ${primary}\n`);
  else process.stdout.write(`started checkpoint generation ${r.generation} of ${primary}: read it over NBD as ${r.bitmap}\n`);
}
