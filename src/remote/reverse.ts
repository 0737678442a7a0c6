/**
 * The reverse resync of a group after a takeover (`plexus pair resync --group G
 * --reverse`, run at the old primary site once it is back): what the remote site
 * changed since the takeover, and what this site changed that the remote never made
 * durable, is sent from the remote back to this site, region by region; then the group
 * replicates from this site again in a new epoch. Only those regions cross the link.
 */

import type { JobContext } from '../agent/jobs.js';
import { callNative, PlexusError } from '../errors.js';
import type { SourceGroup } from './source.js';

/** Bytes per read over the link. */
const PIECE = 4 << 20;
/** Reads in flight at once. */
const PARALLEL = 4;

/** Runs the reverse resync of `g`. */
export async function reverseResync(g: SourceGroup, j: JobContext): Promise<{ group: string; bytes: number; epoch: number; state: string }> {
  // This site's unsent journal becomes dirty regions too: the remote never applied them.
  if (g.record.state === 'PAIR' || g.record.state === 'COPY') g.suspend('PSUE', 'reverse resync');
  const link = await g.peer();
  try {
    const begin = await link.call<{ runs: Array<{ id: number; runs: number[][] }>; bytes: number }>(
      'repl.reverseBegin',
      { group: g.name, members: g.record.members.map((m) => ({ id: m.id, words: callNative(() => g.native.dirtyWords(m.id)) })) },
      g.record.linkTimeoutMs,
    );
    let done = 0;
    j.onProgress({ operation: 'reverse resync', done, total: begin.bytes });
    for (const { id, runs } of begin.runs) {
      const pieces: Array<[number, number]> = [];
      for (const [offset, len] of runs) for (let at = offset!; at < offset! + len!; at += PIECE) pieces.push([at, Math.min(PIECE, offset! + len! - at)]);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < pieces.length) {
          if (j.signal.aborted) throw new PlexusError('E_CANCELLED', `reverse resync of group ${g.name} cancelled; run it again to finish`);
          const [offset, length] = pieces[next++]!;
          const data = await link.call<Uint8Array>('repl.read', { group: g.name, id, offset, length }, g.record.linkTimeoutMs);
          if (data.length !== length) throw new PlexusError('E_PROTOCOL', `the remote sent ${data.length} bytes for a read of ${length}`);
          g.writeBack(id, offset, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
          done += length;
          j.onProgress({ operation: 'reverse resync', done, total: begin.bytes });
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
    }
    const epoch = g.record.epoch + 1;
    const base = callNative(() => g.native.stats()).last;
    await link.call('repl.reverseEnd', { group: g.name, epoch, base }, g.record.linkTimeoutMs);
    g.enterEpoch(epoch, base);
    g.resumeAfterReverse();
    return { group: g.name, bytes: done, epoch, state: g.record.state };
  } finally {
    link.close();
  }
}
