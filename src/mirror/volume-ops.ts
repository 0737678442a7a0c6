/** Volume operations that must respect pairs: removing a volume, copying onto one. */
import { PlexusError } from '../errors.js';
import { RemoteRecords } from '../home/remote-records.js';
import { type CopyOptions, type CopyReport, checkCopyOptions, copyVolume } from '../volumes/copy.js';
import { checkDataFileRead } from './io.js';
import type { Mirrors } from './mirrors.js';
import type { PairRecord } from './record.js';

/** The pair `name` belongs to (as primary or secondary), if any. */
export function pairOfVolume(mirrors: Mirrors, name: string): PairRecord | undefined {
  return pairIn(mirrors.records.all(), name);
}

function pairIn(records: readonly PairRecord[], name: string): PairRecord | undefined {
  return records.find((r) => r.primary === name || r.secondary === name);
}

/** Deletes a volume; E_BUSY while it is in a pair (delete the pair first). */
export function removeVolume(mirrors: Mirrors, name: string): void {
  const pair = pairOfVolume(mirrors, name);
  if (pair) throw new PlexusError('E_BUSY', `volume ${name} is in pair ${pair.primary} → ${pair.secondary}; delete the pair first`);
  const remote = new RemoteRecords(mirrors.store.home.dir).roleOf(name);
  if (remote) throw new PlexusError('E_BUSY', `volume ${name} is in remote group ${remote.record.group}; delete it first (plexus remote pair delete --group ${remote.record.group})`);
  mirrors.store.remove(name);
}

/** What `copyToVolume` did: the copy's report and whether it created the destination. */
export interface CopyToVolumeReport extends CopyReport {
  created: boolean;
}

/**
 * Copies volume `src` onto volume `dst`, creating `dst` with the source's geometry when it
 * does not exist. E_BUSY for a copy onto itself or onto a paired volume (it would bypass
 * the mirror); E_ACCESS for a secondary whose access list refuses `opts.host` (default:
 * $PLEXUS_HOST, else the hostname); E_STATE for the secondary of an instant split whose fill is pending (its
 * data file does not hold the image yet); E_INVALID for bad copy options, before
 * anything is touched. A failed or cancelled copy removes a destination it created.
 */
export async function copyToVolume(mirrors: Mirrors, src: string, dst: string, opts: CopyOptions & { host?: string } = {}): Promise<CopyToVolumeReport> {
  checkCopyOptions(opts);
  if (src === dst) throw new PlexusError('E_BUSY', `cannot copy volume ${src} onto itself`);
  const records = mirrors.records.all();
  const paired = pairIn(records, dst);
  if (paired) throw new PlexusError('E_BUSY', `volume ${dst} is in pair ${paired.primary} → ${paired.secondary}; a copy onto it would bypass the mirror`);
  const asSecondary = records.find((r) => r.secondary === src);
  checkDataFileRead(asSecondary, opts.host, `copy it to ${dst}`);
  const store = mirrors.store;
  const s = store.open(src, { readOnly: true });
  const si = s.info();
  const created = !store.exists(dst);
  const d = created ? store.create(dst, { size: si.size, blockSize: si.blockSize }) : store.open(dst);
  try {
    const r = await copyVolume(s, d, opts);
    return { ...r, created };
  } catch (e) {
    // A destination this copy created holds a partial image: remove it (as a restore
    // removes its partial file), so a failed or cancelled copy leaves nothing behind.
    if (created) {
      try {
        store.remove(dst);
      } catch {
        // Left for `volume rm`; the copy's own error is what the caller needs.
      }
    }
    throw e;
  }
}
