/** `plexus copy SRC DST`: block copy between volumes, creating DST if needed. */
import { Command } from 'commander';
import { PlexusError } from '../../errors.js';
import { checkCopyOptions, copyVolume } from '../../volumes/copy.js';
import { formatBytes, formatRate } from '../../util/size.js';
import { intOpt, mirrorsOf, sizeOpt, volumesOf } from '../context.js';
import { printJson } from '../render/output.js';
import { progressBar } from '../render/progress.js';

/** Registers the copy command. */
export function copyCommand(): Command {
  return new Command('copy')
    .description('copy a volume onto another (created with the same geometry if missing)')
    .argument('<src>', 'source volume')
    .argument('<dst>', 'destination volume')
    .option('--threads <n>', 'worker threads (default: one per core)')
    .option('--chunk <size>', 'bytes per chunk', '4M')
    .option('--no-sync', 'do not fsync the destination at the end')
    .option('--max-rate <size>', 'copy pace per second, e.g. 100M (default: as fast as possible)')
    .option('--json', 'print the report as JSON')
    .action(async (src: string, dst: string, o: { threads?: string; chunk: string; sync: boolean; maxRate?: string; json?: boolean }, c: Command) => {
      const threads = intOpt(o.threads, 'threads', 1, 256);
      const chunkSize = sizeOpt(o.chunk, 'chunk');
      checkCopyOptions({ threads, chunkSize });
      const maxRate = sizeOpt(o.maxRate, 'max rate');
      const store = volumesOf(c);
      if (src === dst) throw new PlexusError('E_BUSY', `cannot copy volume ${src} onto itself`);
      const paired = mirrorsOf(c).records.all().find((r) => r.primary === dst || r.secondary === dst);
      if (paired) throw new PlexusError('E_BUSY', `volume ${dst} is in pair ${paired.primary} → ${paired.secondary}; a copy onto it would bypass the mirror`);
      const s = store.open(src, { readOnly: true });
      const si = s.info();
      const d = store.exists(dst) ? store.open(dst) : store.create(dst, { size: si.size, blockSize: si.blockSize });
      const bar = progressBar(`copy ${src} → ${dst}`, Boolean(process.stderr.isTTY) && !o.json);
      const abort = new AbortController();
      const onSigint = (): void => abort.abort();
      process.once('SIGINT', onSigint);
      try {
        const r = await copyVolume(s, d, {
          threads,
          chunkSize,
          sync: o.sync,
          maxRate,
          signal: abort.signal,
          onProgress: bar.callback,
        });
        bar.stop();
        if (o.json) printJson({ source: src, destination: dst, ...r });
        else process.stdout.write(`copied ${formatBytes(r.bytesCopied)} from ${src} to ${dst} in ${(r.elapsedMs / 1000).toFixed(2)} s (${formatRate(r.rate)}, ${r.threads} threads)\n`);
      } finally {
        bar.stop();
        process.off('SIGINT', onSigint);
      }
    });
}
