/** `plexus copy SRC DST`: block copy between volumes, creating DST if needed (declared in ../tree/copy.ts). */

import { copyToVolume } from '../../mirror/volume-ops.js';
import { formatBytes, formatRate } from '../../util/size.js';
import { cancellable } from '../cancel.js';
import { type GlobalOptions, intOpt, sizeOpt } from '../context.js';
import { mirrorsOf } from '../mirrors.js';
import { printJson } from '../render/output.js';
import { progressBar } from '../render/progress.js';

/** `copy`: the pair guards and the destination's creation are the library's (copyToVolume). */
export async function runCopy(src: string, dst: string, o: GlobalOptions & { threads?: string; chunk: string; sync: boolean; maxRate?: string; json?: boolean }): Promise<void> {
  const threads = intOpt(o.threads, 'threads', 1, 256);
  const chunkSize = sizeOpt(o.chunk, 'chunk');
  const maxRate = sizeOpt(o.maxRate, 'max rate');
  const mirrors = mirrorsOf(o);
  const bar = progressBar(`copy ${src} → ${dst}`, Boolean(process.stderr.isTTY) && !o.json);
  try {
    const { created: _created, ...r } = await cancellable((signal) =>
      copyToVolume(mirrors, src, dst, {
        threads,
        chunkSize,
        sync: o.sync,
        maxRate,
        host: o.host,
        signal,
        onProgress: bar.callback,
      }),
    );
    bar.stop();
    if (o.json) printJson({ source: src, destination: dst, ...r });
    else process.stdout.write(`copied ${formatBytes(r.bytesCopied)} from ${src} to ${dst} in ${(r.elapsedMs / 1000).toFixed(2)} s (${formatRate(r.rate)}, ${r.threads} threads)\n`);
  } finally {
    bar.stop();
  }
}
