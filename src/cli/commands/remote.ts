/** `plexus remote ...` and `plexus sync-wait` (declared in ../tree/remote.ts). Replication runs in the site agent. */
import fs from 'node:fs';
import { PlexusError } from '../../errors.js';
import { resolveHomeDir } from '../../home/home.js';
import { ensureKey, importKey } from '../../remote/key.js';
import type { GroupDisplay, SyncWaitStatus } from '../../remote/source.js';
import { formatBytes } from '../../util/size.js';
import { agentOf, ask } from '../agent.js';
import { cancellable } from '../cancel.js';
import { type GlobalOptions, intOpt, sizeOpt } from '../context.js';
import { printFields, printJson } from '../render/output.js';
import { progressBar } from '../render/progress.js';
import { SYNC_WAIT_EXIT } from '../tree/remote.js';
import { printRemoteGroups } from './remote-display.js';
import type { ServeOpts } from './serve.js';

type Json = { json?: boolean };

/** The running agent; E_AGENT naming the fix when none runs (replication lives in it). */
async function requireAgent(o: GlobalOptions): Promise<NonNullable<Awaited<ReturnType<typeof agentOf>>>> {
  const agent = await agentOf(o);
  if (!agent)
    throw new PlexusError(
      'E_AGENT',
      `no site agent serves ${resolveHomeDir(o.home)}; remote replication runs in it (start it: plexus serve --detach, or plexus remote serve --listen HOST:PORT at the remote site)`,
    );
  return agent;
}

/** `remote serve`: the agent, listening for peers. */
export async function runRemoteServe(o: ServeOpts): Promise<void> {
  const { runServe } = await import('./serve.js');
  await runServe({ ...o, tls: 'require' });
}

/** `remote key [--import FILE]`. */
export async function runRemoteKey(o: GlobalOptions & Json & { import?: string }): Promise<void> {
  const home = resolveHomeDir(o.home);
  if (!fs.existsSync(home)) throw new PlexusError('E_NOENT', `no Plexus home at ${home} (create it with \`plexus init\`)`);
  if (o.import !== undefined) {
    const text = o.import === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(o.import, 'utf8');
    const r = importKey(home, text, o.import === '-' ? 'stdin' : o.import);
    if (o.json) return printJson({ imported: true, file: r.file });
    process.stderr.write(`imported the peer key into ${r.file}; a running agent uses it for the next link\n`);
    return;
  }
  const r = ensureKey(home);
  if (o.json) return printJson(r);
  if (r.created) process.stderr.write(`made a new peer key in ${r.file}; give it to the other site: plexus remote key --import FILE\n`);
  process.stdout.write(`${r.key}\n`);
}

/** `remote pair create PRIMARY HOST:PORT/VOLUME --group G`. */
export async function runRemotePairCreate(
  primary: string,
  target: string,
  o: GlobalOptions & Json & { group: string; sync?: boolean; granularity: string; journalCapacity: string; linkTimeout: string; background?: boolean },
): Promise<void> {
  const params = {
    primary,
    target,
    group: o.group,
    sync: o.sync,
    granularity: sizeOpt(o.granularity, 'granularity'),
    journalCapacity: sizeOpt(o.journalCapacity, 'journal capacity'),
    linkTimeoutMs: intOpt(o.linkTimeout, 'link timeout', 1, 86_400)! * 1000,
    background: o.background,
  };
  const agent = await requireAgent(o);
  const bar = progressBar(`copy ${primary} → ${target}`, Boolean(process.stderr.isTTY) && !o.json && !o.background);
  try {
    const r = await cancellable((signal) => ask<Record<string, unknown>>(agent, 'remote.pairCreate', params, { onProgress: bar.callback, signal }));
    bar.stop();
    if (o.json) return printJson(r);
    if (r.job) process.stdout.write(`remote pair ${primary} → ${target} in group ${o.group}; initial copy running as agent job ${String(r.job)}\n`);
    else
      process.stdout.write(
        `remote pair ${primary} → ${target} in group ${o.group}: copied ${formatBytes(Number(r.bytes))} (${formatBytes(Number(r.dataBytes))} of data, the rest holes); ${String(r.state)}\n`,
      );
  } finally {
    bar.stop();
  }
}

/** `remote pair display [--group G]`. */
export async function runRemotePairDisplay(o: GlobalOptions & Json & { group?: string }): Promise<void> {
  const list = await ask<GroupDisplay[]>(await requireAgent(o), 'remote.display', { group: o.group });
  if (o.json) return printJson(list);
  if (list.length === 0) return void process.stdout.write('no remote groups\n');
  printRemoteGroups(list);
}

/** `remote pair mode --group G --sync|--async`. */
export async function runRemotePairMode(o: GlobalOptions & { group: string; sync?: boolean; async?: boolean }): Promise<void> {
  if (Boolean(o.sync) === Boolean(o.async)) throw new PlexusError('E_INVALID', 'give --sync or --async');
  const r = await ask<{ mode: string }>(await requireAgent(o), 'remote.setMode', { group: o.group, mode: o.sync ? 'sync' : 'async' });
  process.stdout.write(`group ${o.group} replicates ${r.mode === 'sync' ? 'synchronously' : 'asynchronously'}\n`);
}

/** `remote pair delete --group G`. */
export async function runRemotePairDelete(o: GlobalOptions & Json & { group: string }): Promise<void> {
  const r = await ask<{ remote?: string }>(await requireAgent(o), 'remote.delete', { group: o.group });
  if (o.json) return printJson(r);
  process.stdout.write(`deleted remote group ${o.group}${r.remote ? ` (remote site: ${r.remote})` : ''}\n`);
}

/** `remote takeover --group G` (at the remote site). */
export async function runRemoteTakeover(o: GlobalOptions & Json & { group: string }): Promise<void> {
  const r = await ask<{ divergedAt: number; volumes: string[] }>(await requireAgent(o), 'remote.takeover', { group: o.group });
  if (o.json) return printJson(r);
  process.stdout.write(`took over group ${o.group}: ${r.volumes.join(', ')} writable at this site; they diverge after sequence ${r.divergedAt}\n`);
}

/** `remote backup --group G --library L`. */
export async function runRemoteBackup(
  o: GlobalOptions & Json & { group: string; library: string; freeze?: string; thaw?: string; hookTimeout: string; timeout: string; verbose?: boolean },
): Promise<void> {
  const params = {
    group: o.group,
    library: o.library,
    freeze: o.freeze,
    thaw: o.thaw,
    hookTimeoutMs: intOpt(o.hookTimeout, 'hook timeout', 1, 86_400)! * 1000,
    timeoutMs: intOpt(o.timeout, 'timeout', 0, 86_400)! * 1000,
  };
  const agent = await requireAgent(o);
  const r = await cancellable((signal) =>
    ask<{ frozenMs: number; marker: string; jobs: Array<{ volume: string; job: number; bytes: number }> }>(agent, 'remote.backup', params, {
      signal,
      onLog: (l) => o.verbose && process.stderr.write(`${l}\n`),
    }),
  );
  if (o.json) return printJson(r);
  for (const j of r.jobs) process.stdout.write(`backed up ${j.volume} at the remote site as job ${j.job} (${formatBytes(j.bytes)})\n`);
  process.stdout.write(`frozen for ${r.frozenMs} ms (marker ${r.marker}); the remote pair stayed in PAIR\n`);
}

/** `remote status`. */
export async function runRemoteStatus(o: GlobalOptions & Json): Promise<void> {
  const s = await ask<{ site: string; listen: string | null; groups: GroupDisplay[]; targets: Array<{ group: string; source: string; state: string; applied: number; durable: number }> }>(
    await requireAgent(o),
    'remote.status',
    {},
  );
  if (o.json) return printJson(s);
  printFields([
    ['site', s.site],
    ['listening', s.listen ?? '-'],
    ['groups (primary here)', s.groups.map((g) => `${g.group} ${g.state}`).join(', ') || '-'],
    ['targets (remote here)', s.targets.map((t) => `${t.group} ${t.state} applied ${t.applied}`).join(', ') || '-'],
  ]);
}

/** `sync-wait --group G`. */
export async function runSyncWait(o: GlobalOptions & Json & { group: string; timeout: string; marker?: string; nowait?: boolean }): Promise<void> {
  const timeoutMs = intOpt(o.timeout, 'timeout', 0, 31_536_000)! * 1000;
  const agent = await requireAgent(o);
  const r = await cancellable((signal) =>
    ask<{ status: SyncWaitStatus; marker: string; appliedSeq: number }>(agent, 'remote.syncWait', { group: o.group, marker: o.marker, timeoutMs, nowait: o.nowait }, { signal }),
  );
  if (o.json) printJson(r);
  else process.stdout.write(`${r.status} ${r.marker}\n`);
  if (r.status !== 'DONE' && r.status !== 'NOWAIT') process.exitCode = SYNC_WAIT_EXIT[r.status];
}
