/**
 * What each site remembers of its remote groups (kept with the home, so that the pair
 * layer can tell a replicated volume without depending on replication itself), durably (one JSON file per group,
 * replaced atomically): at the primary site a *source* record (the peer, the members,
 * the state, the epoch), at the remote site a *target* record (the members it applies
 * to, whether it has taken over and from which sequence number). The journal, bitmaps
 * and the applier's state live beside each record.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PlexusError } from '../errors.js';
import { writeFileDurable } from '../util/durable.js';

/** Where a home keeps its remote-replication state (keys, groups, targets). */
export function remoteDir(homeDir: string): string {
  return path.join(homeDir, 'remote');
}

/** States of a remote group at its primary site (the pair states of the CLI contract). */
export const GROUP_STATES = ['COPY', 'PAIR', 'PSUS', 'PSUE'] as const;
/** COPY: initial copy or resync; PAIR: replicating; PSUS: split by the user; PSUE: suspended by a failure. */
export type GroupState = (typeof GROUP_STATES)[number];

/** Replication mode: asynchronous (journaled) or synchronous (003 Fig. 4). */
export type ReplicationMode = 'async' | 'sync';

/** One volume of a group. */
export interface Member {
  /** Its id within the group: records name it. */
  id: number;
  /** The volume at this site. */
  volume: string;
  /** The volume at the other site (a source record). */
  remote?: string;
  size: number;
}

/** A group at its primary site. */
export interface SourceRecord {
  format: 1;
  group: string;
  /** The remote site's peer address, `HOST:PORT`. */
  peer: string;
  mode: ReplicationMode;
  state: GroupState;
  /** Bumped by every resync: a sync-wait marker of an older epoch is void (CHANGED). */
  epoch: number;
  members: Member[];
  granularity: number;
  /** Most bytes the journal holds before the group suspends. */
  journalCapacity: number;
  /** A link silent this long (or a synchronous write unanswered) suspends the group. */
  linkTimeoutMs: number;
  /** Why the group last left PAIR. */
  lastError?: string;
  updatedAt: string;
}

/** States of a group at its remote site. */
export type TargetState = 'SECONDARY' | 'TAKEOVER';

/** A group at its remote site. */
export interface TargetRecord {
  format: 1;
  group: string;
  /** The primary site's name, as its handshake gave it. */
  source: string;
  state: TargetState;
  members: Member[];
  granularity: number;
  /** After a takeover: the last sequence number applied; changes from here on diverge. */
  divergedAt?: number;
  takenOverAt?: string;
  updatedAt: string;
}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** E_INVALID unless `name` is a usable group name. */
export function checkGroupName(name: string): void {
  if (!GROUP_NAME.test(name)) throw new PlexusError('E_INVALID', `group name '${name}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
}

/** One kind of record, one directory per group. */
class RecordDir<T extends { group: string; updatedAt: string }> {
  constructor(
    private readonly root: string,
    private readonly file: string,
    private readonly what: string,
  ) {}

  /** The group's directory (journal, bitmaps, state beside the record). */
  dir(group: string): string {
    checkGroupName(group);
    return path.join(this.root, group);
  }

  get(group: string): T | undefined {
    const f = path.join(this.dir(group), this.file);
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const r = JSON.parse(text) as T & { format?: unknown };
      if (r.format !== 1 || r.group !== group) throw new Error('wrong format or group');
      return r;
    } catch (e) {
      throw new PlexusError('E_CORRUPT', `${this.what} record ${f} is damaged: ${(e as Error).message}`, { cause: e });
    }
  }

  require(group: string): T {
    const r = this.get(group);
    if (!r) throw new PlexusError('E_NOENT', `no remote group '${group}' at this site`);
    return r;
  }

  all(): T[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch {
      return [];
    }
    return names
      .filter((n) => GROUP_NAME.test(n))
      .flatMap((n) => {
        const r = this.get(n);
        return r ? [r] : [];
      });
  }

  save(r: T): void {
    r.updatedAt = new Date().toISOString();
    fs.mkdirSync(this.dir(r.group), { recursive: true, mode: 0o700 });
    writeFileDurable(path.join(this.dir(r.group), this.file), `${JSON.stringify(r, null, 2)}\n`);
  }

  remove(group: string): void {
    fs.rmSync(this.dir(group), { recursive: true, force: true });
  }
}

/** The remote records of one home. */
export class RemoteRecords {
  readonly sources: RecordDir<SourceRecord>;
  readonly targets: RecordDir<TargetRecord>;

  constructor(readonly homeDir: string) {
    this.sources = new RecordDir<SourceRecord>(path.join(remoteDir(homeDir), 'groups'), 'group.json', 'remote group');
    this.targets = new RecordDir<TargetRecord>(path.join(remoteDir(homeDir), 'targets'), 'target.json', 'remote target');
  }

  /** What remote replication makes of `volume` at this site, if anything. */
  roleOf(volume: string): { kind: 'source'; record: SourceRecord } | { kind: 'target'; record: TargetRecord } | undefined {
    for (const r of this.sources.all()) if (r.members.some((m) => m.volume === volume)) return { kind: 'source', record: r };
    for (const r of this.targets.all()) if (r.members.some((m) => m.volume === volume)) return { kind: 'target', record: r };
    return undefined;
  }
}

/**
 * Refuses a write to `volume` by a process that is not the site agent when remote
 * replication owns it: a primary's changes are journaled by the agent (E_AGENT), a
 * remote secondary takes writes only after a takeover (E_STATE).
 */
export function checkRemoteWrite(homeDir: string, volume: string, inAgent: boolean): void {
  if (!fs.existsSync(remoteDir(homeDir))) return;
  const role = new RemoteRecords(homeDir).roleOf(volume);
  if (!role) return;
  if (role.kind === 'target' && role.record.state !== 'TAKEOVER') {
    throw new PlexusError(
      'E_STATE',
      `volume ${volume} is the remote secondary of group ${role.record.group} (replicated from ${role.record.source}); it takes writes only after \`plexus remote takeover --group ${role.record.group}\``,
    );
  }
  if (!inAgent) {
    throw new PlexusError(
      'E_AGENT',
      `volume ${volume} is replicated by remote group ${role.record.group}: its writes go through the site agent, which journals them; start it (plexus serve --detach)`,
    );
  }
}
