/**
 * Loads the napi-rs addon built from native/ (see `npm run build:native`), on first use:
 * a command that never touches a volume, a tape or a bitmap does not pay for loading it.
 */
import { createRequire } from 'node:module';

type Binding = typeof import('../../native/index.cjs');

let loaded: Binding | undefined;

/**
 * The addon itself, loaded the first time it is asked for. The library built here for
 * this machine (`npm run build:native` names it for the platform) is loaded directly:
 * the generated loader in index.cjs probes for musl and every other target first, which
 * costs a start-up of `volume list` about 1.5 ms of its 40. Anything else (another libc,
 * a prebuilt package, an override) goes through the generated loader, which chains every
 * load error as the cause.
 */
export function loadNative(): Binding {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  if (process.platform === 'linux' && !process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
    try {
      loaded = require(`../../native/plexus.linux-${process.arch}-gnu.node`) as Binding;
      return loaded;
    } catch {
      // Not built for this machine (or not for glibc): the generated loader decides.
    }
  }
  loaded = require('../../native/index.cjs') as Binding;
  return loaded;
}

/** The generated binding; its types come from native/index.d.cts. Loads the addon on first property access. */
export const native: Binding = new Proxy({} as Binding, {
  get: (_target, key) => Reflect.get(loadNative(), key) as unknown,
  has: (_target, key) => Reflect.has(loadNative(), key),
  ownKeys: () => Reflect.ownKeys(loadNative()),
  getOwnPropertyDescriptor: (_target, key) => {
    const d = Reflect.getOwnPropertyDescriptor(loadNative(), key);
    return d === undefined ? undefined : { ...d, configurable: true };
  },
});

export type NativeVolume = import('../../native/index.cjs').NativeVolume;
export type NativeBitmap = import('../../native/index.cjs').NativeBitmap;
export type CopyResult = import('../../native/index.cjs').CopyResult;
export type Extent = import('../../native/index.cjs').Extent;
export type NativeMirror = import('../../native/index.cjs').NativeMirror;
export type NativePlex = import('../../native/index.cjs').NativePlex;
