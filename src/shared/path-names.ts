// File-name rules shared by the driver (target paths, the provider's answer)
// and the provider (object aliases): lengths counted in bytes, as the kernel
// counts them, and no control characters, which break logs, events and
// mountinfo readers.
export const PATH_MAX_BYTES = 4096;
export const NAME_MAX_BYTES = 255;

// C0 controls (NUL, tab, newline, CR, ...) and DEL.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTER.test(text);
}

/** Why a path is unusable by length or characters (elements split on "/"), or undefined. */
export function pathNameProblem(path: string): string | undefined {
  if (hasControlCharacter(path)) return "contains a control character (newline, tab, NUL, ...)";
  if (Buffer.byteLength(path) > PATH_MAX_BYTES) return `is longer than ${PATH_MAX_BYTES} bytes`;
  if (path.split("/").some((e) => Buffer.byteLength(e) > NAME_MAX_BYTES)) return `has an element longer than ${NAME_MAX_BYTES} bytes`;
  return undefined;
}
