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

/** A whole number from 0 to 2^53 - 1 (offsets, lengths, numbers of rows and files). */
function count(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Every field the catalog stores (NOT NULL columns) is checked here, so a malformed
 * entry is one problem of the rebuild, not a failed insert that aborts all of it. */
function check(e: CartridgeIndexEntry, where: string): void {
  const ok =
    e !== null &&
    typeof e === 'object' &&
    e.format === INDEX_FORMAT &&
    typeof e.job === 'object' &&
    e.job !== null &&
    count(e.job.id) &&
    typeof e.job.target === 'string' &&
    count(e.job.targetSize) &&
    typeof e.job.mode === 'string' &&
    typeof e.job.startedAt === 'string' &&
    typeof e.job.dataTime === 'string' &&
    typeof e.location === 'object' &&
    e.location !== null &&
    count(e.location.copy) &&
    count(e.location.seq) &&
    count(e.location.stream) &&
    typeof e.segment === 'object' &&
    e.segment !== null &&
    typeof e.segment.barcode === 'string' &&
    count(e.segment.seq) &&
    count(e.segment.fileNumber) &&
    count(e.segment.firstBlock) &&
    count(e.segment.sourceOffset) &&
    count(e.segment.length) &&
    // Absent in indexes written before thin backups: the segment holds all its bytes.
    (e.segment.dataBytes == null || (count(e.segment.dataBytes) && e.segment.dataBytes <= e.segment.length)) &&
    typeof e.segment.checksum === 'string' &&
    typeof e.segment.writtenAt === 'string';
  if (!ok) throw new PlexusError('E_CORRUPT', `the catalog file at ${where} does not describe a segment (format ${String((e as { format?: unknown })?.format)})`);
}
