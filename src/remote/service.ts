/**
 * Remote replication in the site agent: this site's groups (as primary: SourceGroup) and
 * targets (as remote: TargetGroup), the peer listener (`plexus remote serve --listen`),
 * the requests peers make (`repl.*`) and those the CLI makes (`remote.*`).
 */
import os from 'node:os';
import type { AgentCore } from '../agent/core.js';
import type { JobContext } from '../agent/jobs.js';
import type { RequestContext } from '../agent/methods.js';
import type { ParamReader } from '../agent/params.js';
import { runBackup } from '../backup/backup.js';
import { asPlexusError, callNative, PlexusError } from '../errors.js';
import { checkGroupName, type Member, RemoteRecords, type SourceRecord, type TargetRecord } from '../home/remote-records.js';
import { native } from '../native/binding.js';
import { remoteBackup } from './backup.js';
import { requireKey } from './key.js';
import { listenPeers, type PeerConnection, type PeerServer, parseAddress } from './link.js';
import { reverseResync } from './reverse.js';
import { type GroupDisplay, type ReplicationHost, SourceGroup } from './source.js';
import { TargetGroup } from './target.js';

/** Defaults of a new group. */
const DEFAULT_JOURNAL = 1 << 30;
const MIN_JOURNAL = 4 << 20;
const DEFAULT_LINK_TIMEOUT_MS = 10_000;
const DEFAULT_GRANULARITY = 64 * 1024;

/** How replication starts in the agent. */
export interface ReplicationOptions {
  /** Listen for peers at `HOST:PORT`. */
  listen?: string;
  /** This site's name in handshakes and logs (default host:home). */
  site?: string;
}

/** `HOST:PORT/VOLUME`, as `remote pair create` takes it. */
export function parseTarget(spec: string): { peer: string; volume: string } {
  const slash = spec.lastIndexOf('/');
  if (slash <= 0 || slash === spec.length - 1) throw new PlexusError('E_INVALID', `remote volume '${spec}' must be HOST:PORT/VOLUME, e.g. 127.0.0.1:7070/db`);
  const peer = spec.slice(0, slash);
  parseAddress(peer);
  return { peer, volume: spec.slice(slash + 1) };
}

/** The agent's replication. */
export class Replication implements ReplicationHost {
  readonly records: RemoteRecords;
  readonly site: string;
  private readonly sources = new Map<string, SourceGroup>();
  private readonly targets = new Map<string, TargetGroup>();
  private server?: PeerServer;
  private dataListener?: InstanceType<typeof native.NativeDataListener>;
  private timer?: NodeJS.Timeout;

  private constructor(
    private readonly core: AgentCore,
    opts: ReplicationOptions,
  ) {
    this.records = new RemoteRecords(core.home.dir);
    this.site = opts.site ?? `${os.hostname()}:${core.home.dir}`;
  }

  /** Opens every group and target of the home, resumes shipping and interrupted copies, and listens when asked. */
  static async start(core: AgentCore, opts: ReplicationOptions): Promise<Replication> {
    const r = new Replication(core, opts);
    for (const rec of r.records.targets.all()) {
      try {
        r.targets.set(rec.group, TargetGroup.open(r, rec));
      } catch (e) {
        r.log('remote-target-not-opened', { group: rec.group, error: asPlexusError(e).message });
      }
    }
    for (const rec of r.records.sources.all()) {
      try {
        const g = SourceGroup.open(r, rec);
        r.sources.set(rec.group, g);
        g.start();
        if (rec.state === 'COPY') r.resumeCopy(g);
      } catch (e) {
        r.log('remote-group-not-opened', { group: rec.group, error: asPlexusError(e).message });
      }
    }
    if (opts.listen !== undefined) {
      requireKey(core.home.dir);
      r.server = await listenPeers(
        opts.listen,
        () => requireKey(core.home.dir),
        r.site,
        (m, p, c) => r.peerRequest(m, p, c),
        (e, f) => r.log(e, f),
      );
      // Data channels on the same address, any free port (told to the primary per channel).
      const host = parseAddress(opts.listen, 'listen address').host;
      r.dataListener = callNative(() => native.NativeDataListener.start(`${host.includes(':') ? `[${host}]` : host}:0`));
      r.timer = setInterval(() => {
        for (const e of callNative(() => r.dataListener!.takeEvents())) r.log('remote-data-channel', { event: e });
      }, 500).unref();
    }
    return r;
  }

  /** Where peers reach this site, if it listens. */
  get listening(): string | undefined {
    return this.server?.address;
  }

  key(): Buffer {
    return requireKey(this.core.home.dir);
  }

  plexOf(volume: string): ReturnType<AgentCore['writePaths']['of']> {
    return this.core.writePaths.of(volume);
  }

  volumeOf(volume: string): ReturnType<AgentCore['writePaths']['volumeOf']> {
    return this.core.writePaths.volumeOf(volume);
  }

  log(event: string, fields: Record<string, unknown>): void {
    this.core.log.event(event, fields);
  }

  private resumeCopy(g: SourceGroup): void {
    const { id } = this.core.jobs.start('remote-copy', `group ${g.name}`, true, (j) => g.resync(j));
    this.log('remote-copy-resumed', { group: g.name, job: id });
  }

  /** A source group by name; E_NOENT otherwise. */
  source(group: string): SourceGroup {
    const g = this.sources.get(group);
    if (!g) throw new PlexusError('E_NOENT', `no remote group '${group}' at this site${this.targets.has(group) ? ' as its primary (this site is its remote)' : ''}`);
    return g;
  }

  private target(group: string): TargetGroup {
    const t = this.targets.get(group);
    if (!t) throw new PlexusError('E_NOENT', `this site is not the remote of group '${group}'`);
    return t;
  }

  /** Whether `group` names a remote group at this site (either end). */
  has(group: string): boolean {
    return this.sources.has(group) || this.targets.has(group);
  }

  /** Every source group's display. */
  display(group?: string): GroupDisplay[] {
    if (group !== undefined) return [this.source(group).display()];
    return [...this.sources.values()].map((g) => g.display());
  }

  /** `remote pair create`: attaches the remote volume, then the initial copy (a job). */
  async create(p: ParamReader, ctx: RequestContext): Promise<unknown> {
    const primary = p.str('primary');
    const { peer, volume: remote } = parseTarget(p.str('target'));
    const group = p.str('group');
    checkGroupName(group);
    const mode = p.flag('sync') ? 'sync' : 'async';
    const capacity = p.optNum('journalCapacity');
    if (capacity !== undefined && capacity < MIN_JOURNAL)
      throw new PlexusError('E_INVALID', `the journal capacity must be at least ${MIN_JOURNAL >> 20} MiB (two resync pieces and the writes beside them), not ${capacity} bytes`);
    const info = this.core.mirrors.store.open(primary).info();
    const role = this.records.roleOf(primary);
    if (role) throw new PlexusError('E_BUSY', `volume ${primary} is already in remote group ${role.record.group}`);
    this.key();
    let g = this.sources.get(group);
    if (g && g.record.peer !== peer) throw new PlexusError('E_INVALID', `group ${group} replicates to ${g.record.peer}, not ${peer}`);
    if (g && g.record.state !== 'PAIR' && g.record.state !== 'COPY') throw new PlexusError('E_STATE', `group ${group} is in ${g.record.state}; resync it before adding a volume`);
    const member: Member = { id: (g?.record.members.reduce((n, m) => Math.max(n, m.id), 0) ?? 0) + 1, volume: primary, remote, size: info.size };
    const members = [...(g?.record.members ?? []), member];
    const record: SourceRecord = g?.record ?? {
      format: 1,
      group,
      peer,
      mode,
      state: 'COPY',
      epoch: 1,
      members: [],
      granularity: p.optNum('granularity') ?? DEFAULT_GRANULARITY,
      journalCapacity: p.optNum('journalCapacity') ?? DEFAULT_JOURNAL,
      linkTimeoutMs: p.optNum('linkTimeoutMs') ?? DEFAULT_LINK_TIMEOUT_MS,
      updatedAt: '',
    };
    // The remote checks its volume and starts applying before anything is recorded here.
    const { PeerClient } = await import('./link.js');
    const link = await PeerClient.connect(peer, this.key(), this.site, 5000);
    try {
      await link.call(
        'repl.attach',
        { group, epoch: record.epoch, base: g ? undefined : 0, granularity: record.granularity, members: members.map((m) => ({ id: m.id, volume: m.remote, size: m.size })) },
        record.linkTimeoutMs,
      );
    } finally {
      link.close();
    }
    if (g) {
      g.record.members = members;
      g.addMember(member);
      if (g.record.state === 'PAIR') g.record.state = 'COPY';
      this.records.sources.save(g.record);
    } else {
      record.members = members;
      this.records.sources.save(record);
      g = SourceGroup.open(this, record);
      for (const m of members) callNative(() => g!.native.markAll(m.id));
      this.sources.set(group, g);
    }
    const grp = g;
    this.log('remote-pair-created', { group, primary, peer, remote, mode: grp.record.mode });
    this.core.changed();
    if (p.flag('background')) {
      const { id } = this.core.jobs.start('remote-copy', `group ${group}`, true, (j) => grp.resync(j));
      return { group, primary, remote: `${peer}/${remote}`, job: id };
    }
    const r = await this.core.foreground(ctx, 'remote-copy', `group ${group}`, (j) => grp.resync(j));
    return { ...r, primary, remote: `${peer}/${remote}` };
  }

  /** `pair resync --group G` of a remote group ([--reverse]: bring back what the remote site changed since a takeover). */
  async resync(group: string, reverse: boolean, background: boolean, ctx: RequestContext): Promise<unknown> {
    const g = this.source(group);
    const run = (j: JobContext): Promise<unknown> => (reverse ? reverseResync(g, j) : g.resync(j));
    const kind = reverse ? 'remote-reverse' : 'remote-resync';
    if (background) {
      const { id } = this.core.jobs.start(kind, `group ${group}`, true, run);
      return { background: true, job: id };
    }
    return this.core.foreground(ctx, kind, `group ${group}`, run);
  }

  /** `pair split --group G` of a remote group: PSUS, changes tracked. */
  split(group: string): unknown {
    const g = this.source(group);
    if (g.record.state === 'PSUS' || g.record.state === 'PSUE') throw new PlexusError('E_STATE', `group ${group} is in ${g.record.state} already`);
    const folded = g.suspend('PSUS', 'split by the user');
    return { group, state: g.record.state, foldedBytes: folded };
  }

  /** Deletes a remote group at this site and (best effort) at the remote. */
  async delete(group: string): Promise<unknown> {
    const g = this.source(group);
    await g.stop();
    g.detach();
    let remote = 'detached';
    try {
      const link = await g.peer();
      try {
        await link.call('repl.detach', { group }, 5000);
      } finally {
        link.close();
      }
    } catch (e) {
      remote = `not reached (${asPlexusError(e).message}); its volumes stay fenced until \`plexus remote pair delete --group ${group}\` runs there`;
    }
    this.sources.delete(group);
    this.records.sources.remove(group);
    this.log('remote-pair-deleted', { group, remote });
    this.core.changed();
    return { group, deleted: true, remote };
  }

  /** `remote takeover` at the remote site. */
  async takeover(group: string): Promise<unknown> {
    const r = await this.target(group).takeover();
    this.core.changed();
    return r;
  }

  /** The CLI's remote requests. */
  async control(method: string, p: ParamReader, ctx: RequestContext): Promise<unknown> {
    switch (method) {
      case 'remote.pairCreate':
        return this.create(p, ctx);
      case 'remote.display':
        return this.display(p.optStr('group'));
      case 'remote.syncWait':
        return this.source(p.str('group')).syncWait({ marker: p.optStr('marker'), timeoutMs: p.optNum('timeoutMs') ?? 0, nowait: p.flag('nowait') });
      case 'remote.setMode': {
        const mode = p.str('mode');
        if (mode !== 'sync' && mode !== 'async') throw new PlexusError('E_INVALID', `mode must be sync or async, not '${mode}'`);
        this.source(p.str('group')).setMode(mode);
        return { group: p.str('group'), mode };
      }
      case 'remote.delete': {
        const group = p.str('group');
        if (this.sources.has(group)) return this.delete(group);
        await this.dropTarget(group, 'this site');
        return { group, deleted: true };
      }
      case 'remote.takeover':
        return this.takeover(p.str('group'));
      case 'remote.backup':
        return remoteBackup(
          this.source(p.str('group')),
          { library: p.str('library'), freeze: p.optStr('freeze'), thaw: p.optStr('thaw'), hookTimeoutMs: p.optNum('hookTimeoutMs'), syncTimeoutMs: p.optNum('timeoutMs') },
          ctx,
        );
      case 'remote.status':
        return {
          site: this.site,
          listen: this.listening ?? null,
          groups: this.display(),
          targets: [...this.targets.values()].map((t) => ({ group: t.name, source: t.record.source, members: t.record.members, ...t.status() })),
        };
      default:
        throw new PlexusError('E_INVALID', `unknown control request '${method}'`);
    }
  }

  /** What a peer asks. */
  private async peerRequest(method: string, params: Record<string, unknown>, conn: PeerConnection): Promise<unknown> {
    const { ParamReader } = await import('../agent/params.js');
    const p = new ParamReader(method, params);
    const group = p.str('group');
    switch (method) {
      case 'repl.attach':
        return this.attach(group, p, conn);
      case 'repl.hello':
      case 'repl.status':
        return this.target(group).status();
      case 'repl.epoch':
        await this.target(group).newEpoch(p.num('epoch'), p.num('base'));
        return this.target(group).status();
      case 'repl.data':
        if (!this.dataListener) throw new PlexusError('E_STATE', 'this site listens for no data channels');
        return this.target(group).offerChannel(this.dataListener, p.num('epoch'));
      case 'repl.detach':
        await this.dropTarget(group, conn.peer.site);
        return { detached: true };
      case 'repl.reverseBegin': {
        const list = p.objects('members').map((r) => ({ id: r.num('id'), words: r.bytes('words') }));
        for (const m of this.target(group).record.members) this.core.exportsWillChange(m.volume);
        const r = this.target(group).reverseBegin(list);
        this.core.changed();
        return r;
      }
      case 'repl.read':
        return this.target(group).read(p.num('id'), p.num('offset'), p.num('length'));
      case 'repl.reverseEnd':
        this.target(group).reverseEnd(p.num('epoch'), p.num('base'));
        this.core.changed();
        return this.target(group).status();
      case 'repl.localSplit':
        return this.localPairs(group, 'split');
      case 'repl.localResync':
        return this.localPairs(group, 'resync');
      case 'repl.localBackup':
        return this.localBackup(group, p.str('library'));
      default:
        throw new PlexusError('E_INVALID', `unknown peer request '${method}'`);
    }
  }

  /** Ends this site's part in `group` as its remote: fence lifted, records gone. */
  private async dropTarget(group: string, by: string): Promise<void> {
    const t = this.target(group);
    t.release();
    await t.stop();
    this.targets.delete(group);
    this.records.targets.remove(group);
    this.core.changed();
    this.log('remote-target-detached', { group, by });
  }

  /** `repl.attach`: checks the remote volumes and starts (or widens) the target of a group. */
  private async attach(group: string, p: ParamReader, conn: PeerConnection): Promise<unknown> {
    const members: Member[] = p.objects('members').map((r) => ({ id: r.num('id'), volume: r.str('volume'), size: r.num('size') }));
    if (members.length === 0) throw new PlexusError('E_INVALID', 'repl.attach: members must not be empty');
    const known = this.targets.get(group);
    for (const m of members) {
      const v = this.core.mirrors.store.open(m.volume).info();
      if (v.size !== m.size) throw new PlexusError('E_SIZE', `size mismatch: the primary is ${m.size} bytes but remote volume ${m.volume} is ${v.size} bytes`);
      const role = this.records.roleOf(m.volume);
      if (role && role.record.group !== group) throw new PlexusError('E_BUSY', `remote volume ${m.volume} is already in remote group ${role.record.group}`);
      if (role?.kind === 'source') throw new PlexusError('E_BUSY', `remote volume ${m.volume} is a replicated primary at this site`);
      if (this.core.mirrors.records.all().some((r) => r.secondary === m.volume)) throw new PlexusError('E_BUSY', `remote volume ${m.volume} is the secondary of a local pair at the remote site`);
    }
    const record: TargetRecord = {
      format: 1,
      group,
      source: conn.peer.site,
      state: 'SECONDARY',
      members,
      granularity: p.optNum('granularity') ?? known?.record.granularity ?? DEFAULT_GRANULARITY,
      updatedAt: '',
    };
    if (known) {
      if (known.record.state === 'TAKEOVER') throw new PlexusError('E_STATE', `group ${group} was taken over at the remote site`);
      await known.stop();
    }
    for (const m of members) this.core.exportsWillChange(m.volume);
    this.records.targets.save(record);
    const t = TargetGroup.open(this, record);
    const base = p.optNum('base');
    if (base !== undefined) await t.newEpoch(p.num('epoch'), base);
    this.targets.set(group, t);
    this.core.changed();
    this.log('remote-target-attached', { group, source: conn.peer.site, volumes: members.map((m) => m.volume) });
    return t.status();
  }

  /** Splits or resyncs the local pairs of a target's volumes (the remote backup's mirror). */
  private async localPairs(group: string, what: 'split' | 'resync'): Promise<unknown> {
    const t = this.target(group);
    const primaries = t.record.members.map((m) => m.volume).filter((v) => this.core.mirrors.records.all().some((r) => r.primary === v));
    if (primaries.length === 0) throw new PlexusError('E_STATE', `the volumes of group ${group} have no local mirror at the remote site (create one there: plexus pair create VOLUME MIRROR)`);
    this.core.exclusive(primaries);
    const done: string[] = [];
    if (what === 'split') {
      // Between two batches: every volume then holds the same prefix of the group's
      // sequence, so the split images are consistent with each other.
      await t.between(async () => {
        for (const primary of primaries) done.push(...(await this.core.mirrors.split({ primary })).pairs);
      });
    } else {
      for (const primary of primaries) {
        await this.core.mirrors.resync({ primary }, {});
        done.push(primary);
      }
    }
    this.core.changed();
    return {
      group,
      [what === 'split' ? 'split' : 'resynced']: done,
      secondaries: this.core.mirrors.records
        .all()
        .filter((r) => primaries.includes(r.primary))
        .map((r) => r.secondary),
    };
  }

  /** Backs up the split local mirrors of a target's volumes to a library at this site. */
  private async localBackup(group: string, library: string): Promise<unknown> {
    const t = this.target(group);
    const pairs = this.core.mirrors.records.all().filter((r) => t.record.members.some((m) => m.volume === r.primary));
    const jobs: Array<{ volume: string; job: number; bytes: number }> = [];
    for (const r of pairs) {
      if (r.state !== 'PSUS') throw new PlexusError('E_STATE', `local mirror ${r.secondary} of ${r.primary} is in ${r.state}, not split`);
      const report = await runBackup(this.core.home, r.secondary, { library });
      jobs.push({ volume: r.secondary, job: report.job, bytes: report.bytes });
    }
    return { group, jobs };
  }

  /** Stops shipping and applying; what was applied is made durable. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.server?.close();
    for (const g of this.sources.values()) await g.stop();
    for (const t of this.targets.values()) await t.stop();
    if (this.dataListener) callNative(() => this.dataListener!.shutdown());
  }
}
