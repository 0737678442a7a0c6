/** Ctrl-C for long commands: SIGINT aborts the library call, which cleans up and throws E_CANCELLED. */

/**
 * Runs `fn` with a signal that aborts on the first SIGINT. The library then cancels
 * cleanly and throws PlexusError('E_CANCELLED'), which main() prints on one line and
 * exits 130 with. A second Ctrl-C while it cleans up ends the process at once.
 */
export async function cancellable<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    return await fn(abort.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
