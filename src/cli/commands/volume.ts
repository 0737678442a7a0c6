/**
 * `plexus volume create|list|show|rm|write|read|checksum` (declared in ../tree/volume.ts).
 * The commands that go through the pairs (rm, write, read, checksum) import them when
 * they run: `volume list` and `show` load only the volume store.
 */

import type { AgentClient } from '../../agent/client.js';
import { PlexusError } from '../../errors.js';
import type { VolumeIo } from '../../mirror/io.js';
import type { PairSuspension } from '../../mirror/plexset.js';
import { formatBytes, parseSize } from '../../util/size.js';
import type { VolumeInfo } from '../../volumes/volume.js';
import { agentOf, ask } from '../agent.js';
import { byteOpt, type GlobalOptions, intOpt, sizeOpt, volumesOf } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

function infoFields(i: VolumeInfo): Array<[string, string | number]> {
  return [
    ['name', i.name],
    ['id', i.id],
    ['size', `${i.size} (${formatBytes(i.size)})`],
    ['allocated', `${i.allocatedBytes} (${formatBytes(i.allocatedBytes)})`],
    ['block size', i.blockSize],
    ['created', i.created],
    ['path', i.path],
  ];
}

/** Moving bytes between files and volumes; only the commands that move them load it. */
const files = () => import('../../volumes/files.js');

/** Resolves --offset/--length against the volume, defaulting to "to the end". */
async function rangeOf(v: Pick<VolumeIo, 'name' | 'size'>, o: { offset?: string; length?: string }): Promise<{ offset: number; length: number }> {
  return (await files()).resolveRange(v, sizeOpt(o.offset, 'offset'), sizeOpt(o.length, 'length'));
}

/** `volume create`: the one volume command that creates the home when it is missing. */
export async function runVolumeCreate(name: string, o: GlobalOptions & { size: string; blockSize: string; json?: boolean }): Promise<void> {
  const geometry = { size: parseSize(o.size, 'size'), blockSize: parseSize(o.blockSize, 'block size') };
  // Through a running agent, so the new volume's NBD export exists when this returns.
  const agent = await agentOf(o);
  const i = agent ? await ask<VolumeInfo>(agent, 'volume.create', { name, ...geometry }) : volumesOf(o, { create: true }).create(name, geometry).info();
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
    ['NAME', 'SIZE', 'ALLOCATED', 'BLOCK', 'ID', 'CREATED'],
    list.map((i) => [i.name, formatBytes(i.size), formatBytes(i.allocatedBytes), String(i.blockSize), i.id, i.created]),
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
  const agent = await agentOf(o);
  if (agent) {
    await ask(agent, 'volume.rm', { name });
    process.stdout.write(`removed volume ${name}\n`);
    return;
  }
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
  // A pair suspended on the way (PSUE) does not fail the write: the operator is told.
  const onSuspend = (p: PairSuspension): boolean => process.stderr.write(`warning: ${suspensionLine(p)}\n`);
  const agent = await agentOf(o);
  if (agent) {
    const { writeThroughAgent } = await import('../../agent/volume-client.js');
    const source = o.from !== undefined ? { file: o.from } : pattern !== undefined ? { pattern, length } : { seed: seed!, length };
    const written = await writeThroughAgent(agent, name, offset, source, o.host, onSuspend).finally(() => agent.close());
    process.stdout.write(`wrote ${written} bytes to ${name} at offset ${offset}\n`);
    return;
  }
  const [{ fillIo }, { mirrorsOf }] = await Promise.all([import('../../mirror/fill.js'), import('../mirrors.js')]);
  const io = await mirrorsOf(o).openIo(name, { write: true, host: o.host, onSuspend });
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
  const agent = await agentOf(o);
  if (agent) {
    try {
      await readViaAgent(agent, name, o);
    } finally {
      agent.close();
    }
    return;
  }
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

async function readViaAgent(agent: AgentClient, name: string, o: GlobalOptions & { offset?: string; length?: string; to?: string }): Promise<void> {
  const { readThroughAgent, sizeThroughAgent } = await import('../../agent/volume-client.js');
  const { offset, length } = await rangeOf({ name, size: await sizeThroughAgent(agent, name, o.host) }, o);
  if (o.to === undefined) {
    await readThroughAgent(agent, name, offset, length, o.host, async (chunk) => {
      if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once('drain', r));
    });
    return;
  }
  const fs = await import('node:fs');
  const { fromSystem } = await import('../../errors.js');
  let fd: number;
  try {
    fd = fs.openSync(o.to, 'w');
  } catch (e) {
    throw fromSystem(e, o.to);
  }
  try {
    await readThroughAgent(agent, name, offset, length, o.host, (chunk) => void fs.writeSync(fd, chunk));
  } finally {
    fs.closeSync(fd);
  }
  process.stderr.write(`read ${length} bytes from ${name} into ${o.to}\n`);
}

/** `volume checksum`. */
export async function runVolumeChecksum(name: string, o: GlobalOptions & { offset?: string; length?: string; json?: boolean }): Promise<void> {
  const agent = await agentOf(o);
  let offset: number;
  let length: number;
  let digest: string;
  if (agent) {
    try {
      const { sizeThroughAgent } = await import('../../agent/volume-client.js');
      ({ offset, length } = await rangeOf({ name, size: await sizeThroughAgent(agent, name, o.host) }, o));
      ({ digest } = await agent.call<{ digest: string }>('volume.checksum', { name, offset, length, host: o.host }));
    } finally {
      agent.close();
    }
  } else {
    const { mirrorsOf } = await import('../mirrors.js');
    const v = await mirrorsOf(o).openIo(name, { host: o.host });
    ({ offset, length } = await rangeOf(v, o));
    digest = await v.checksum(offset, length).finally(() => v.close());
  }
  if (o.json) printJson({ volume: name, offset, length, algorithm: 'sha256', digest });
  else process.stdout.write(`${digest}\n`);
}
