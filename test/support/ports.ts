// Addresses and ports tests own: a random loopback address (127.0.0.0/8 is
// all loopback on Linux), so parallel runs can each bind a fixed port such as
// 443 there, and holding a port to prove a program copes with it taken.
import { createServer, type Server } from "node:net";

/** A loopback address of its own, so parallel test runs can each own port 443. */
export function privateLoopback(): string {
  const byte = () => 2 + Math.floor(Math.random() * 250);
  return `127.${byte()}.${byte()}.${byte()}`;
}

/**
 * Takes `port` on a loopback address of our own, which also keeps anyone from
 * binding it on all interfaces; a port someone else holds already is just as
 * taken (undefined then).
 */
export function occupyPort(port: number): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => (err.code === "EADDRINUSE" ? resolve(undefined) : reject(err)));
    server.listen(port, privateLoopback(), () => resolve(server));
  });
}

export async function releasePorts(holders: ReadonlyArray<Server | undefined>): Promise<void> {
  await Promise.all(holders.map((h) => h && new Promise<void>((resolve) => h.close(() => resolve()))));
}
