/**
 * A remote group at its remote site: the sequenced applier writing into the members'
 * write paths (and through them into any local mirror of theirs), the fence that keeps
 * this site's own hosts and exports from writing while paired, and the takeover that
 * lifts it, recording from which sequence number on the volumes diverge and tracking
 * what is written from then on (the regions a reverse resync sends back).
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { awaitNative, callNative, PlexusError } from '../errors.js';
import type { TargetRecord } from '../home/remote-records.js';
import { native } from '../native/binding.js';
import type { ReplicationHost } from './source.js';

type NativeApplier = InstanceType<typeof native.NativeApplier>;
type NativeGroup = InstanceType<typeof native.NativeReplicaGroup>;

/** Bytes the applier may buffer out of order. */
const REORDER_WINDOW = 256 << 20;
/** The applied point is made durable this often while records arrive. */
const COMMIT_MS = 100;

/** One group at its remote site. */
export class TargetGroup {
  private chain: Promise<unknown> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private tracker?: NativeGroup;
  private committing?: Promise<void>;
  /** The open data channel's id at the listener, if any. */
  private channel?: number;

  private constructor(
    private readonly host: ReplicationHost,
    public record: TargetRecord,
    readonly applier: NativeApplier,
  ) {}

  static dirOf(host: ReplicationHost, group: string): string {
    return host.records.targets.dir(group);
  }

  /** Opens the applier of `record` (resuming from its durable point) and fences or tracks the members. */
  static open(host: ReplicationHost, record: TargetRecord): TargetGroup {
    const dir = TargetGroup.dirOf(host, record.group);
    const plexes = record.members.map((m) => host.plexOf(m.volume));
    const applier = callNative(() =>
      native.NativeApplier.open(
        path.join(dir, 'applied'),
        record.members.map((m) => m.id),
        plexes,
        REORDER_WINDOW,
      ),
    );
    const t = new TargetGroup(host, record, applier);
    if (record.state === 'TAKEOVER') t.openTracker();
    else t.fence();
    t.timer = setInterval(() => t.commitIfDue(), COMMIT_MS).unref();
    return t;
  }

  get name(): string {
    return this.record.group;
  }

  private fence(): void {
    for (const m of this.record.members) {
      callNative(() =>
        this.host
          .plexOf(m.volume)
          .setFence(
            `volume ${m.volume} is the remote secondary of group ${this.name} (replicated from ${this.record.source}); it takes writes only after \`plexus remote takeover --group ${this.name}\``,
          ),
      );
    }
  }

  private openTracker(): void {
    const dir = TargetGroup.dirOf(this.host, this.name);
    this.tracker = callNative(() =>
      native.NativeReplicaGroup.open({
        journal: path.join(dir, 'takeover-journal'),
        capacity: 1 << 20,
        members: this.record.members.map((m) => ({ id: m.id, bitmap: path.join(dir, `takeover-${m.id}.bitmap`), size: m.size, granularity: this.record.granularity })),
        mode: 'track',
      }),
    );
    for (const m of this.record.members) {
      const plex = this.host.plexOf(m.volume);
      callNative(() => this.tracker!.attach(plex, m.id));
      callNative(() => plex.setFence());
    }
  }

  /** Where the applier is: newest applied and durable sequence numbers, the epoch, the state. */
  status(): { applied: number; durable: number; epoch: number; state: string; divergedAt?: number; buffered: number[] } {
    return {
      applied: this.applier.applied,
      durable: this.applier.durable,
      epoch: this.applier.epoch,
      state: this.record.state,
      divergedAt: this.record.divergedAt,
      buffered: callNative(() => this.applier.buffered()),
    };
  }

  private refuseIfTakenOver(): void {
    if (this.record.state === 'TAKEOVER')
      throw new PlexusError('E_STATE', `group ${this.name} was taken over at this site at sequence ${this.record.divergedAt}; it takes no records until a reverse resync`);
  }

  /**
   * Makes the applied point durable now and then, beside the applying (the applier's
   * commit syncs the volumes and records the point it saw before syncing; the data
   * channel goes on applying meanwhile), so the disk's write-back never stalls it.
   */
  private commitIfDue(): void {
    if (this.committing || this.applier.applied <= this.applier.durable) return;
    this.committing = awaitNative(this.applier.commit())
      .then(
        () => undefined,
        (e: Error) => this.host.log('remote-commit-failed', { group: this.name, error: e.message }),
      )
      .finally(() => {
        this.committing = undefined;
      });
  }

  /**
   * Offers a data channel into this group's applier (the primary's core connects to
   * `listener` with the token); ends any channel open before.
   */
  offerChannel(listener: InstanceType<typeof native.NativeDataListener>, epoch: number): { port: number; token: Buffer } {
    this.refuseIfTakenOver();
    if (epoch !== this.applier.epoch) throw new PlexusError('E_STATE', `data channel for epoch ${epoch} of group ${this.name}, which is in epoch ${this.applier.epoch}`);
    this.cutChannel();
    const token = crypto.randomBytes(32);
    this.channel = callNative(() => listener.expect(this.applier, token));
    this.listener = listener;
    return { port: listener.port, token };
  }

  /** Ends the data channel (a takeover, a new epoch, a reverse resync, a stop). */
  cutChannel(): void {
    if (this.channel !== undefined && this.listener) callNative(() => this.listener!.cut(this.channel!));
    this.channel = undefined;
  }

  private listener?: InstanceType<typeof native.NativeDataListener>;

  /** Runs `fn` between two batches (no record is applied while it runs, from the link or the data channel). */
  between<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      // The applier's pause returns once no batch is being applied (a few ms at most).
      callNative(() => this.applier.pause());
      try {
        return await fn();
      } finally {
        callNative(() => this.applier.resume());
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Starts a new epoch: the next record expected is `base + 1`. */
  async newEpoch(epoch: number, base: number): Promise<void> {
    this.cutChannel();
    const run = async (): Promise<void> => {
      this.refuseIfTakenOver();
      callNative(() => this.applier.reset(base, epoch));
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    await p;
  }

  /**
   * Takeover (the primary site is lost, or on request): what was applied is made
   * durable, the divergence point recorded, writes from this site allowed and tracked.
   */
  async takeover(): Promise<{ group: string; divergedAt: number; volumes: string[] }> {
    if (this.record.state === 'TAKEOVER') return { group: this.name, divergedAt: this.record.divergedAt ?? 0, volumes: this.record.members.map((m) => m.volume) };
    // No batch may land after the divergence point is taken.
    this.cutChannel();
    const run = async (): Promise<number> => {
      await awaitNative(this.applier.commit());
      return this.applier.applied;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    const applied = await p;
    this.record.state = 'TAKEOVER';
    this.record.divergedAt = applied;
    this.record.takenOverAt = new Date().toISOString();
    this.host.records.targets.save(this.record);
    this.openTracker();
    this.host.log('remote-takeover', { group: this.name, divergedAt: applied });
    return { group: this.name, divergedAt: applied, volumes: this.record.members.map((m) => m.volume) };
  }

  /**
   * The start of a reverse resync: the old primary's own changes since the divergence
   * (`words` per member) are merged into what this site changed; this site is fenced
   * again; the regions to send back are returned.
   */
  reverseBegin(members: Array<{ id: number; words: Buffer }>): { runs: Array<{ id: number; runs: number[][] }>; bytes: number } {
    if (this.record.state !== 'TAKEOVER' || !this.tracker) throw new PlexusError('E_STATE', `group ${this.name} was not taken over at this site; there is nothing to reverse`);
    this.cutChannel();
    for (const m of members) callNative(() => this.tracker!.mergeDirty(m.id, Buffer.from(m.words)));
    this.fence();
    const runs = this.record.members.map((m) => ({ id: m.id, runs: callNative(() => this.tracker!.dirtyRuns(m.id, 1_000_000)) }));
    const bytes = this.record.members.reduce((n, m) => n + callNative(() => this.tracker!.dirtyBytes(m.id)), 0);
    return { runs, bytes };
  }

  /** Reads a region of member `id` for a reverse resync. */
  read(id: number, offset: number, length: number): Buffer {
    const m = this.record.members.find((x) => x.id === id);
    if (!m) throw new PlexusError('E_NOENT', `group ${this.name} has no member ${id}`);
    if (length > 4 << 20) throw new PlexusError('E_RANGE', `a reverse-resync read is at most 4 MiB, asked for ${length}`);
    return this.host.volumeOf(m.volume).read(offset, length);
  }

  /** The end of a reverse resync: back to being the secondary, in `epoch` from `base`. */
  reverseEnd(epoch: number, base: number): void {
    if (!this.tracker) throw new PlexusError('E_STATE', `group ${this.name} is not being reversed`);
    for (const m of this.record.members) {
      callNative(() => this.tracker!.detach(this.host.plexOf(m.volume)));
      callNative(() => this.tracker!.clearDirty(m.id));
    }
    this.tracker = undefined;
    callNative(() => this.applier.reset(base, epoch));
    this.record.state = 'SECONDARY';
    delete this.record.divergedAt;
    delete this.record.takenOverAt;
    this.host.records.targets.save(this.record);
    this.fence();
    this.host.log('remote-reverse-done', { group: this.name, epoch, base });
  }

  /** Stops: what was applied is made durable. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.cutChannel();
    await this.chain;
    await this.committing;
    await awaitNative(this.applier.commit()).catch(() => undefined);
  }

  /** Lifts the fence (the pair is deleted). */
  release(): void {
    clearInterval(this.timer);
    this.cutChannel();
    for (const m of this.record.members) callNative(() => this.host.plexOf(m.volume).setFence());
    if (this.tracker) for (const m of this.record.members) callNative(() => this.tracker!.detach(this.host.plexOf(m.volume)));
  }
}
