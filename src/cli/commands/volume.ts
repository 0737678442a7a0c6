/**
 * `plexus volume create|list|show|rm|write|read|checksum` (declared in ../tree/volume.ts).
 * The commands that go through the pairs (rm, write, read, checksum) import them when
 * they run: `volume list` and `show` load only the volume store.
 */
import { PlexusError } from '../../errors.js';
import type { VolumeIo } from '../../mirror/io.js';
import type { PairSuspension } from '../../mirror/plexset.js';
import { formatBytes, parseSize } from '../../util/size.js';
import type { VolumeInfo } from '../../volumes/volume.js';
import { byteOpt, type GlobalOptions, intOpt, sizeOpt, volumesOf } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

function infoFields(i: VolumeInfo): Array<[string, string | number]> {
  return [
    ['name', i.name],
    ['id', i.id],
    ['size', `${i.size} (${formatBytes(i.size)})`],
    ['block size', i.blockSize],
    ['created', i.created],
    ['path', i.path],
  ];
}

/** Moving bytes between files and volumes; only the commands that move them load it. */
const files = () => import('../../volumes/files.js');

/** Resolves --offset/--length against the volume, defaulting to "to the end". */
async function rangeOf(v: VolumeIo, o: { offset?: string; length?: string }): Promise<{ offset: number; length: number }> {
  return (await files()).resolveRange(v, sizeOpt(o.offset, 'offset'), sizeOpt(o.length, 'length'));
}

/** `volume create`: the one volume command that creates the home when it is missing. */
export function runVolumeCreate(name: string, o: GlobalOptions & { size: string; blockSize: string; json?: boolean }): void {
  const v = volumesOf(o, { create: true }).create(name, { size: parseSize(o.size, 'size'), blockSize: parseSize(o.blockSize, 'block size') });
  const i = v.info();
  if (o.json) printJson(i);
  else process.stdout.write(`created volume ${i.name}: ${formatBytes(i.size)}, block size ${i.blockSize}, id ${i.id}\n`);
}

/** `volume list`. */
export function runVolumeList(o: GlobalOptions & { json?: boolean }): void {
  const list = volumesOf(o).list();
  if (o.json) {
    printJson(list);
    return;
  }
  if (list.length === 0) return void process.stdout.write('no volumes\n');
  printTable(
    ['NAME', 'SIZE', 'BLOCK', 'ID', 'CREATED'],
    list.map((i) => [i.name, formatBytes(i.size), String(i.blockSize), i.id, i.created]),
  );
}

/** `volume show`. */
export function runVolumeShow(name: string, o: GlobalOptions & { json?: boolean }): void {
  const i = volumesOf(o).open(name, { readOnly: true }).info();
  if (o.json) printJson(i);
  else printFields(infoFields(i));
}

/** `volume rm`: refused while the volume is in a pair (the library's rule). */
export async function runVolumeRm(name: string, o: GlobalOptions): Promise<void> {
  const [{ removeVolume }, { mirrorsOf }] = await Promise.all([import('../../mirror/volume-ops.js'), import('../mirrors.js')]);
  removeVolume(mirrorsOf(o), name);
  process.stdout.write(`removed volume ${name}\n`);
}

/** `volume write`: a pattern, seeded random bytes or a file. */
export async function runVolumeWrite(name: string, o: GlobalOptions & Record<string, string | undefined>): Promise<void> {
  const sources = [o.pattern, o.random, o.from].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new PlexusError('E_INVALID', 'give exactly one of --pattern, --random or --from');
  if (o.pattern !== undefined && o.length === undefined) throw new PlexusError('E_INVALID', '--pattern needs --length');
  const offset = parseSize(o.offset ?? '0', 'offset');
  const length = o.pattern !== undefined ? parseSize(o.length!, 'length') : o.random !== undefined ? parseSize(o.random, 'length') : 0;
  const pattern = o.pattern !== undefined ? byteOpt(o.pattern) : undefined;
  const seed = o.random !== undefined ? intOpt(o.seed, 'seed')! : undefined;
  const [{ fillIo }, { mirrorsOf }] = await Promise.all([import('../../mirror/fill.js'), import('../mirrors.js')]);
  // A pair suspended on the way (PSUE) does not fail the write: the operator is told.
  const io = await mirrorsOf(o).openIo(name, { write: true, host: o.host, onSuspend: (p) => process.stderr.write(`warning: ${suspensionLine(p)}\n`) });
  let written: number;
  try {
    if (o.from !== undefined) written = (await files()).writeFileToVolume(io, offset, o.from);
    else {
      fillIo(io, offset, length, pattern !== undefined ? { pattern } : { seed: seed! });
      written = length;
    }
  } finally {
    io.close();
  }
  process.stdout.write(`wrote ${written} bytes to ${name} at offset ${offset}\n`);
}

/** One line for a pair that went to PSUE during a command. */
export function suspensionLine(p: PairSuspension): string {
  const copy = p.full ? 'will copy it in full' : 'will copy the difference';
  return `pair ${p.primary} → ${p.secondary} suspended (PSUE): ${p.reason}; the data is on ${p.primary}, \`plexus pair resync ${p.primary} --plex ${p.secondary}\` ${copy}`;
}

/** `volume read`: to a file or stdout. */
export async function runVolumeRead(name: string, o: GlobalOptions & { offset?: string; length?: string; to?: string }): Promise<void> {
  const { mirrorsOf } = await import('../mirrors.js');
  const v = await mirrorsOf(o).openIo(name, { host: o.host });
  try {
    const { offset, length } = await rangeOf(v, o);
    if (o.to !== undefined) {
      (await files()).readVolumeToFile(v, offset, length, o.to);
      process.stderr.write(`read ${length} bytes from ${name} into ${o.to}\n`);
    } else {
      await (await files()).readVolumeInPieces(v, offset, length, async (chunk) => {
        if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
      });
    }
  } finally {
    v.close();
  }
}

/** `volume checksum`. */
export async function runVolumeChecksum(name: string, o: GlobalOptions & { offset?: string; length?: string; json?: boolean }): Promise<void> {
  const { mirrorsOf } = await import('../mirrors.js');
  const v = await mirrorsOf(o).openIo(name, { host: o.host });
  const { offset, length } = await rangeOf(v, o);
  const digest = await v.checksum(offset, length).finally(() => v.close());
  if (o.json) printJson({ volume: name, offset, length, algorithm: 'sha256', digest });
  else process.stdout.write(`${digest}\n`);
}
