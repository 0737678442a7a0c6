/** Volume bytes moved through a running agent (`volume write|read|checksum` when one owns the home). */
import { fillPieces } from '../mirror/fill.js';
import type { PairSuspension } from '../mirror/plexset.js';
import { inputFileSize, readFilePieces, resolveRange } from '../volumes/files.js';
import type { AgentClient } from './client.js';

/** Bytes per control request (the pieces the in-process writers use too). */
const PIECE = 4 << 20;
/** Write requests one client keeps in flight. */
const WRITES_IN_FLIGHT = 4;

/** What to write. */
export type WriteSource = { pattern: number; length: number } | { seed: number; length: number } | { file: string };

/** Writes `source` into `name` at `offset` through the agent; returns the bytes written. Pairs suspended on the way go to `onSuspend`, once each. */
export async function writeThroughAgent(agent: AgentClient, name: string, offset: number, source: WriteSource, host: string | undefined, onSuspend: (s: PairSuspension) => void): Promise<number> {
  const size = await sizeThroughAgent(agent, name, host);
  // Refused before anything is written, as in-process (the same checks, the same pieces).
  const length = 'file' in source ? inputFileSize(source.file) : source.length;
  resolveRange({ name, size }, offset, length);
  const pieces = 'file' in source ? readFilePieces(source.file) : fillPieces(offset, source.length, source);
  const base = 'file' in source ? offset : 0;
  const told = new Set<string>();
  let written = 0;
  const inFlight = new Set<Promise<void>>();
  let failed: unknown;
  for (const [at, data] of pieces) {
    // A few pieces in flight (they are disjoint): the agent writes one while the next
    // crosses the socket. Made durable once, at the end, not per piece.
    const p: Promise<void> = agent.call<{ suspended: PairSuspension[] }>('volume.write', { name, offset: base + at, data, host, flush: false }).then(
      (r) => {
        for (const s of r.suspended) {
          if (told.has(s.secondary)) continue;
          told.add(s.secondary);
          onSuspend(s);
        }
        written += data.length;
      },
      (e: unknown) => {
        failed ??= e;
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
    if (failed) break;
  }
  await Promise.all(inFlight);
  if (failed) throw failed;
  await agent.call('volume.flush', { name, host });
  return written;
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
