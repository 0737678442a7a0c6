/**
 * A remote group at its primary site: the replicated write path of its members (a
 * `NativeReplicaGroup` attached to each member's write path), the shipper that sends the
 * journal to the remote in order and releases what the remote made durable, the resync
 * that copies dirty regions back into the journal, and the waits of sync-wait.
 *
 * A link that fails is retried until the group's link timeout; if it is not back by
 * then the group goes to PSUE (its unsent journal folded into the bitmaps). A remote
 * that restarts within the timeout is resumed from its newest applied sequence number.
 */
import fs from 'node:fs';
import path from 'node:path';
import { awaitNative, callNative, PlexusError } from '../errors.js';
import type { GroupState, Member, RemoteRecords, SourceRecord } from '../home/remote-records.js';
import type { NativePlex } from '../native/binding.js';
import { native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import type { Volume } from '../volumes/volume.js';
import { PeerClient } from './link.js';
import { checkTransition } from './states.js';

/** What a group needs from the agent it runs in. */
export interface ReplicationHost {
  records: RemoteRecords;
  site: string;
  key(): Buffer;
  plexOf(volume: string): NativePlex;
  volumeOf(volume: string): Volume;
  log(event: string, fields: Record<string, unknown>): void;
}

type NativeGroup = InstanceType<typeof native.NativeReplicaGroup>;

/** Bytes per shipped batch. */
const BATCH_BYTES = 8 << 20;
/** Bytes shipped but not yet acknowledged: enough to fill a long fat link. */
const WINDOW_BYTES = 96 << 20;
/** An idle link is probed this often (a silent dead link is found within the link timeout). */
const HEARTBEAT_MS = 1000;
/** Bytes one resync step copies. */
const STEP_BYTES = 16 << 20;

/** What `sync-wait` answers (the statuses of Hitachi's pairsyncwait). */
export type SyncWaitStatus = 'DONE' | 'TIMEOUT' | 'BROKEN' | 'CHANGED' | 'NOWAIT';

/** The lag of a group: what the remote has not applied yet. */
export interface GroupLag {
  records: number;
  bytes: number;
  /** Seconds since the remote last held every local change (0 when it does now). */
  seconds: number;
}

/** One group as `pair display` shows it. */
export interface GroupDisplay {
  kind: 'remote';
  group: string;
  peer: string;
  mode: string;
  state: GroupState;
  epoch: number;
  link: 'up' | 'down' | 'reconnecting';
  members: Array<{ volume: string; remote: string; size: number; dirtyBytes: number }>;
  lastSeq: number;
  appliedSeq: number;
  durableSeq: number;
  lag: GroupLag;
  journal: { records: number; bytes: number; capacity: number };
  lastError?: string;
}

/** The marker of a sync-wait: the epoch and sequence number, as `EPOCH:SEQ`. */
export function formatMarker(epoch: number, seq: number): string {
  return `${epoch}:${seq}`;
}

/** Parses a marker; E_INVALID if malformed. */
export function parseMarker(text: string): { epoch: number; seq: number } {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) throw new PlexusError('E_INVALID', `marker '${text}' must be EPOCH:SEQUENCE as sync-wait prints it, e.g. 2:1042`);
  return { epoch: Number(m[1]), seq: Number(m[2]) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One group at its primary site, running in the agent. */
export class SourceGroup {
  private link?: PeerClient;
  private linkState: 'up' | 'down' | 'reconnecting' = 'down';
  private stopped = false;
  private released = 0;
  private caughtUpAt = Date.now();
  private waiters = new Set<() => void>();
  private shipper?: Promise<void>;
  private resyncing = false;
  private events?: NodeJS.Timeout;
  /** The core's shipper on the data channel, while one is open. */
  private channel?: InstanceType<typeof native.NativeShipper>;
  private lastSeenApplied = -1;

  private constructor(
    private readonly host: ReplicationHost,
    public record: SourceRecord,
    readonly native: NativeGroup,
  ) {}

  /** The group's directory: journal, bitmaps. */
  static dirOf(host: ReplicationHost, group: string): string {
    return host.records.sources.dir(group);
  }

  private static memberOpts(dir: string, m: Member, granularity: number): { id: number; bitmap: string; size: number; granularity: number } {
    return { id: m.id, bitmap: path.join(dir, `member-${m.id}.bitmap`), size: m.size, granularity };
  }

  /** Opens the group of `record`: its journal (recovered), bitmaps, and its members' write paths. */
  static open(host: ReplicationHost, record: SourceRecord): SourceGroup {
    const dir = SourceGroup.dirOf(host, record.group);
    const tracking = record.state === 'PSUS' || record.state === 'PSUE';
    const g = callNative(() =>
      native.NativeReplicaGroup.open({
        journal: path.join(dir, 'journal'),
        capacity: record.journalCapacity,
        members: record.members.map((m) => SourceGroup.memberOpts(dir, m, record.granularity)),
        mode: tracking ? 'track' : record.state === 'PAIR' ? record.mode : 'async',
      }),
    );
    callNative(() => g.setSyncTimeout(record.linkTimeoutMs));
    const group = new SourceGroup(host, record, g);
    // A clean stop leaves a marker; without it the owner died, perhaps between a record's
    // append and its local commit: the held records are replayed onto the volumes first.
    const clean = path.join(dir, 'clean');
    const held = callNative(() => g.stats()).records;
    if (held > 0 && !fs.existsSync(clean)) {
      const [records, bytes] = callNative(() =>
        g.redo(
          record.members.map((m) => m.id),
          record.members.map((m) => host.plexOf(m.volume)),
        ),
      );
      host.log('remote-journal-replayed', { group: record.group, records, bytes });
    }
    fs.rmSync(clean, { force: true });
    for (const m of record.members) callNative(() => g.attach(host.plexOf(m.volume), m.id));
    // The write path suspends on its own (a full journal, a synchronous write unanswered):
    // noticed, logged and recorded within a moment, not at the next display.
    group.events = setInterval(() => group.drainEvents(), 250).unref();
    return group;
  }

  get name(): string {
    return this.record.group;
  }

  /** Starts shipping (a group in PAIR or COPY): connects and resumes from the remote's newest applied record. */
  start(): void {
    if (this.record.state === 'PAIR' || this.record.state === 'COPY') this.shipper ??= this.ship();
  }

  /** Adds a member to the group's write path (its bitmap all dirty: the initial copy sends it). */
  addMember(m: Member): void {
    const dir = SourceGroup.dirOf(this.host, this.name);
    callNative(() => this.native.addMember(SourceGroup.memberOpts(dir, m, this.record.granularity)));
    callNative(() => this.native.markAll(m.id));
    callNative(() => this.native.attach(this.host.plexOf(m.volume), m.id));
  }

  private save(): void {
    this.host.records.sources.save(this.record);
  }

  /** Moves the group to `to` (checked against the state machine), logged and saved. */
  private transition(to: GroupState, why: string): void {
    const from = this.record.state;
    if (from === to) return;
    checkTransition(from, to, this.name);
    this.record.state = to;
    if (to === 'PSUE' || to === 'PSUS') this.record.lastError = why;
    this.save();
    this.host.log('remote-group-state', { group: this.name, from, to, why });
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** Resolves at the next acknowledgement or state change, or after `ms`. */
  private nextEvent(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.waiters.add(done);
    });
  }

  /** Suspends the group: unsent journal folded into the bitmaps, tracking from now on. */
  suspend(state: 'PSUE' | 'PSUS', why: string): number {
    this.closeChannel();
    const folded = callNative(() => this.native.suspend(why));
    this.drainEvents();
    this.transition(state, why);
    this.link?.close('closed: the group is suspended');
    this.link = undefined;
    this.linkState = 'down';
    return folded;
  }

  /** Logs what the write path did on its own (a full journal, a synchronous write that timed out) and follows it. */
  drainEvents(): void {
    for (const e of callNative(() => this.native.takeEvents())) {
      this.host.log('remote-group-suspended', { group: this.name, event: e });
      if (this.record.state === 'PAIR' || this.record.state === 'COPY') {
        this.record.state = 'PSUE';
        this.record.lastError = e;
        this.save();
        this.host.log('remote-group-state', { group: this.name, to: 'PSUE', why: e });
        this.closeChannel();
        this.link?.close('closed: the group is suspended');
        this.wake();
      }
    }
  }

  private async connect(): Promise<{ applied: number; durable: number; epoch: number; state: string }> {
    const link = await PeerClient.connect(this.record.peer, this.host.key(), this.host.site, Math.min(this.record.linkTimeoutMs, 5000));
    try {
      const hello = await link.call<{ applied: number; durable: number; epoch: number; state: string; divergedAt?: number }>('repl.hello', { group: this.name }, this.record.linkTimeoutMs);
      if (hello.state === 'TAKEOVER') {
        throw new PlexusError(
          'E_STATE',
          `the remote site took group ${this.name} over at sequence ${hello.divergedAt ?? '?'}; bring it back with \`plexus pair resync --group ${this.name} --reverse\``,
        );
      }
      this.link = link;
      this.linkState = 'up';
      link.onClose(() => {
        if (this.link === link) this.linkState = 'down';
        this.wake();
      });
      return hello;
    } catch (e) {
      link.close();
      throw e;
    }
  }

  private acknowledge(applied: number, durable: number): void {
    callNative(() => this.native.acknowledge(applied, durable));
    const stats = callNative(() => this.native.stats());
    if (durable > this.released && durable <= stats.last) this.released = callNative(() => this.native.releaseDurable(durable));
    if (applied >= stats.last) this.caughtUpAt = Date.now();
    this.wake();
  }

  /**
   * The shipping loop: connect (retrying until the link timeout), resume from the
   * remote's newest applied record, then send batches as the journal grows, at most a
   * window unacknowledged. Ends when the group leaves PAIR/COPY or the agent stops.
   */
  private async ship(): Promise<void> {
    let failingSince: number | undefined;
    let lastError = '';
    try {
      while (!this.stopped && (this.record.state === 'PAIR' || this.record.state === 'COPY')) {
        if (!this.link || this.link.closed) {
          this.link = undefined;
          failingSince ??= Date.now();
          if (Date.now() - failingSince > this.record.linkTimeoutMs) {
            this.suspend('PSUE', `link to ${this.record.peer} failed: ${lastError}`);
            return;
          }
          this.linkState = 'reconnecting';
          try {
            const hello = await this.connect();
            if (hello.epoch !== this.record.epoch) throw new PlexusError('E_STATE', `the remote is in epoch ${hello.epoch}, this site in ${this.record.epoch}`);
            this.acknowledge(hello.applied, hello.durable);
            await this.openChannel(hello.applied + 1);
            this.host.log('remote-link-up', { group: this.name, peer: this.record.peer, resumeFrom: hello.applied + 1 });
            failingSince = undefined;
          } catch (e) {
            lastError = (e as Error).message;
            if ((e as PlexusError).code === 'E_STATE' || (e as PlexusError).code === 'E_AUTH') {
              this.suspend('PSUE', lastError);
              return;
            }
            await sleep(250);
          }
          continue;
        }
        if (!this.channel) {
          // A link opened elsewhere (a resync's): the channel starts after the remote's
          // newest applied record, as after a reconnect.
          try {
            await this.openChannel(callNative(() => this.native.acknowledged())[0]! + 1);
          } catch (e) {
            lastError = (e as Error).message;
            this.link?.close(`failed: ${lastError}`);
          }
          continue;
        }
        await this.watchChannel();
      }
    } finally {
      this.closeChannel();
      this.shipper = undefined;
    }
  }

  /**
   * Opens the data channel (crates/replica/src/channel.rs): the remote hands out a token
   * over the authenticated link and the core ships the journal on a connection of its
   * own, the bytes never passing through JavaScript. A channel that cannot be opened
   * fails the link (E_LINK): the reconnect logic retries it until the link timeout.
   */
  private async openChannel(from: number): Promise<void> {
    this.closeChannel();
    const link = this.link!;
    const offer = await link.call<{ port: number; token: Uint8Array }>('repl.data', { group: this.name, epoch: this.record.epoch }, this.record.linkTimeoutMs);
    const host = this.record.peer.slice(0, this.record.peer.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    const ip = host === 'localhost' ? '127.0.0.1' : host;
    const shipper = callNative(() => native.NativeShipper.create());
    try {
      await awaitNative(
        callNative(() =>
          shipper.connect(this.native, {
            address: ip.includes(':') ? `[${ip}]:${offer!.port}` : `${ip}:${offer!.port}`,
            token: Buffer.from(offer!.token),
            from,
            batchBytes: BATCH_BYTES,
            windowBytes: WINDOW_BYTES,
            ackTimeoutMs: this.record.linkTimeoutMs,
          }),
        ),
      );
      this.channel = shipper;
    } catch (e) {
      link.close(`failed: no data channel (${(e as Error).message})`);
      throw e;
    }
  }

  private closeChannel(): void {
    const c = this.channel;
    this.channel = undefined;
    if (c) callNative(() => c.stop());
  }

  /** While the core ships: follow its acknowledgements, probe the link, notice a failure. */
  private async watchChannel(): Promise<void> {
    const link = this.link!;
    const st = callNative(() => this.channel!.status());
    if (!st.running) {
      this.host.log('remote-link-failed', { group: this.name, peer: this.record.peer, error: st.error ?? 'the data channel stopped' });
      this.closeChannel();
      link.close(`failed: ${st.error ?? 'the data channel stopped'}`);
      return;
    }
    const [applied, durable] = callNative(() => this.native.acknowledged()) as [number, number];
    if (applied !== this.lastSeenApplied) {
      this.lastSeenApplied = applied;
      this.acknowledge(applied, durable);
    }
    if (st.inFlight === 0) await this.heartbeat(link);
    await sleep(st.inFlight > 0 ? 2 : 10);
  }

  private lastProbe = 0;
  private async heartbeat(link: PeerClient): Promise<void> {
    const now = Date.now();
    const [applied, durable] = callNative(() => this.native.acknowledged());
    const stats = callNative(() => this.native.stats());
    // Probe when idle for a while, or soon when the remote still owes a durable point.
    const due = now - this.lastProbe >= (durable! < stats.last || applied! < stats.last ? 100 : HEARTBEAT_MS);
    if (!due) return;
    this.lastProbe = now;
    try {
      const st = await link.call<{ applied: number; durable: number }>('repl.status', { group: this.name }, this.record.linkTimeoutMs);
      if (this.link === link) this.acknowledge(st.applied, st.durable);
    } catch (e) {
      if (this.link === link) link.close(`failed: ${(e as Error).message}`);
    }
  }

  /** The lag and state, as `pair display` shows them. */
  display(): GroupDisplay {
    this.drainEvents();
    const stats = callNative(() => this.native.stats());
    const [applied, durable] = callNative(() => this.native.acknowledged()) as [number, number];
    const tracking = this.record.state === 'PSUS' || this.record.state === 'PSUE';
    const behind = tracking ? 0 : Math.max(0, stats.last - applied);
    return {
      kind: 'remote',
      group: this.name,
      peer: this.record.peer,
      mode: this.record.mode,
      state: this.record.state,
      epoch: this.record.epoch,
      link: this.linkState,
      members: this.record.members.map((m) => ({ volume: m.volume, remote: m.remote ?? m.volume, size: m.size, dirtyBytes: callNative(() => this.native.dirtyBytes(m.id)) })),
      lastSeq: stats.last,
      appliedSeq: applied,
      durableSeq: durable,
      lag: { records: behind, bytes: behind > 0 ? stats.bytes : 0, seconds: behind > 0 ? (Date.now() - this.caughtUpAt) / 1000 : 0 },
      journal: { records: stats.records, bytes: stats.bytes, capacity: this.record.journalCapacity },
      lastError: this.record.lastError,
    };
  }

  /**
   * sync-wait: DONE once the remote applied the marker's sequence number (default: the
   * newest local one), TIMEOUT when `timeoutMs` passes first, BROKEN when the group is
   * not in PAIR, CHANGED when the marker is of an older epoch (the group was resynced).
   */
  async syncWait(opts: { marker?: string; timeoutMs: number; nowait?: boolean }): Promise<{ status: SyncWaitStatus; marker: string; appliedSeq: number }> {
    this.drainEvents();
    const current = formatMarker(this.record.epoch, callNative(() => this.native.stats()).last);
    const applied = (): number => callNative(() => this.native.acknowledged())[0]!;
    if (opts.nowait) return { status: 'NOWAIT', marker: current, appliedSeq: applied() };
    const target = parseMarker(opts.marker ?? current);
    const marker = formatMarker(target.epoch, target.seq);
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      this.drainEvents();
      if (target.epoch !== this.record.epoch) return { status: 'CHANGED', marker, appliedSeq: applied() };
      if (this.record.state !== 'PAIR') return { status: 'BROKEN', marker, appliedSeq: applied() };
      if (applied() >= target.seq) return { status: 'DONE', marker, appliedSeq: applied() };
      const left = deadline - Date.now();
      if (left <= 0) return { status: 'TIMEOUT', marker, appliedSeq: applied() };
      await this.nextEvent(Math.min(left, 200));
    }
  }

  /** Switches between asynchronous and synchronous replication. */
  setMode(mode: 'async' | 'sync'): void {
    this.record.mode = mode;
    this.save();
    if (this.record.state === 'PAIR') callNative(() => this.native.setMode(mode));
    this.host.log('remote-group-mode', { group: this.name, mode });
  }

  /**
   * Copies every member's dirty regions to the remote (the initial copy, or a resync
   * out of PSUS/PSUE) while writes go on, then returns to PAIR. A new epoch starts: the
   * remote restarts its sequence after the journal's newest number, and sync-wait
   * markers of the old epoch answer CHANGED.
   */
  async resync(opts: { signal: AbortSignal; onProgress: ProgressCallback }): Promise<{ group: string; bytes: number; dataBytes: number; records: number; epoch: number; state: GroupState }> {
    if (this.resyncing) throw new PlexusError('E_BUSY', `group ${this.name} is being resynced already`);
    if (this.record.state === 'PAIR') throw new PlexusError('E_STATE', `group ${this.name} is in PAIR already; nothing to resync`);
    this.resyncing = true;
    try {
      if (this.record.state !== 'COPY') {
        const hello = await this.connect();
        const base = callNative(() => this.native.stats()).last;
        const epoch = Math.max(this.record.epoch, hello.epoch) + 1;
        await this.link!.call('repl.epoch', { group: this.name, epoch, base }, this.record.linkTimeoutMs);
        callNative(() => this.native.resetAcks(base));
        this.released = base;
        this.record.epoch = epoch;
        callNative(() => this.native.setMode('async'));
        this.transition('COPY', 'resync');
        this.host.log('remote-resync-started', { group: this.name, epoch, base });
      }
      this.start();
      const total = this.record.members.reduce((n, m) => n + callNative(() => this.native.dirtyBytes(m.id)), 0);
      let bytes = 0;
      let dataBytes = 0;
      let records = 0;
      // Half the journal for the copy: the application's writes keep the other half.
      const budget = Math.floor(this.record.journalCapacity / 2);
      opts.onProgress({ operation: 'resync', done: 0, total });
      for (const m of this.record.members) {
        let from = 0;
        const volume = this.host.volumeOf(m.volume);
        for (;;) {
          this.drainEvents();
          if (this.record.state !== 'COPY')
            throw new PlexusError('E_LINK', `group ${this.name} left COPY during the resync (${this.record.lastError ?? 'suspended'}); run \`plexus pair resync --group ${this.name}\` again`);
          if (opts.signal.aborted) {
            this.suspend('PSUS', 'resync cancelled');
            throw new PlexusError('E_CANCELLED', `resync of group ${this.name} cancelled; what was copied stays copied, run it again to finish`);
          }
          const step = await awaitNative(this.native.copyStep(m.id, volume.handle, from, STEP_BYTES, budget));
          bytes += step.bytes;
          dataBytes += step.dataBytes;
          records += step.records;
          from = step.next;
          opts.onProgress({ operation: 'resync', done: Math.min(bytes, total), total });
          if (step.done) break;
          // The journal holds its budget: wait for the shipper to free some.
          if (step.bytes === 0) await this.nextEvent(50);
        }
      }
      // Back in PAIR once the remote applied everything copied.
      const last = callNative(() => this.native.stats()).last;
      for (;;) {
        this.drainEvents();
        if (this.record.state !== 'COPY') throw new PlexusError('E_LINK', `group ${this.name} left COPY before the remote applied the resync (${this.record.lastError ?? 'suspended'})`);
        if (callNative(() => this.native.acknowledged())[0]! >= last) break;
        if (opts.signal.aborted) {
          this.suspend('PSUS', 'resync cancelled');
          throw new PlexusError('E_CANCELLED', `resync of group ${this.name} cancelled`);
        }
        await this.nextEvent(200);
      }
      callNative(() => this.native.setMode(this.record.mode));
      this.transition('PAIR', 'resync complete');
      this.host.log('remote-resync-done', { group: this.name, bytes, dataBytes, records });
      return { group: this.name, bytes, dataBytes, records, epoch: this.record.epoch, state: this.record.state };
    } finally {
      this.resyncing = false;
    }
  }

  /** Starts `epoch` at this end: the remote's numbering restarts after `base`. */
  enterEpoch(epoch: number, base: number): void {
    callNative(() => this.native.resetAcks(base));
    this.released = base;
    this.record.epoch = epoch;
    this.save();
  }

  /** After a reverse resync made both ends equal: PAIR (through COPY), replicating again. */
  resumeAfterReverse(): void {
    for (const m of this.record.members) callNative(() => this.native.clearDirty(m.id));
    callNative(() => this.native.setMode(this.record.mode));
    this.transition('COPY', 'reverse resync');
    this.transition('PAIR', 'reverse resync complete');
    this.start();
  }

  /** A new link to the remote, for requests beside the shipping (split, backup, reverse resync); the caller closes it. */
  peer(): Promise<PeerClient> {
    return PeerClient.connect(this.record.peer, this.host.key(), this.host.site, Math.min(this.record.linkTimeoutMs, 5000));
  }

  /** Writes data a reverse resync brought back into member `id`, through its write path but not its replication. */
  writeBack(id: number, offset: number, data: Buffer): void {
    const m = this.record.members.find((x) => x.id === id);
    if (!m) throw new PlexusError('E_PROTOCOL', `the remote named member ${id}, which group ${this.name} does not have`);
    callNative(() => this.host.plexOf(m.volume).writeLocal(offset, data));
  }

  /** Stops shipping (the agent stops): the journal keeps what was not sent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.events);
    this.link?.close('closed: the agent is stopping');
    await this.shipper;
    // Every change is committed locally now (the exports and writers stop first).
    fs.writeFileSync(path.join(SourceGroup.dirOf(this.host, this.name), 'clean'), `${new Date().toISOString()}\n`);
  }

  /** Detaches the members' write paths (the group is deleted). */
  detach(): void {
    for (const m of this.record.members) callNative(() => this.native.detach(this.host.plexOf(m.volume)));
  }
}
