/** Loads the napi-rs addon built from native/ (see `npm run build:native`). */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The generated binding; its types come from native/index.d.cts. */
export const native = require('../../native/index.cjs') as typeof import('../../native/index.cjs');

export type NativeVolume = import('../../native/index.cjs').NativeVolume;
export type NativeBitmap = import('../../native/index.cjs').NativeBitmap;
export type CopyResult = import('../../native/index.cjs').CopyResult;
export type Extent = import('../../native/index.cjs').Extent;
export type NativeMirror = import('../../native/index.cjs').NativeMirror;
