/** Progress rendering: a bar with rate and ETA on a terminal, nothing when piped. */
import cliProgress from 'cli-progress';
import type { ProgressCallback } from '../../progress.js';
import { formatBytes, formatRate } from '../../util/size.js';

/** A progress sink for the CLI: `callback` feeds it, `stop` clears the bar. */
export interface ProgressBar {
  callback: ProgressCallback;
  stop(): void;
}

/** A bar on stderr when it is a terminal (and not --json / --quiet); otherwise silent. */
export function progressBar(label: string, enabled = Boolean(process.stderr.isTTY)): ProgressBar {
  if (!enabled) return { callback: () => {}, stop: () => {} };
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {doneText} / {totalText} | {rateText} | ETA {eta_formatted}`,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let begun = false;
  return {
    callback: ({ done, total }) => {
      const secs = Math.max((Date.now() - started) / 1000, 1e-3);
      const payload = { doneText: formatBytes(done), totalText: formatBytes(total), rateText: formatRate(done / secs) };
      if (!begun) {
        bar.start(Math.max(total, 1), done, payload);
        begun = true;
      } else {
        bar.setTotal(Math.max(total, 1));
        bar.update(done, payload);
      }
    },
    stop: () => {
      if (begun) bar.stop();
    },
  };
}
