// The provider's socket is looked up on every publish, before the provider
// call can start: the lookup must not queue behind whatever else holds
// libuv's thread pool (file reads, DNS lookups, crypto), as an fs.promises
// stat does.
import { pbkdf2 } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../../src/shared/logger.ts";
import { ProviderClients } from "../../../src/shared/provider-api/provider-client.ts";

const logger = createLogger({ name: "test", level: "silent" });

describe("ProviderClients", () => {
  let dir = "";
  let server: Server | undefined;
  let clients: ProviderClients | undefined;

  afterEach(async () => {
    clients?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("finds the provider's socket while every thread of the pool is busy", async () => {
    dir = mkdtempSync(join(tmpdir(), "provider-clients-"));
    const listening = createServer();
    server = listening;
    await new Promise<void>((resolve) => listening.listen(join(dir, "azure.sock"), resolve));
    clients = new ProviderClients([dir], 4 * 1024 * 1024, logger);

    // Each job holds a pool thread for a good part of a second; there are as
    // many as the pool has threads (UV_THREADPOOL_SIZE, 4 by default).
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const order: string[] = [];
    const busy = Array.from(
      { length: threads },
      () => new Promise<void>((resolve, reject) => pbkdf2("busy", "pool", 300_000, 64, "sha512", (err) => (err ? reject(err) : (order.push("pool job"), resolve())))),
    );
    const found = clients.get("azure").then((client) => {
      order.push("socket found");
      return client;
    });
    const [client] = await Promise.all([found, ...busy]);

    expect(client.socketPath).toBe(join(dir, "azure.sock"));
    expect(order[0]).toBe("socket found");
    expect(order.filter((o) => o === "pool job")).toHaveLength(threads);
  });

  it("still names the directories searched when no provider socket is there", async () => {
    dir = mkdtempSync(join(tmpdir(), "provider-clients-"));
    clients = new ProviderClients([dir], 4 * 1024 * 1024, logger);
    await expect(clients.get("azure")).rejects.toThrow(`no socket azure.sock in ${dir}`);
  });
});
