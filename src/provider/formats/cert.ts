// objectType: cert. The leaf certificate only (Key Vault's `cer`), as one
// "CERTIFICATE" PEM block: no chain, no key.
import { conversionFailed } from "../errors.ts";
import { encodePem } from "../../shared/crypto/pem.ts";

export interface FetchedCertificate {
  cer: Uint8Array | undefined;
  id: string | undefined;
  version: string;
}

export function certificatePem(cert: FetchedCertificate): string {
  if (!cert.id) throw conversionFailed("certificate id is nil");
  if (!cert.cer || cert.cer.length === 0) throw conversionFailed("certificate value is nil");
  return encodePem("CERTIFICATE", cert.cer);
}
