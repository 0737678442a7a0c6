/** The kinds of resource (a light module: the CLI's command tree names them in its help). */

/** Every kind of resource, in listing order. */
export const RESOURCE_KINDS = ['server', 'copy-device', 'switch', 'library', 'drive', 'cartridge'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];
/** The kinds a user defines; the others come from the tape libraries. */
export const DEFINED_KINDS = ['server', 'copy-device', 'switch'] as const;
export type DefinedKind = (typeof DEFINED_KINDS)[number];
