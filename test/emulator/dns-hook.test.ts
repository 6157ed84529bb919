// The DNS hook really redirects what Node's net, tls, https and fetch
// connect to, and leaves other names alone.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import dns from "node:dns";
import { lookup as namedLookup } from "node:dns";
import dnsPromises from "node:dns/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect, createServer as createNetServer, type AddressInfo } from "node:net";
import { isEmulatedHost } from "../../src/emulator/dns-hook.ts";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";

const savedEnv = { hosts: process.env.SSCSI_EMULATOR_HOSTS, address: process.env.SSCSI_EMULATOR_ADDRESS };

afterEach(() => {
  for (const [key, value] of [
    ["SSCSI_EMULATOR_HOSTS", savedEnv.hosts],
    ["SSCSI_EMULATOR_ADDRESS", savedEnv.address],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

function lookupCallback(host: string, options: dns.LookupOptions): Promise<unknown> {
  return new Promise((resolve, reject) => {
    dns.lookup(host, options, (err, address, family) => (err ? reject(err) : resolve(options.all ? address : { address, family })));
  });
}

describe("dns-hook", () => {
  it("answers the emulator address for vault and login hosts, in every lookup form", async () => {
    delete process.env.SSCSI_EMULATOR_HOSTS;
    process.env.SSCSI_EMULATOR_ADDRESS = "127.0.0.42";
    expect(await lookupCallback("kv1.vault.azure.net", {})).toEqual({ address: "127.0.0.42", family: 4 });
    expect(await lookupCallback("KV1.Vault.Azure.Net", { all: true })).toEqual([{ address: "127.0.0.42", family: 4 }]);
    expect(await dnsPromises.lookup("login.microsoftonline.com")).toEqual({ address: "127.0.0.42", family: 4 });
    expect(await dnsPromises.lookup("ns1.eastus-1.eventgrid.azure.net")).toEqual({ address: "127.0.0.42", family: 4 });
    expect(await dns.promises.lookup("kv.vault.usgovcloudapi.net", { all: true })).toEqual([{ address: "127.0.0.42", family: 4 }]);
    // The ESM named export is the patched function too.
    const viaNamed = await new Promise((resolve) => namedLookup("kv.vault.azure.cn", (_e, address) => resolve(address)));
    expect(viaNamed).toBe("127.0.0.42");
  });

  it("leaves other names alone and follows SSCSI_EMULATOR_HOSTS", async () => {
    process.env.SSCSI_EMULATOR_ADDRESS = "127.0.0.42";
    const localhost = (await dnsPromises.lookup("localhost")) as { address: string };
    expect(localhost.address).not.toBe("127.0.0.42");
    expect(isEmulatedHost("vault.azure.net.example.com")).toBe(false);
    expect(isEmulatedHost("evilvault.azure.net")).toBe(false);

    process.env.SSCSI_EMULATOR_HOSTS = "vault.emu, sts.emu";
    expect(isEmulatedHost("kv1.vault.emu")).toBe(true);
    expect(isEmulatedHost("kv1.vault.azure.net")).toBe(false);
    expect(await dnsPromises.lookup("kv1.vault.emu")).toEqual({ address: "127.0.0.42", family: 4 });
  });

  describe("connections made by Node", () => {
    let tcp: ReturnType<typeof createNetServer>;
    let http: Server;
    let emulator: Emulator;

    beforeAll(async () => {
      tcp = createNetServer((socket) => socket.end("hello from tcp\n"));
      http = createHttpServer((req, res) => res.end(`host=${req.headers.host}`));
      await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
      await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
      emulator = await startEmulator();
    });

    afterAll(async () => {
      await new Promise((resolve) => tcp.close(resolve));
      await new Promise((resolve) => http.close(resolve));
      await emulator.close();
    });

    it("net.connect reaches the redirected address", async () => {
      process.env.SSCSI_EMULATOR_ADDRESS = "127.0.0.1";
      const port = (tcp.address() as AddressInfo).port;
      const text = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: "kv1.vault.azure.net", port });
        let data = "";
        socket.on("data", (chunk) => (data += chunk.toString()));
        socket.on("end", () => resolve(data));
        socket.on("error", reject);
      });
      expect(text).toBe("hello from tcp\n");
    });

    it("fetch (undici) reaches the redirected address", async () => {
      process.env.SSCSI_EMULATOR_ADDRESS = "127.0.0.1";
      const port = (http.address() as AddressInfo).port;
      const response = await fetch(`http://kv1.vault.azure.net:${port}/`);
      expect(await response.text()).toBe(`host=kv1.vault.azure.net:${port}`);
    });

    it("https with SNI reaches the emulator and its certificate verifies for the vault name", async () => {
      process.env.SSCSI_EMULATOR_ADDRESS = "127.0.0.1";
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`https://kv9.vault.azure.net:${emulator.port}/_emulator/healthz`, { ca: emulator.caCertPem }, (res) => {
          let data = "";
          res.on("data", (chunk) => (data += chunk.toString()));
          res.on("end", () => resolve(data));
        });
        req.on("error", reject);
        req.end();
      });
      expect(body).toBe("ok");
    });
  });
});
