// The emulator's own certificate authority: generated at start, its
// certificate written as PEM for NODE_EXTRA_CA_CERTS or tlsOptions.ca, and
// used to issue the HTTPS server certificate that covers every Key Vault and
// Entra ID host name the emulator answers for.
import { isIP } from "node:net";
import type { KeyObject } from "node:crypto";
import { generatePrivateKey } from "./json-web-key.ts";
import { encodePem } from "../../shared/crypto/pem.ts";
import { createCertificate, EKU_SERVER_AUTH } from "./x509.ts";

export interface ServerCredentials {
  caCertificatePem: string;
  /** PEM private key of the server certificate (kept in memory only). */
  keyPem: string;
  /** PEM server certificate followed by the CA certificate. */
  certificatePem: string;
}

export interface CertificateAuthority {
  certificate: Buffer;
  privateKey: KeyObject;
  pem: string;
}

export async function createCertificateAuthority(commonName = "Key Vault Emulator Root CA"): Promise<CertificateAuthority> {
  const privateKey = await generatePrivateKey({ kty: "RSA", keySize: 2048 });
  const certificate = createCertificate({
    subject: `CN=${commonName}, O=keyvault-emulator`,
    validityMonths: 24,
    isCertificateAuthority: true,
    pathLength: 0,
    publicKey: privateKey,
    selfSigningKey: privateKey,
  });
  return { certificate, privateKey, pem: encodePem("CERTIFICATE", certificate) };
}

/**
 * Issues a TLS server certificate for the names (DNS names, wildcards or IP
 * addresses); `options.privateKey` lets several certificates share one key.
 */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  names: readonly string[],
  options: { commonName?: string; privateKey?: KeyObject } = {},
): Promise<ServerCredentials> {
  const privateKey = options.privateKey ?? (await generatePrivateKey({ kty: "RSA", keySize: 2048 }));
  const dnsNames = [...new Set(names.filter((n) => isIP(n) === 0))];
  const ipAddresses = [...new Set(names.filter((n) => isIP(n) !== 0))];
  const certificate = createCertificate({
    subject: `CN=${options.commonName ?? "keyvault-emulator"}, O=keyvault-emulator`,
    dnsNames,
    ipAddresses,
    validityMonths: 12,
    publicKey: privateKey,
    issuer: { certificate: ca.certificate, privateKey: ca.privateKey },
    extendedKeyUsage: [EKU_SERVER_AUTH],
  });
  return {
    caCertificatePem: ca.pem,
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    certificatePem: encodePem("CERTIFICATE", certificate) + ca.pem,
  };
}
