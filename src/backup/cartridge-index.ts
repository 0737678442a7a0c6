/**
 * The catalog rows a cartridge carries about itself: after each segment's data file
 * comes a small file holding one msgpack map that describes the job, the location entry
 * and the segment, so `catalog rebuild` can recreate the catalog from cartridges alone.
 * A segment file holding several chunks (EXTENDED COPY, parallel streams) is followed
 * by an array of such maps, one per chunk, in order.
 */
import { Packr } from 'msgpackr';
import type { JobRow, LocationRow, NewSegment } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';

/** Version of the map; bumped when a field changes meaning. */
export const INDEX_FORMAT = 1;

/** What a cartridge records about one segment it holds. */
export interface CartridgeIndexEntry {
  format: typeof INDEX_FORMAT;
  /** `consistency`: what the job's data is as the job started (absent on cartridges
   * written before it was recorded: rebuilt as 'unknown'). A frozen image whose file
   * changed during the job is downgraded in the catalog only, when the job ends. */
  job: Pick<JobRow, 'id' | 'target' | 'targetSize' | 'mode' | 'startedAt' | 'dataTime'> & { consistency?: JobRow['consistency'] };
  location: Pick<LocationRow, 'copy' | 'seq' | 'library' | 'stream'>;
  segment: NewSegment;
}

// Plain maps with no shared-structure records: a reader years from now needs only msgpack.
const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Encodes the entries of a segment file's chunks (one: a plain map) for writing after it. */
export function encodeIndex(e: CartridgeIndexEntry | readonly CartridgeIndexEntry[]): Buffer {
  return packr.pack(Array.isArray(e) && e.length === 1 ? e[0] : e);
}

/** Decodes the entries read from a cartridge; E_CORRUPT naming where they came from if malformed. */
export function decodeIndex(bytes: Buffer, where: string): CartridgeIndexEntry[] {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch (err) {
    throw new PlexusError('E_CORRUPT', `the catalog file at ${where} is not msgpack: ${(err as Error).message}`, { cause: err });
  }
  const all = Array.isArray(v) ? (v as CartridgeIndexEntry[]) : [v as CartridgeIndexEntry];
  if (all.length === 0) throw new PlexusError('E_CORRUPT', `the catalog file at ${where} describes no segment`);
  for (const e of all) check(e, where);
  return all;
}

function check(e: CartridgeIndexEntry, where: string): void {
  const ok =
    e !== null &&
    typeof e === 'object' &&
    e.format === INDEX_FORMAT &&
    typeof e.job?.id === 'number' &&
    typeof e.job.target === 'string' &&
    typeof e.location?.copy === 'number' &&
    typeof e.segment?.barcode === 'string' &&
    typeof e.segment.sourceOffset === 'number' &&
    typeof e.segment.length === 'number';
  if (!ok) throw new PlexusError('E_CORRUPT', `the catalog file at ${where} does not describe a segment (format ${String((e as { format?: unknown })?.format)})`);
}
