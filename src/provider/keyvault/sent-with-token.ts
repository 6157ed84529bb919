// A fresh Key Vault client's first request answers the vault's challenge
// (a 401 naming the token's scope) and is then sent again with the token;
// the client's other requests wait at its gate (keyvault.ts) so they do not
// each answer a challenge of their own. They may go as soon as that second
// send is on the wire (the client then attaches the token itself), not once
// its answer is back: a round trip less on a new identity's mount. The SDK's
// authentication policy runs after ours, so the HTTP client
// (vault-http-client.ts) is where the token is seen; the request carries the
// callback there.
import type { PipelineRequest } from "@azure/core-rest-pipeline";

const SENT_WITH_TOKEN = Symbol("sscsi.sentWithToken");

type Marked = PipelineRequest & { [SENT_WITH_TOKEN]?: () => void };

/** `onSent` runs when `request` is written with an Authorization header. */
export function whenSentWithToken(request: PipelineRequest, onSent: () => void): void {
  (request as Marked)[SENT_WITH_TOKEN] = onSent;
}

/** Called by the HTTP client as it writes `request`. */
export function sending(request: PipelineRequest): void {
  const onSent = (request as Marked)[SENT_WITH_TOKEN];
  if (onSent !== undefined && request.headers.has("authorization")) onSent();
}
