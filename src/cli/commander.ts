/**
 * commander, loaded with require: Node 20 takes about twice as long to load a CommonJS
 * package through its ESM wrapper (commander/esm.mjs) as to require it, and every command
 * pays for it at start-up.
 */
import { createRequire } from 'node:module';
import type * as commander from 'commander';

const lib = createRequire(import.meta.url)('commander') as typeof commander;

export const Command = lib.Command;
export type Command = commander.Command;
export const CommanderError = lib.CommanderError;
export const Option = lib.Option;
export type CommanderError = commander.CommanderError;
