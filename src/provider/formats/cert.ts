// objectType: cert. The leaf certificate only (Key Vault's `cer`), as one
// "CERTIFICATE" PEM block: no chain, no key.
import { conversionFailed } from "../errors.ts";
import { encodePem } from "../../shared/crypto/pem.ts";

export interface FetchedCertificate {
  cer: Uint8Array | undefined;
  id: string | undefined;
  version: string;
  /** The object's tags (for objectTags). */
  tags?: Record<string, string>;
  /** Key Vault answers for a disabled certificate too; an optional one is then left out. */
  enabled?: boolean;
}

export function certificatePem(cert: FetchedCertificate): string {
  if (!cert.id) throw conversionFailed("certificate id is nil");
  if (!cert.cer || cert.cer.length === 0) throw conversionFailed("certificate value is nil");
  return encodePem("CERTIFICATE", cert.cer);
}
