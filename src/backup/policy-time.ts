/**
 * A policy's clock arithmetic, pure: intervals (`--every 6h`), windows (`--window
 * 01:00-05:00`, local time, may cross midnight) and the slots a volume is backed up once
 * in. Slots are anchored at the window's opening (at local midnight without a window):
 * every 2h in 01:00-05:00 gives the slots 01:00 and 03:00 each night; every 1d gives one
 * per window; every Nd one in every Nth window. Anchoring keeps a volume's start from
 * drifting through the window night after night, as "24 h since the last start" would.
 */
import { PlexusError } from '../errors.js';

const DAY = 86_400_000;

/** A daily window in local time, in minutes after midnight; `open > close` crosses midnight. */
export interface Window {
  open: number;
  close: number;
}

/** One occurrence of a window: from its opening to its close. */
export interface Occurrence {
  open: Date;
  close: Date;
}

/**
 * Parses an interval: `Nm` or `Nh` dividing a day (15m, 30m, 1h, 2h, 6h, 12h, ...), or
 * `Nd` (whole days, up to 366); returns seconds. Other lengths would not repeat at the
 * same times every day, so they are refused.
 */
export function parseInterval(text: string): number {
  const m = /^(\d+)([mhd])$/.exec(text.trim());
  const n = m ? Number(m[1]) : NaN;
  if (m && n > 0) {
    if (m[2] === 'd' && n <= 366) return n * 86_400;
    const minutes = m[2] === 'h' ? n * 60 : n;
    if (m[2] !== 'd' && minutes <= 1440 && 1440 % minutes === 0) return minutes * 60;
  }
  throw new PlexusError('E_INVALID', `interval '${text}' must be minutes or hours that divide a day (30m, 1h, 6h, 12h, ...) or whole days (1d, 7d)`);
}

/** An interval in words: 6h, 1d, 90 s. */
export function formatInterval(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** Parses `HH:MM-HH:MM` (24 h; `24:00` as an end); E_INVALID otherwise or when both ends are equal. */
export function parseWindow(text: string): Window {
  const m = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (m && Number(m[2]) < 60 && Number(m[4]) < 60) {
    const open = Number(m[1]) * 60 + Number(m[2]);
    const close = Number(m[3]) * 60 + Number(m[4]);
    if (open < 1440 && close <= 1440 && open !== close) return { open, close };
  }
  throw new PlexusError('E_INVALID', `window '${text}' must be HH:MM-HH:MM in 24-hour local time, e.g. 01:00-05:00 or 22:00-06:00 (its ends must differ)`);
}

/** A window as written: 01:00-05:00. */
export function formatWindow(w: Window): string {
  const f = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return `${f(w.open)}-${f(w.close)}`;
}

/** A time as local wall-clock time, to the minute: 2026-12-01 05:00. */
export function formatLocal(t: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}`;
}

/** Local midnight of the day of `t`, shifted by `days`, plus `minutes`. */
function localAt(t: Date, days: number, minutes: number): Date {
  const d = new Date(t.getFullYear(), t.getMonth(), t.getDate() + days, 0, 0, 0, 0);
  d.setMinutes(minutes);
  return d;
}

/** The occurrence of `w` (undefined: the whole local day) that contains `now`, or undefined outside it. */
export function occurrenceAt(w: Window | undefined, now: Date): Occurrence | undefined {
  if (!w) return { open: localAt(now, 0, 0), close: localAt(now, 1, 0) };
  const minute = now.getHours() * 60 + now.getMinutes();
  if (w.open < w.close) return minute >= w.open && minute < w.close ? { open: localAt(now, 0, w.open), close: localAt(now, 0, w.close) } : undefined;
  if (minute >= w.open) return { open: localAt(now, 0, w.open), close: localAt(now, 1, w.close) };
  if (minute < w.close) return { open: localAt(now, -1, w.open), close: localAt(now, 0, w.close) };
  return undefined;
}

/** The first occurrence of `w` that ends after `now`: the one containing it, else the next to open. */
export function currentOrNextOccurrence(w: Window | undefined, now: Date): Occurrence {
  const at = occurrenceAt(w, now);
  if (at) return at;
  // Outside the window: it opens later today, or tomorrow.
  const today = localAt(now, 0, w!.open);
  const open = today.getTime() > now.getTime() ? today : localAt(now, 1, w!.open);
  return occurrenceAt(w, open)!;
}

/** The slot `now` falls in, and the time before which a volume's last start must lie for it to be due. */
export interface Slot {
  start: Date;
  /** Due when the last start is earlier than this (or there is none). */
  dueBefore: Date;
  /** The window occurrence holding the slot. */
  occurrence: Occurrence;
}

/** The slot of a policy (interval, window) at `now`; undefined outside the window. */
export function slotAt(everyS: number, w: Window | undefined, now: Date): Slot | undefined {
  const occurrence = occurrenceAt(w, now);
  if (!occurrence) return undefined;
  const every = everyS * 1000;
  if (every >= DAY) {
    // One slot per occurrence; due again only in the Nth occurrence after the last start.
    const dueBefore = new Date(occurrence.open.getTime() - (every / DAY - 1) * DAY);
    return { start: occurrence.open, dueBefore, occurrence };
  }
  const k = Math.floor((now.getTime() - occurrence.open.getTime()) / every);
  const start = new Date(occurrence.open.getTime() + k * every);
  return { start, dueBefore: start, occurrence };
}

/** Whether a volume last started at `last` (undefined: never) is due in `slot`. */
export function dueIn(slot: Slot, last: Date | undefined): boolean {
  return last === undefined || last.getTime() < slot.dueBefore.getTime();
}

/**
 * The next slot, at or after `now`, in which a volume last started at `last` is due:
 * the current one if it is due there, else a later slot of the window (or of a later
 * occurrence). Looks at most a few thousand slots ahead (a year of 15-minute slots in
 * a short window), which is far enough for any interval a policy accepts.
 */
export function nextDueSlot(everyS: number, w: Window | undefined, now: Date, last: Date | undefined): Slot {
  const every = everyS * 1000;
  let t = now;
  for (let i = 0; i < 40_000; i++) {
    const slot = slotAt(everyS, w, t);
    if (!slot) {
      t = currentOrNextOccurrence(w, t).open;
      continue;
    }
    if (dueIn(slot, last)) return slot;
    const next = every < DAY ? slot.start.getTime() + every : Infinity;
    // At its close a window's occurrence is over: the next one opens after it.
    t = next < slot.occurrence.close.getTime() ? new Date(next) : currentOrNextOccurrence(w, slot.occurrence.close).open;
  }
  throw new PlexusError('E_INTERNAL', 'no due slot found ahead (a bug)');
}
