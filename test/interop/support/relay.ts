// One relayed connection: bytes both ways between an accepted socket and a
// new connection, both closed when either side ends or fails.
import type { Socket } from "node:net";

export function relay(inbound: Socket, outbound: Socket): void {
  inbound.pipe(outbound).pipe(inbound);
  const close = () => {
    inbound.destroy();
    outbound.destroy();
  };
  inbound.on("error", close);
  outbound.on("error", close);
  inbound.on("close", close);
  outbound.on("close", close);
}
