/** Volume bytes moved through a running agent (`volume write|read|checksum` when one owns the home). */
import fs from 'node:fs';
import { callNative, fromSystem, PlexusError } from '../errors.js';
import type { PairSuspension } from '../mirror/plexset.js';
import { native } from '../native/binding.js';
import type { AgentClient } from './client.js';

/** Bytes per control request. */
const PIECE = 4 << 20;

/** What to write. */
export type WriteSource = { pattern: number; length: number } | { seed: number; length: number } | { file: string };

function checkFits(name: string, size: number, offset: number, length: number, what: string): void {
  if (offset + length > size) throw new PlexusError('E_RANGE', `volume ${name}: ${what} at offset ${offset} is past the end (size ${size})`);
}

/** Writes `source` into `name` at `offset` through the agent; returns the bytes written. Pairs suspended on the way go to `onSuspend`, once each. */
export async function writeThroughAgent(agent: AgentClient, name: string, offset: number, source: WriteSource, host: string | undefined, onSuspend: (s: PairSuspension) => void): Promise<number> {
  const { size } = await agent.call<{ size: number }>('volume.size', { name, host });
  const told = new Set<string>();
  const write = async (at: number, data: Buffer): Promise<void> => {
    const r = await agent.call<{ suspended: PairSuspension[] }>('volume.write', { name, offset: at, data, host });
    for (const s of r.suspended) {
      if (told.has(s.secondary)) continue;
      told.add(s.secondary);
      onSuspend(s);
    }
  };
  if ('file' in source) {
    let fd: number;
    let length: number;
    try {
      length = fs.statSync(source.file).size;
      fd = fs.openSync(source.file, 'r');
    } catch (e) {
      throw fromSystem(e, source.file);
    }
    try {
      checkFits(name, size, offset, length, `${source.file} (${length} bytes)`);
      const buf = Buffer.alloc(PIECE);
      let at = 0;
      for (;;) {
        const n = fs.readSync(fd, buf, 0, PIECE, at);
        if (n === 0) break;
        await write(offset + at, buf.subarray(0, n));
        at += n;
      }
      return at;
    } finally {
      fs.closeSync(fd);
    }
  }
  checkFits(name, size, offset, source.length, `range of ${source.length} bytes`);
  const pattern = 'pattern' in source ? Buffer.alloc(Math.min(PIECE, source.length), source.pattern) : undefined;
  for (let at = 0; at < source.length; at += PIECE) {
    const n = Math.min(PIECE, source.length - at);
    const data = pattern ? pattern.subarray(0, n) : callNative(() => native.randomBytes((source as { seed: number }).seed, offset + at, n));
    await write(offset + at, data);
  }
  return source.length;
}

/** The size of `name` as the agent sees it (E_ACCESS etc. as for a read). */
export async function sizeThroughAgent(agent: AgentClient, name: string, host: string | undefined): Promise<number> {
  return (await agent.call<{ size: number }>('volume.size', { name, host })).size;
}

/** Reads `length` bytes from `offset` through the agent, piece by piece into `sink`. */
export async function readThroughAgent(agent: AgentClient, name: string, offset: number, length: number, host: string | undefined, sink: (piece: Buffer) => void | Promise<void>): Promise<void> {
  for (let at = 0; at < length; at += PIECE) {
    const piece = await agent.call<Uint8Array>('volume.read', { name, offset: offset + at, length: Math.min(PIECE, length - at), host });
    await sink(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
  }
}
