/** Progress reporting: the library calls a plain callback; renderers live in the CLI. */

/** One progress observation of a long operation. */
export interface ProgressEvent {
  /** What is running, e.g. "copy". */
  operation: string;
  /** Units done (bytes, unless stated otherwise). */
  done: number;
  /** Units in all. */
  total: number;
}

/** Receives progress; may be called often, so it must be cheap. */
export type ProgressCallback = (event: ProgressEvent) => void;

/** The default callback: ignore progress. */
export const noProgress: ProgressCallback = () => {};

/**
 * Polls `sample` every `intervalMs` while `work` runs and forwards it to `onProgress`,
 * with a final sample when the work settles. Polling keeps the native workers free of
 * any call into JavaScript, so progress can never stall a copy or block the event loop.
 */
export async function withPolledProgress<T>(
  operation: string,
  work: Promise<T>,
  sample: () => { done: number; total: number },
  onProgress: ProgressCallback = noProgress,
  intervalMs = 100,
): Promise<T> {
  const emit = (): void => {
    const s = sample();
    onProgress({ operation, done: s.done, total: s.total });
  };
  const timer = setInterval(emit, intervalMs);
  try {
    const result = await work;
    emit();
    return result;
  } finally {
    clearInterval(timer);
  }
}
