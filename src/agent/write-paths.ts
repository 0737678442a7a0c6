/**
 * The agent's write path of each volume (`NativePlex`: the volume, its pairs' mirrors,
 * its checkpoints, its remote replication), one per volume for the agent's life, shared
 * by the library's writes, the NBD exports and remote replication, so a change made by
 * any of them goes through the same mirrors and the same journal.
 */
import { callNative } from '../errors.js';
import { PlexSet } from '../mirror/plexset.js';
import { type NativePlex, native } from '../native/binding.js';
import type { VolumeStore } from '../volumes/store.js';
import type { Volume } from '../volumes/volume.js';

/** The registry of write paths. */
export class WritePaths {
  private readonly plexes = new Map<string, { plex: NativePlex; volume: Volume }>();

  constructor(private readonly store: VolumeStore) {
    PlexSet.plexFor = (volume) => this.of(volume.name, volume);
  }

  /** The write path of `name` (opened now if it has none yet). */
  of(name: string, volume?: Volume): NativePlex {
    return this.entry(name, volume).plex;
  }

  /** The volume the write path of `name` holds open. */
  volumeOf(name: string): Volume {
    return this.entry(name).volume;
  }

  private entry(name: string, volume?: Volume): { plex: NativePlex; volume: Volume } {
    const known = this.plexes.get(name);
    if (known) return known;
    const v = volume ?? this.store.open(name);
    const e = { plex: callNative(() => native.NativePlex.create(v.handle)), volume: v };
    this.plexes.set(name, e);
    return e;
  }

  /** The write path of `name` if one is open. */
  peek(name: string): NativePlex | undefined {
    return this.plexes.get(name)?.plex;
  }

  /** Forgets `name`'s write path (its volume was removed), unless a pair set or replication holds it. */
  forget(name: string): void {
    const e = this.plexes.get(name);
    if (!e || PlexSet.kept(name) || e.plex.fence !== null || e.plex.replicated) return;
    this.plexes.delete(name);
  }

  /** Makes every write durable and stops handing out write paths. */
  close(): void {
    if (PlexSet.plexFor) PlexSet.plexFor = undefined;
    for (const { plex } of this.plexes.values()) callNative(() => plex.flush());
  }
}
