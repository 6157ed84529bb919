// TLS certificates for Event Grid namespace hosts. A namespace lives at
// <namespace>.<region>-1.eventgrid.azure.net, two labels below the
// suffix, which a *.eventgrid.azure.net certificate does not cover; so the
// HTTPS server's SNI callback gets a *.<region>-1.eventgrid.azure.net
// certificate from the emulator's CA the first time a region is asked for
// (a bounded number of regions; the key is the server's own).
import type { KeyObject } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import { issueServerCertificate, type CertificateAuthority } from "../crypto/certificate-authority.ts";

const NAMESPACE_HOST = /^[^.]+\.([a-z0-9-]+)\.eventgrid\.azure\.net$/;
const MAX_REGIONS = 64;

export class EventGridServerNames {
  readonly #ca: CertificateAuthority;
  readonly #key: KeyObject;
  readonly #contexts = new Map<string, Promise<SecureContext>>();

  constructor(ca: CertificateAuthority, key: KeyObject) {
    this.#ca = ca;
    this.#key = key;
  }

  /** Whether the server name is a namespace host (then select() answers it). */
  handles(servername: string): boolean {
    const match = NAMESPACE_HOST.exec(servername.toLowerCase());
    return match !== null && match[1]!.endsWith("-1");
  }

  select(servername: string, done: (err: Error | null, context?: SecureContext) => void): void {
    const region = NAMESPACE_HOST.exec(servername.toLowerCase())![1]!;
    let context = this.#contexts.get(region);
    if (!context) {
      if (this.#contexts.size >= MAX_REGIONS) {
        done(new Error(`the emulator serves at most ${MAX_REGIONS} Event Grid regions`));
        return;
      }
      context = issueServerCertificate(this.#ca, [`*.${region}.eventgrid.azure.net`], { commonName: "eventgrid-namespace", privateKey: this.#key }).then((tls) =>
        createSecureContext({ key: tls.keyPem, cert: tls.certificatePem }),
      );
      this.#contexts.set(region, context);
    }
    context.then(
      (ctx) => done(null, ctx),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  }
}
