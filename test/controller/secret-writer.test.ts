// How the controller writes a Secret without reading it: a JSON patch of
// tests proves the Secret is its own (or absent), then a server-side apply
// with its field manager. The API server's own behaviour for each answer is
// covered by the cluster tests; here, the requests and their translation.
import { describe, expect, it } from "vitest";
import { EventRecorder } from "../../src/controller/kube/event-recorder.ts";
import { applyConfiguration, SecretWriter } from "../../src/controller/kube/secret-writer.ts";
import { checkSecretObject } from "../../src/controller/reconcile/reconciler.ts";
import { SyncFailure } from "../../src/controller/reconcile/sync-failure.ts";
import { createLogger } from "../../src/shared/logger.ts";
import { apiError, recordingRest, secretSync } from "./fakes.ts";

const data = new Map([["password", Buffer.from("hunter2-secret-value")]]);

describe("the Secret write", () => {
  it("applies exactly the controller's fields: label, one SecretSync owner, type, data", () => {
    const ss = secretSync("app", { secretObject: { type: "kubernetes.io/basic-auth", data: [], labels: { team: "a" }, annotations: { note: "x" } } });
    expect(applyConfiguration(ss, data)).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "app",
        namespace: "team-a",
        labels: { team: "a", "secrets-store.sync.x-k8s.io": "" },
        annotations: { note: "x" },
        ownerReferences: [{ apiVersion: "secret-sync.x-k8s.io/v1alpha1", kind: "SecretSync", name: "app", uid: "uid-app" }],
      },
      type: "kubernetes.io/basic-auth",
      data: { password: Buffer.from("hunter2-secret-value").toString("base64") },
    });
  });

  it("checks ownership with a JSON patch of tests, then applies with its field manager", async () => {
    const { rest, calls } = recordingRest(() => ({}));
    expect(await new SecretWriter(rest).write(secretSync("app"), data)).toBe("updated");
    expect(calls.map((c) => [c.method, c.contentType, c.path, c.query])).toEqual([
      ["PATCH", "application/json-patch+json", "/api/v1/namespaces/team-a/secrets/app", { fieldManager: "secrets-store-sync-controller" }],
      ["PATCH", "application/apply-patch+yaml", "/api/v1/namespaces/team-a/secrets/app", { fieldManager: "secrets-store-sync-controller", force: "true" }],
    ]);
    expect(calls[0]!.body).toEqual([
      { op: "test", path: "/metadata/labels/secrets-store.sync.x-k8s.io", value: "" },
      { op: "test", path: "/metadata/ownerReferences/0/uid", value: "uid-app" },
    ]);
  });

  it("creates the Secret when there is none (404 to the tests)", async () => {
    const { rest, calls } = recordingRest((spec) => {
      if (spec.contentType === "application/json-patch+json") throw apiError(404, 'secrets "app" not found');
      return {};
    });
    expect(await new SecretWriter(rest).write(secretSync("app"), data)).toBe("created");
    expect(calls).toHaveLength(2);
  });

  it("leaves someone else's Secret alone (422 to the tests) and says what to do", async () => {
    const { rest, calls } = recordingRest(() => {
      throw apiError(422, "the server rejected our request due to an error in our request");
    });
    const err = (await new SecretWriter(rest).write(secretSync("app"), data).catch((e: unknown) => e)) as SyncFailure;
    expect(calls).toHaveLength(1);
    expect(err.reason).toBe("ControllerPatchError");
    expect(err.message).toBe(
      "secret team-a/app exists and is not owned by secretsync team-a/app (it lacks the secrets-store.sync.x-k8s.io label or the SecretSync as its owner), " +
        "so it was left unchanged: delete or rename that Secret, or give the SecretSync another name",
    );
  });

  it("names an immutable type and the fix, and never repeats a value the API server quoted", async () => {
    const { rest } = recordingRest((spec) => {
      if (spec.contentType === "application/apply-patch+yaml") throw apiError(422, 'Secret "app" is invalid: type: Invalid value: "kubernetes.io/tls": field is immutable; data: hunter2-secret-value');
      return {};
    });
    const err = (await new SecretWriter(rest).write(secretSync("app", { secretObject: { type: "kubernetes.io/tls", data: [] } }), data).catch((e: unknown) => e)) as SyncFailure;
    expect(err.message).toContain("the type of a Secret cannot change: delete Secret team-a/app and it is created again as kubernetes.io/tls");
    expect(err.message).not.toContain("hunter2");
    expect(err.message).toContain("<redacted>");
  });

  it("is refused by the controller itself for service-account-token Secrets and reserved keys", () => {
    const refuse = (ss: ReturnType<typeof secretSync>) => {
      try {
        checkSecretObject(ss);
        return undefined;
      } catch (err) {
        return err as SyncFailure;
      }
    };
    expect(refuse(secretSync("a", { secretObject: { type: "kubernetes.io/service-account-token", data: [] } }))?.message).toBe(
      "secretsync team-a/a: type kubernetes.io/service-account-token is refused: the controller never writes service-account token Secrets; use Opaque or another type",
    );
    expect(refuse(secretSync("a", { secretObject: { type: "Opaque", data: [], labels: { "secrets-store.sync.x-k8s.io": "x" } } }))?.reason).toBe("InvalidClusterSecretLabelError");
    expect(refuse(secretSync("a", { secretObject: { type: "Opaque", data: [], annotations: { "secrets-store.sync.x-k8s.io/a": "x" } } }))?.reason).toBe("InvalidClusterSecretAnnotationError");
    expect(refuse(secretSync("a"))).toBeUndefined();
  });
});

describe("Events", () => {
  it("are sent once per window for the same SecretSync, reason and message, and remembered in a bounded set", async () => {
    const { rest, calls } = recordingRest(() => ({}));
    const events = new EventRecorder(rest, createLogger({ name: "t", level: "silent" }), { instance: "controller-0", repeatAfterMs: 60_000, maxRemembered: 5 });
    const ss = secretSync("app");
    await events.record(ss, "Warning", "ProviderError", "boom");
    await events.record(ss, "Warning", "ProviderError", "boom");
    await events.record(ss, "Warning", "ProviderError", "other");
    expect(calls).toHaveLength(2);
    expect(calls[0]!.body).toMatchObject({
      involvedObject: { apiVersion: "secret-sync.x-k8s.io/v1alpha1", kind: "SecretSync", name: "app", namespace: "team-a", uid: "uid-app" },
      type: "Warning",
      reason: "ProviderError",
      source: { component: "secrets-store-sync-controller" },
      reportingInstance: "controller-0",
    });
    for (let i = 0; i < 100; i++) await events.record(secretSync(`hostile-${i}`), "Warning", "ProviderError", `m${i}`);
    expect(events.remembered).toBe(5);
  });
});
