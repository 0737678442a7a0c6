/**
 * What the agent does for its clients: one entry per control request, each a thin call
 * into the library (the same calls the CLI makes in-process), with long operations run
 * as jobs. Requests arrive as untrusted parameters and are checked by `ParamReader`.
 */
import { BACKUP_MODES, type BackupMode, runBackup } from '../backup/backup.js';
import { restoreJob } from '../backup/restore.js';
import { restoreToVolume } from '../backup/restore-volume.js';
import { runHookedBackup, runSplitBackup } from '../backup/split-backup.js';
import { PlexusError } from '../errors.js';
import type { PairSelector } from '../mirror/mirrors.js';
import { promote, rotate, stage } from '../mirror/plexes.js';
import type { PairSuspension } from '../mirror/plexset.js';
import { PAIR_STATES, parseState } from '../mirror/states.js';
import { removeVolume } from '../mirror/volume-ops.js';
import type { ProgressCallback } from '../progress.js';
import type { AgentCore } from './core.js';
import type { JobContext } from './jobs.js';
import { ParamReader, type Params } from './params.js';

/** What a request handler is given besides its parameters. */
export interface RequestContext {
  /** Progress of the request's job, sent to the client as it happens. */
  onProgress: ProgressCallback;
  /** A line for the client's stderr (a backup's "waiting for a drive", ...). */
  onLog: (line: string) => void;
  /** Aborted when the client goes away or asks to cancel. */
  signal: AbortSignal;
}

type Handler = (core: AgentCore, p: ParamReader, ctx: RequestContext) => unknown;

function selectorOf(p: ParamReader): PairSelector {
  const primary = p.optStr('primary');
  const group = p.optStr('group');
  const plex = p.optStr('plex');
  if ((primary === undefined) === (group === undefined)) throw new PlexusError('E_INVALID', 'give a primary volume or a group, not both or neither');
  return primary !== undefined ? { primary, plex } : { group };
}

/** The primaries whose pairs `sel` names. */
function primariesOf(core: AgentCore, sel: PairSelector): string[] {
  return [...new Set(core.mirrors.select(sel).map((r) => r.primary))];
}

function targetOf(sel: PairSelector): string {
  return sel.group !== undefined ? `group ${sel.group}` : sel.plex !== undefined ? `${sel.primary} → ${sel.plex}` : String(sel.primary);
}

/** Copy options every long pair operation takes. */
function copyOpts(p: ParamReader): { threads?: number; maxRate?: number } {
  return { threads: p.optNum('threads'), maxRate: p.optNum('maxRate') };
}

/** The remote group a pair request names with `group`, when it is one of this site's. */
function remoteGroup(core: AgentCore, p: ParamReader): string | undefined {
  const group = p.optStr('group');
  return group !== undefined && core.replication?.has(group) ? group : undefined;
}

function replicationOf(core: AgentCore): NonNullable<AgentCore['replication']> {
  if (!core.replication) throw new PlexusError('E_AGENT', 'remote replication is not running in this agent');
  return core.replication;
}

const HANDLERS: Record<string, Handler> = {
  'agent.status': (core) => core.status(),
  'agent.stop': (core) => {
    setImmediate(() => void core.stop('requested by a client'));
    return { stopping: true };
  },

  'volume.create': (core, p) => {
    const v = core.mirrors.store.create(p.str('name'), { size: p.num('size'), blockSize: p.num('blockSize') });
    core.changed();
    return v.info();
  },
  'volume.rm': (core, p) => {
    const name = p.str('name');
    core.exportsWillChange(name);
    removeVolume(core.mirrors, name);
    core.changed();
    return { removed: name };
  },
  'volume.size': async (core, p) => {
    const io = await core.mirrors.openIo(p.str('name'), { host: p.optStr('host') });
    try {
      return { size: io.size };
    } finally {
      io.close();
    }
  },
  'volume.write': async (core, p) => {
    const suspended: PairSuspension[] = [];
    // `flush: false`: one piece of many; the client flushes once at its end (volume.flush).
    const deferFlush = p.optFlag('flush') === false;
    const io = await core.mirrors.openIo(p.str('name'), { write: true, host: p.optStr('host'), onSuspend: (s) => suspended.push(s), deferFlush });
    try {
      if (io.writeAsync) await io.writeAsync(p.num('offset'), p.bytes('data'));
      else io.write(p.num('offset'), p.bytes('data'));
    } finally {
      io.close();
    }
    return { suspended };
  },
  'volume.flush': async (core, p) => {
    const io = await core.mirrors.openIo(p.str('name'), { write: true, host: p.optStr('host') });
    io.close();
    return { flushed: true };
  },
  'volume.read': async (core, p) => {
    const io = await core.mirrors.openIo(p.str('name'), { host: p.optStr('host') });
    try {
      const length = p.num('length');
      if (length > 4 << 20) throw new PlexusError('E_RANGE', `a control read is at most 4 MiB, asked for ${length} bytes`);
      return io.read(p.num('offset'), length);
    } finally {
      io.close();
    }
  },
  'volume.checksum': async (core, p) => {
    const io = await core.mirrors.openIo(p.str('name'), { host: p.optStr('host') });
    try {
      const offset = p.optNum('offset') ?? 0;
      return { digest: await io.checksum(offset, p.optNum('length') ?? io.size - offset) };
    } finally {
      io.close();
    }
  },

  'pair.display': (core, p) => {
    const primary = p.optStr('primary');
    const group = p.optStr('group');
    if (group !== undefined && core.replication?.has(group)) return core.replication.display(group);
    return primary === undefined && group === undefined ? [...core.mirrors.display(), ...(core.replication?.display() ?? [])] : core.mirrors.display(selectorOf(p));
  },
  'pair.create': async (core, p, ctx) => {
    const primary = p.str('primary');
    const secondary = p.str('secondary');
    const background = p.flag('background');
    const instant = p.flag('instant');
    core.exclusive([primary]);
    // The secondary's clients must not keep writing to it behind the mirror.
    core.exportsWillChange(secondary);
    const opts = { group: p.optStr('group'), allow: p.optStrs('allow'), granularity: p.optNum('granularity'), instant, writeIntent: !p.flag('noWriteIntent'), ...copyOpts(p) };
    if (background) {
      const info = await core.mirrors.create(primary, secondary, { ...opts, deferCopy: true });
      core.changed();
      const kind = instant ? 'fill' : 'copy';
      const { id } = core.jobs.start(kind, `${primary} → ${secondary}`, true, (j) =>
        instant ? core.mirrors.fill({ primary, plex: secondary }, { ...copyOpts(p), ...j }) : core.mirrors.resync({ primary, plex: secondary }, { ...copyOpts(p), ...j }),
      );
      return { ...info, job: id };
    }
    const info = await core.foreground(ctx, instant ? 'fill' : 'copy', `${primary} → ${secondary}`, (j) => core.mirrors.create(primary, secondary, { ...opts, ...j }));
    core.changed();
    return info;
  },
  'pair.split': async (core, p) => {
    const remote = remoteGroup(core, p);
    if (remote) return core.replication!.split(remote);
    const sel = selectorOf(p);
    core.exclusive(primariesOf(core, sel));
    const r = await core.mirrors.split(sel, {
      readOnly: p.flag('readOnly'),
      allow: p.optStrs('allow'),
      freeze: p.optStr('freeze'),
      thaw: p.optStr('thaw'),
      hookTimeoutMs: p.optNum('hookTimeoutMs'),
    });
    // A split secondary becomes a host's volume: its export follows its new attributes.
    core.changed();
    return r;
  },
  'pair.resync': async (core, p, ctx) => {
    const remote = remoteGroup(core, p);
    if (remote) return core.replication!.resync(remote, p.flag('reverse'), p.flag('background'), ctx);
    const sel = selectorOf(p);
    core.exclusive(primariesOf(core, sel));
    const secondaries = core.mirrors.select(sel).map((x) => x.secondary);
    for (const s of secondaries) core.exportsWillChange(s);
    const opts = { full: p.flag('full'), reverse: p.flag('reverse'), ...copyOpts(p) };
    const kind = opts.reverse ? 'restore' : 'resync';
    if (p.flag('background')) {
      const { id } = core.jobs.start(kind, targetOf(sel), true, (j) => core.mirrors.resync(sel, { ...opts, ...j }).finally(() => core.changed()));
      return { background: true, job: id };
    }
    return core.foreground(ctx, kind, targetOf(sel), (j) => core.mirrors.resync(sel, { ...opts, ...j })).finally(() => core.changed());
  },
  'pair.fill': async (core, p, ctx) => {
    const sel = selectorOf(p);
    core.exclusive(primariesOf(core, sel));
    if (p.flag('background')) {
      const { id } = core.jobs.start('fill', targetOf(sel), true, (j) => core.mirrors.fill(sel, { ...copyOpts(p), ...j }));
      return { background: true, job: id };
    }
    return core.foreground(ctx, 'fill', targetOf(sel), (j) => core.mirrors.fill(sel, { ...copyOpts(p), ...j }));
  },
  'pair.wait': async (core, p) => {
    const state = parseState(p.str('state'));
    if (!state) throw new PlexusError('E_INVALID', `unknown state '${p.str('state')}' (one of ${PAIR_STATES.join(', ')})`);
    return { reached: await core.mirrors.wait(selectorOf(p), state, p.num('timeoutMs')) };
  },
  'pair.delete': (core, p) => {
    const primary = p.str('primary');
    core.exclusive([primary]);
    const plex = p.optStr('plex');
    const secondaries = core.mirrors.select({ primary, plex }).map((r) => r.secondary);
    for (const s of secondaries) core.exportsWillChange(s);
    const gone = core.mirrors.delete(primary, plex);
    core.changed();
    return { deleted: gone };
  },
  'pair.promote': (core, p) => {
    const primary = p.str('primary');
    core.exclusive([primary]);
    core.exportsWillChange(primary);
    try {
      return promote(core.mirrors, primary, p.str('plex'));
    } finally {
      core.changed();
    }
  },
  'pair.rotate': async (core, p, ctx) => {
    const primary = p.str('primary');
    core.exclusive([primary]);
    const plexes = p.optStrs('plexes') ?? [];
    for (const s of plexes) core.exportsWillChange(s);
    const opts = { readOnly: p.flag('readOnly'), allow: p.optStrs('allow'), freeze: p.optStr('freeze'), thaw: p.optStr('thaw') };
    return core.foreground(ctx, 'rotate', primary, (j) => rotate(core.mirrors, primary, plexes, { ...opts, onProgress: j.onProgress })).finally(() => core.changed());
  },
  'pair.stage': async (core, p, ctx) => {
    const primary = p.str('primary');
    core.exclusive([primary]);
    const opts = { freeze: p.optStr('freeze'), thaw: p.optStr('thaw'), threads: p.optNum('threads') };
    return core.foreground(ctx, 'stage', primary, (j) => stage(core.mirrors, primary, p.str('plex'), p.str('to'), { ...opts, onProgress: j.onProgress })).finally(() => core.changed());
  },
  'pair.checkpoint': (core, p) => core.checkpoint(p.str('primary'), p.optNum('release')),

  'backup.split': async (core, p, ctx) => {
    const primary = p.str('source');
    core.exclusive([primary]);
    const opts = { ...flowOpts(p), plex: p.optStr('plex'), stage: p.optStr('stage'), pool: p.optStrs('pool') };
    return core
      .foreground(ctx, 'backup', `${primary} from its mirror`, (j) =>
        runSplitBackup(core.home, primary, { ...opts, signal: j.signal, onProgress: j.onProgress, onLog: ctx.onLog, onStep: (x) => core.log.event('split-backup-step', { primary, ...x }) }),
      )
      .finally(() => core.changed());
  },
  'backup.hooked': async (core, p, ctx) => {
    const source = p.str('source');
    return core.foreground(ctx, 'backup', source, (j) => runHookedBackup(core.home, source, { ...flowOpts(p), signal: j.signal, onProgress: j.onProgress, onLog: ctx.onLog }));
  },
  'backup.run': async (core, p, ctx) => {
    const source = p.str('source');
    // Hooks go to backup.hooked; a plain run has none.
    const opts = flowOpts(p);
    const run = (j: JobContext, log: (line: string) => void) => runBackup(core.home, source, { ...opts, signal: j.signal, onProgress: j.onProgress, onLog: log });
    if (p.flag('background')) {
      const { id } = core.jobs.start('backup', source, true, (j) => run(j, (line) => core.log.event('job-log', { job: id, line })));
      return { background: true, job: id };
    }
    return core.foreground(ctx, 'backup', source, (j) => run(j, ctx.onLog));
  },
  restore: async (core, p, ctx) => {
    const job = p.num('job');
    const opts = { offset: p.optNum('offset'), length: p.optNum('length'), force: p.flag('force') };
    const toVolume = p.optStr('toVolume');
    if (toVolume !== undefined) {
      const mirror = p.optStr('mirror') === 'resync' ? 'resync' : 'duplex';
      // The agent's exports are the volume's users: paused for the restore.
      const users = core.exports;
      // Its pairs may be split and resynced: nothing else may run on them meanwhile.
      core.exclusive([toVolume]);
      return core
        .foreground(ctx, 'restore', `job ${job} → volume ${toVolume}`, (j) =>
          restoreToVolume(core.home, job, toVolume, { ...opts, mirror, users, signal: j.signal, onProgress: j.onProgress, onLog: ctx.onLog }),
        )
        .finally(() => core.changed());
    }
    return core.foreground(ctx, 'restore', `job ${job} → ${p.str('to')}`, (j) => restoreJob(core.home, job, p.str('to'), { ...opts, signal: j.signal, onProgress: j.onProgress, onLog: ctx.onLog }));
  },

  'remote.pairCreate': (core, p, ctx) => replicationOf(core).control('remote.pairCreate', p, ctx),
  'remote.display': (core, p, ctx) => replicationOf(core).control('remote.display', p, ctx),
  'remote.syncWait': (core, p, ctx) => replicationOf(core).control('remote.syncWait', p, ctx),
  'remote.setMode': (core, p, ctx) => replicationOf(core).control('remote.setMode', p, ctx),
  'remote.delete': (core, p, ctx) => replicationOf(core).control('remote.delete', p, ctx),
  'remote.takeover': (core, p, ctx) => replicationOf(core).control('remote.takeover', p, ctx),
  'remote.backup': (core, p, ctx) => replicationOf(core).control('remote.backup', p, ctx),
  'remote.status': (core, p, ctx) => replicationOf(core).control('remote.status', p, ctx),

  'jobs.list': (core) => core.jobs.list(),
  'jobs.cancel': (core, p) => core.jobs.cancel(p.str('id')),
  'exports.list': (core) => core.exportList(),
};

/** Runs one control request. E_INVALID for an unknown method. */
export async function handleRequest(core: AgentCore, method: string, params: Params, ctx: RequestContext): Promise<unknown> {
  const h = Object.hasOwn(HANDLERS, method) ? HANDLERS[method] : undefined;
  if (!h) throw new PlexusError('E_INVALID', `unknown control request '${method}'`);
  return h(core, new ParamReader(method, params), ctx);
}

/** The options of a backup (with its hooks, for a split-mirror or hooked backup) from a request. */
function flowOpts(p: ParamReader) {
  const mode = p.optStr('mode') ?? 'single';
  if (!BACKUP_MODES.includes(mode as BackupMode)) throw new PlexusError('E_INVALID', `mode must be one of ${BACKUP_MODES.join(', ')}, not '${mode}'`);
  return {
    host: p.optStr('host'),
    mode: mode as BackupMode,
    library: p.optStr('library'),
    streams: p.optNum('streams'),
    chunk: p.optNum('chunk'),
    commandTimeoutMs: p.optNum('commandTimeoutMs'),
    driveTimeoutMs: p.optNum('driveTimeoutMs'),
    streamWaitMs: p.optNum('streamWaitMs'),
    freeze: p.optStr('freeze'),
    thaw: p.optStr('thaw'),
    hookTimeoutMs: p.optNum('hookTimeoutMs'),
  };
}
