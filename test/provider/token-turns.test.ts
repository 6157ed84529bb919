// One namespace bringing many new identities at once cannot hold another
// namespace's first token behind all of its own: the provider program's token
// requests share a few connections to Entra ID, and the namespaces take turns
// for them. Through the provider's socket, with the emulator's Entra ID behind
// it over HTTPS and the real Azure SDK; each token request takes 500 ms in the
// emulator, so the connections stay busy while the second namespace asks.
// Proven by the order of the answers, not by times.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, SeedDocument } from "../../src/emulator/index.ts";
import { MAX_SOCKETS_PER_HOST } from "../../src/provider/keyvault/connection-bounds.ts";
import { objectsYaml } from "./client.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { podAttributes } from "./seed.ts";
import { waitFor } from "../harness/kube.ts";

const VAULT = "kv-turns";
/** Three connections' worth of new identities for the busy namespace. */
const BURST = 3 * MAX_SOCKETS_PER_HOST;
const sp = (name: string, i: number) => ({ clientid: `7${String(i).padStart(7, "0")}-0000-4000-8000-${name === "busy" ? "000000000001" : "000000000002"}`, clientsecret: `${name}-secret-${i}` });
const BUSY = Array.from({ length: BURST }, (_, i) => sp("busy", i));
const QUIET = sp("quiet", 0);
const SEED: SeedDocument = {
  vaults: [{ name: VAULT, secrets: [{ name: "s1", value: "one" }] }],
  applications: [...BUSY, QUIET].map((p, i) => ({ name: `app-${i}`, clientId: p.clientid, clientSecret: p.clientsecret, roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }] })),
};

let emulator: Emulator;
let address: string;
let provider: RunningProvider;

beforeAll(async () => {
  ({ emulator, address } = await startTestEmulator(SEED));
  provider = await startProvider(emulator, address);
}, 120_000);

afterAll(async () => {
  await provider?.stop();
  await emulator?.close();
});

const attrs = (namespace: string, i: number) =>
  podAttributes({ keyvaultName: VAULT, tenantID: emulator.tenantId, objects: objectsYaml([{ objectName: "s1", objectType: "secret" }]) }, { name: `pod-${i}`, namespace, serviceAccount: "sa" });

describe("token requests take turns by namespace", () => {
  it("a namespace's first token is sent at the next free connection, ahead of another namespace's burst", async () => {
    emulator.faults.add({ kind: "latency", operation: "token", latencyMs: 500, durationMs: 120_000 });
    const answered: string[] = [];
    const busy = BUSY.map((secrets, i) => provider.client.mount({ attributes: attrs("busy", i), secrets }).then(() => answered.push(`busy-${i}`)));
    // Every connection to Entra ID carries one of the burst's token requests; the rest wait.
    await waitFor(() => (emulator.counters()["fault:latency:token"] ?? 0) >= MAX_SOCKETS_PER_HOST, { description: "the connections busy with the burst", timeoutMs: 60_000, intervalMs: 20 });
    const quiet = provider.client.mount({ attributes: attrs("quiet", 0), secrets: QUIET }).then(() => answered.push("quiet"));
    await Promise.all([...busy, quiet]);
    const after = answered.length - 1 - answered.indexOf("quiet");
    // First come, first served, the quiet namespace's request went after the whole burst (none after it);
    // taking turns, it goes with the second connection's worth, ahead of the third.
    expect(after, `answers: ${answered.join(" ")}`).toBeGreaterThanOrEqual(MAX_SOCKETS_PER_HOST - 4);
    expect(emulator.counters()["token"]).toBe(BURST + 1);
  });
});
