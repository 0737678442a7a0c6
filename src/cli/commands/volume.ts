/** `plexus volume create|list|show|rm|write|read|checksum`. */
import fs from 'node:fs';
import { Command } from 'commander';
import { PlexusError } from '../../errors.js';
import { formatBytes, parseSize } from '../../util/size.js';
import type { Volume, VolumeInfo } from '../../volumes/volume.js';
import { fillIo } from '../../mirror/fill.js';
import type { VolumeIo } from '../../mirror/io.js';
import { byteOpt, hostOf, intOpt, mirrorsOf, sizeOpt, volumesOf } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

const PIECE = 4 << 20;

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

/** Resolves --offset/--length against the volume, defaulting to "to the end". */
function rangeOf(v: Volume | VolumeIo, o: { offset?: string; length?: string }): { offset: number; length: number } {
  const size = v.size;
  const offset = sizeOpt(o.offset, 'offset') ?? 0;
  if (offset > size) throw new PlexusError('E_RANGE', `volume ${v.name}: offset ${offset} is past the end (size ${size})`);
  const length = sizeOpt(o.length, 'length') ?? size - offset;
  if (offset + length > size) {
    throw new PlexusError('E_RANGE', `volume ${v.name}: range offset ${offset} length ${length} is past the end (size ${size})`);
  }
  return { offset, length };
}

/** Registers the volume commands. */
export function volumeCommand(): Command {
  const cmd = new Command('volume').description('create and inspect volumes');

  cmd
    .command('create <name>')
    .description('create a sparse volume')
    .requiredOption('--size <size>', 'size, e.g. 64M, 1G')
    .option('--block-size <size>', 'block size, a power of two from 512 to 1M', '4K')
    .option('--json', 'print the new volume as JSON')
    .action((name: string, o: { size: string; blockSize: string; json?: boolean }, c: Command) => {
      const v = volumesOf(c).create(name, { size: parseSize(o.size, 'size'), blockSize: parseSize(o.blockSize, 'block size') });
      const i = v.info();
      if (o.json) printJson(i);
      else process.stdout.write(`created volume ${i.name}: ${formatBytes(i.size)}, block size ${i.blockSize}, id ${i.id}\n`);
    });

  cmd
    .command('list')
    .description('list volumes')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const list = volumesOf(c).list();
      if (o.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no volumes\n');
      printTable(
        ['NAME', 'SIZE', 'BLOCK', 'ID', 'CREATED'],
        list.map((i) => [i.name, formatBytes(i.size), String(i.blockSize), i.id, i.created]),
      );
    });

  cmd
    .command('show <name>')
    .description('show a volume')
    .option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }, c: Command) => {
      const i = volumesOf(c).open(name, { readOnly: true }).info();
      if (o.json) printJson(i);
      else printFields(infoFields(i));
    });

  cmd
    .command('rm <name>')
    .description('delete a volume')
    .action((name: string, _o: unknown, c: Command) => {
      const pair = mirrorsOf(c).records.all().find((r) => r.primary === name || r.secondary === name);
      if (pair) throw new PlexusError('E_BUSY', `volume ${name} is in pair ${pair.primary} → ${pair.secondary}; delete the pair first`);
      volumesOf(c).remove(name);
      process.stdout.write(`removed volume ${name}\n`);
    });

  cmd
    .command('write <name>')
    .description('write a byte pattern, seeded random bytes or a file into a volume')
    .option('--offset <size>', 'where to start', '0')
    .option('--pattern <byte>', 'a byte value 0-255 (needs --length)')
    .option('--length <size>', 'bytes of --pattern to write')
    .option('--random <size>', 'write this many pseudo-random bytes')
    .option('--seed <n>', 'seed for --random', '1')
    .option('--from <file>', 'write the contents of a file')
    .action(async (name: string, o: Record<string, string | undefined>, c: Command) => {
      const sources = [o.pattern, o.random, o.from].filter((x) => x !== undefined).length;
      if (sources !== 1) throw new PlexusError('E_INVALID', 'give exactly one of --pattern, --random or --from');
      if (o.pattern !== undefined && o.length === undefined) throw new PlexusError('E_INVALID', '--pattern needs --length');
      const offset = parseSize(o.offset ?? '0', 'offset');
      const length = o.pattern !== undefined ? parseSize(o.length!, 'length') : o.random !== undefined ? parseSize(o.random, 'length') : 0;
      const pattern = o.pattern !== undefined ? byteOpt(o.pattern) : undefined;
      const seed = o.random !== undefined ? intOpt(o.seed, 'seed')! : undefined;
      const io = await mirrorsOf(c).openIo(name, { write: true, host: hostOf(c) });
      let written: number;
      try {
        if (o.from !== undefined) written = writeFile(io, offset, o.from);
        else {
          fillIo(io, offset, length, pattern !== undefined ? { pattern } : { seed: seed! });
          written = length;
        }
      } finally {
        io.close();
      }
      process.stdout.write(`wrote ${written} bytes to ${name} at offset ${offset}\n`);
    });

  cmd
    .command('read <name>')
    .description('read bytes from a volume to a file or stdout')
    .option('--offset <size>', 'where to start')
    .option('--length <size>', 'how many bytes (default: to the end)')
    .option('--to <file>', 'write to this file instead of stdout')
    .action(async (name: string, o: { offset?: string; length?: string; to?: string }, c: Command) => {
      const v = await mirrorsOf(c).openIo(name, { host: hostOf(c) });
      try {
        const { offset, length } = rangeOf(v, o);
        if (o.to !== undefined) {
          const fd = fs.openSync(o.to, 'w');
          try {
            for (let at = 0; at < length; at += PIECE) fs.writeSync(fd, v.read(offset + at, Math.min(PIECE, length - at)));
          } finally {
            fs.closeSync(fd);
          }
          process.stderr.write(`read ${length} bytes from ${name} into ${o.to}\n`);
        } else {
          for (let at = 0; at < length; at += PIECE) {
            const chunk = v.read(offset + at, Math.min(PIECE, length - at));
            if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
          }
        }
      } finally {
        v.close();
      }
    });

  cmd
    .command('checksum <name>')
    .description('print the SHA-256 of a volume or a range of it')
    .option('--offset <size>', 'where to start')
    .option('--length <size>', 'how many bytes (default: to the end)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { offset?: string; length?: string; json?: boolean }, c: Command) => {
      const v = await mirrorsOf(c).openIo(name, { host: hostOf(c) });
      const { offset, length } = rangeOf(v, o);
      const digest = await v.checksum(offset, length).finally(() => v.close());
      if (o.json) printJson({ volume: name, offset, length, algorithm: 'sha256', digest });
      else process.stdout.write(`${digest}\n`);
    });

  return cmd;
}

/** Copies a file into the volume in pieces; E_RANGE before writing if it does not fit. */
function writeFile(v: VolumeIo, offset: number, file: string): number {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (e) {
    throw new PlexusError('E_NOENT', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (offset + size > v.size) {
    throw new PlexusError('E_RANGE', `volume ${v.name}: ${file} (${size} bytes) at offset ${offset} is past the end (size ${v.size})`);
  }
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(PIECE);
    let at = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, PIECE, at);
      if (n === 0) break;
      v.write(offset + at, buf.subarray(0, n));
      at += n;
    }
    return at;
  } finally {
    fs.closeSync(fd);
  }
}
