// Key Vault key operations: /keys, /keys/{name}[/{version}],
// /keys/{name}/versions, /keys/{name}/create, import (PUT) and /deletedkeys.
import { toPublicJwk } from "../crypto/json-web-key.ts";
import { BadParameterError } from "../errors/key-vault-errors.ts";
import type { Exchange } from "../server/exchange.ts";
import type { Route } from "../server/router.ts";
import type { KeyService } from "../services/key-service.ts";
import type { VaultObjects } from "../services/vault-objects.ts";
import type { DeletedObject, KeyVersionRecord } from "../store/key-vault-store.ts";
import { deletedFields, listingOrder, page, parseAttributes, parseTags, type VaultScope, wireAttributes } from "./wire.ts";

const ACTION = "Microsoft.KeyVault/vaults/keys";

export interface KeyHandlerServices {
  keys: KeyService;
  objects: VaultObjects;
}

function keyId(exchange: Exchange, name: string, version?: string): string {
  return `${exchange.baseUrl}/keys/${name}${version ? `/${version}` : ""}`;
}

function keyBundle(exchange: Exchange, name: string, record: KeyVersionRecord): Record<string, unknown> {
  const bundle: Record<string, unknown> = {
    key: toPublicJwk(record.privateKey, keyId(exchange, name, record.version), record.kty, record.keyOps),
    attributes: wireAttributes(record.attributes, true),
  };
  if (record.tags) bundle.tags = record.tags;
  if (record.managed) bundle.managed = true;
  if (record.releasePolicy !== undefined) bundle.release_policy = record.releasePolicy;
  return bundle;
}

function keyItem(exchange: Exchange, name: string, record: KeyVersionRecord, withVersion: boolean): Record<string, unknown> {
  const item: Record<string, unknown> = {
    kid: keyId(exchange, name, withVersion ? record.version : undefined),
    attributes: wireAttributes(record.attributes, true),
  };
  if (record.tags) item.tags = record.tags;
  if (record.managed) item.managed = true;
  return item;
}

function deletedBundle(exchange: Exchange, scope: VaultScope, deleted: DeletedObject<KeyVersionRecord>, full: boolean): Record<string, unknown> {
  const current = deleted.versions.at(-1)!;
  const bundle = full ? keyBundle(exchange, deleted.name, current) : keyItem(exchange, deleted.name, current, true);
  return { ...bundle, ...deletedFields(exchange, "deletedkeys", deleted, scope.vault) };
}

function optionalStringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw new BadParameterError(`'${field}' must be a list of strings.`);
  return value as string[];
}

function optionalInteger(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw new BadParameterError(`'${field}' must be an integer.`);
  return value;
}

export function keyRoutes(services: KeyHandlerServices): Route<VaultScope>[] {
  const { keys, objects } = services;
  const getKey: Route<VaultScope>["handle"] = (exchange, params, scope) => {
    const { name, record } = keys.get(scope.vault, params.name!, params.version);
    return { status: 200, body: keyBundle(exchange, name, record) };
  };

  return [
    {
      method: "GET",
      pattern: "/keys",
      operation: "listKeys",
      dataAction: `${ACTION}/read`,
      handle: (exchange, _params, scope) => ({
        status: 200,
        body: page(keys.list(scope.vault).map((o) => keyItem(exchange, o.name, o.versions.at(-1)!, false)), exchange),
      }),
    },
    {
      method: "GET",
      pattern: "/keys/{name}/versions",
      operation: "listKeyVersions",
      dataAction: `${ACTION}/read`,
      handle: (exchange, params, scope) => {
        const object = keys.versions(scope.vault, params.name!);
        return { status: 200, body: page(listingOrder(scope.vault, object?.versions ?? []).map((v) => keyItem(exchange, object!.name, v, true)), exchange) };
      },
    },
    {
      method: "POST",
      pattern: "/keys/{name}/create",
      operation: "createKey",
      dataAction: `${ACTION}/create/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        if (typeof body.kty !== "string") throw new BadParameterError("The request body must contain the key type 'kty'.");
        const attributes = parseAttributes(body.attributes) ?? {};
        if (typeof body.exportable === "boolean") attributes.exportable = body.exportable;
        const { name, record } = await keys.create(scope.vault, params.name!, {
          kty: body.kty,
          keySize: optionalInteger(body.key_size, "key_size"),
          publicExponent: optionalInteger(body.public_exponent, "public_exponent"),
          curve: typeof body.crv === "string" ? body.crv : undefined,
          keyOps: optionalStringList(body.key_ops, "key_ops"),
          attributes,
          tags: parseTags(body.tags),
        });
        if (body.release_policy !== undefined) record.releasePolicy = body.release_policy;
        return { status: 200, body: keyBundle(exchange, name, record) };
      },
    },
    {
      method: "PUT",
      pattern: "/keys/{name}",
      operation: "importKey",
      dataAction: `${ACTION}/import/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        if (!body.key || typeof body.key !== "object") throw new BadParameterError("The request body must contain the JSON Web Key 'key'.");
        const { name, record } = keys.import(scope.vault, params.name!, {
          jwk: body.key as Record<string, unknown>,
          hsm: body.Hsm === true,
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
        });
        return { status: 200, body: keyBundle(exchange, name, record) };
      },
    },
    { method: "GET", pattern: "/keys/{name}", operation: "getKey", dataAction: `${ACTION}/read`, handle: getKey },
    {
      method: "DELETE",
      pattern: "/keys/{name}",
      operation: "deleteKey",
      dataAction: `${ACTION}/delete`,
      handle: (exchange, params, scope) => ({ status: 200, body: deletedBundle(exchange, scope, objects.delete(scope.vault, "keys", params.name!), true) }),
    },
    { method: "GET", pattern: "/keys/{name}/{version}", operation: "getKey", dataAction: `${ACTION}/read`, handle: getKey },
    {
      method: "PATCH",
      pattern: "/keys/{name}/{version}",
      operation: "updateKey",
      dataAction: `${ACTION}/update/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        const { name, record } = keys.update(scope.vault, params.name!, params.version, {
          keyOps: optionalStringList(body.key_ops, "key_ops"),
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
        });
        return { status: 200, body: keyBundle(exchange, name, record) };
      },
    },
    {
      method: "GET",
      pattern: "/deletedkeys",
      operation: "listDeletedKeys",
      dataAction: `${ACTION}/read`,
      handle: (exchange, _params, scope) => ({
        status: 200,
        body: page(objects.store.listDeleted(scope.vault.name, "keys").map((d) => deletedBundle(exchange, scope, d, false)), exchange),
      }),
    },
    {
      method: "GET",
      pattern: "/deletedkeys/{name}",
      operation: "getDeletedKey",
      dataAction: `${ACTION}/read`,
      handle: (exchange, params, scope) => ({ status: 200, body: deletedBundle(exchange, scope, objects.getDeleted(scope.vault.name, "keys", params.name!), true) }),
    },
    {
      method: "DELETE",
      pattern: "/deletedkeys/{name}",
      operation: "purgeDeletedKey",
      dataAction: `${ACTION}/purge/action`,
      handle: (_exchange, params, scope) => {
        objects.purge(scope.vault.name, "keys", params.name!);
        return { status: 204 };
      },
    },
    {
      method: "POST",
      pattern: "/deletedkeys/{name}/recover",
      operation: "recoverDeletedKey",
      dataAction: `${ACTION}/recover/action`,
      handle: (exchange, params, scope) => {
        const object = objects.recover(scope.vault.name, "keys", params.name!);
        return { status: 200, body: keyBundle(exchange, object.name, object.versions.at(-1)!) };
      },
    },
  ];
}
