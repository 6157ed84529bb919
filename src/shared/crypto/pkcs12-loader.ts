// The PKCS#12 reader (src/shared/crypto/pkcs12.ts, built on node-forge) is a third of
// a MiB of code and a few MiB of heap once loaded, and most mounts never see a
// PFX. Programs load it before the first conversion that may need one; the
// conversions themselves stay synchronous.
import type { Pkcs12Contents } from "./pkcs12.ts";

type Pkcs12Reader = (pfx: Uint8Array, password?: string) => Pkcs12Contents;
let reader: Pkcs12Reader | undefined;

export async function loadPkcs12Reader(): Promise<void> {
  reader ??= (await import("./pkcs12.ts")).readPkcs12;
}

/** The reader; throws if loadPkcs12Reader() has not finished (a programming error). */
export function pkcs12Reader(): Pkcs12Reader {
  if (!reader) throw new Error("the PKCS#12 reader is not loaded (await loadPkcs12Reader() first)");
  return reader;
}
