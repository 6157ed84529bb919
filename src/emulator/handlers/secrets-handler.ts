// Key Vault secret operations: /secrets, /secrets/{name}[/{version}],
// /secrets/{name}/versions and /deletedsecrets.
import { BadParameterError } from "../errors/key-vault-errors.ts";
import type { Exchange, HttpResult } from "../server/exchange.ts";
import type { Route } from "../server/router.ts";
import { CONTENT_TYPE_PEM, CONTENT_TYPE_PKCS12, type CertificateService } from "../services/certificate-service.ts";
import type { SecretService } from "../services/secret-service.ts";
import type { VaultObjects } from "../services/vault-objects.ts";
import type { DeletedObject, SecretVersionRecord } from "../store/key-vault-store.ts";
import { deletedFields, listingOrder, optionalString, page, parseAttributes, parseTags, type VaultScope, wireAttributes } from "./wire.ts";

const ACTION = "Microsoft.KeyVault/vaults/secrets";

export interface SecretHandlerServices {
  secrets: SecretService;
  certificates: CertificateService;
  objects: VaultObjects;
}

function secretId(exchange: Exchange, name: string, version?: string): string {
  return `${exchange.baseUrl}/secrets/${name}${version ? `/${version}` : ""}`;
}

function secretBundle(exchange: Exchange, name: string, record: SecretVersionRecord, value = record.value, contentType = record.contentType): Record<string, unknown> {
  const bundle: Record<string, unknown> = {
    value,
    id: secretId(exchange, name, record.version),
    attributes: wireAttributes(record.attributes),
  };
  if (contentType !== undefined) bundle.contentType = contentType;
  if (record.tags) bundle.tags = record.tags;
  if (record.certificateBacked) bundle.kid = `${exchange.baseUrl}/keys/${name}/${record.version}`;
  if (record.managed) bundle.managed = true;
  return bundle;
}

function secretItem(exchange: Exchange, name: string, record: SecretVersionRecord, withVersion: boolean): Record<string, unknown> {
  const item: Record<string, unknown> = {
    id: secretId(exchange, name, withVersion ? record.version : undefined),
    attributes: wireAttributes(record.attributes),
  };
  if (record.contentType !== undefined) item.contentType = record.contentType;
  if (record.tags) item.tags = record.tags;
  if (record.managed) item.managed = true;
  return item;
}

function deletedBundle(exchange: Exchange, scope: VaultScope, deleted: DeletedObject<SecretVersionRecord>, withValue: boolean): Record<string, unknown> {
  const current = deleted.versions.at(-1)!;
  const bundle = withValue ? secretBundle(exchange, deleted.name, current) : secretItem(exchange, deleted.name, current, true);
  if (!withValue) delete bundle.value;
  return { ...bundle, ...deletedFields(exchange, "deletedsecrets", deleted, scope.vault) };
}

export function secretRoutes(services: SecretHandlerServices): Route<VaultScope>[] {
  const { secrets, certificates, objects } = services;

  const getSecret = (exchange: Exchange, params: Record<string, string>, scope: VaultScope): HttpResult => {
    const { name, record } = secrets.get(scope.vault, params.name!, params.version);
    const wanted = exchange.query.get("outContentType");
    if (wanted && wanted !== record.contentType) {
      if (wanted !== CONTENT_TYPE_PEM || record.contentType !== CONTENT_TYPE_PKCS12 || !record.certificateBacked) {
        throw new BadParameterError(`Conversion of the secret to '${wanted}' is not supported.`);
      }
      const certificate = certificates.certificateFor(scope.vault, name, record.version);
      if (certificate) return { status: 200, body: secretBundle(exchange, name, record, certificates.renderPem(certificate), CONTENT_TYPE_PEM) };
    }
    return { status: 200, body: secretBundle(exchange, name, record) };
  };

  return [
    {
      method: "GET",
      pattern: "/secrets",
      operation: "listSecrets",
      dataAction: `${ACTION}/readMetadata/action`,
      handle: (exchange, _params, scope) => {
        const items = secrets.list(scope.vault).map((o) => secretItem(exchange, o.name, o.versions.at(-1)!, false));
        return { status: 200, body: page(items, exchange) };
      },
    },
    {
      method: "GET",
      pattern: "/secrets/{name}/versions",
      operation: "listSecretVersions",
      dataAction: `${ACTION}/readMetadata/action`,
      handle: (exchange, params, scope) => {
        const object = secrets.versions(scope.vault, params.name!);
        const items = listingOrder(scope.vault, object?.versions ?? []).map((v) => secretItem(exchange, object!.name, v, true));
        return { status: 200, body: page(items, exchange) };
      },
    },
    {
      method: "PUT",
      pattern: "/secrets/{name}",
      operation: "setSecret",
      dataAction: `${ACTION}/setSecret/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        if (typeof body.value !== "string") throw new BadParameterError("The request body must contain the secret 'value' as a string.");
        const { name, record } = secrets.set(scope.vault, params.name!, {
          value: body.value,
          contentType: optionalString(body, "contentType"),
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
        });
        return { status: 200, body: secretBundle(exchange, name, record) };
      },
    },
    { method: "GET", pattern: "/secrets/{name}", operation: "getSecret", dataAction: `${ACTION}/getSecret/action`, handle: getSecret },
    {
      method: "DELETE",
      pattern: "/secrets/{name}",
      operation: "deleteSecret",
      dataAction: `${ACTION}/delete`,
      handle: (exchange, params, scope) => {
        const deleted = objects.delete(scope.vault, "secrets", params.name!);
        return { status: 200, body: deletedBundle(exchange, scope, deleted, false) };
      },
    },
    { method: "GET", pattern: "/secrets/{name}/{version}", operation: "getSecret", dataAction: `${ACTION}/getSecret/action`, handle: getSecret },
    {
      method: "PATCH",
      pattern: "/secrets/{name}/{version}",
      operation: "updateSecret",
      dataAction: `${ACTION}/setSecret/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        const { name, record } = secrets.update(scope.vault, params.name!, params.version, {
          contentType: optionalString(body, "contentType"),
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
        });
        const bundle = secretBundle(exchange, name, record);
        delete bundle.value;
        return { status: 200, body: bundle };
      },
    },
    {
      method: "GET",
      pattern: "/deletedsecrets",
      operation: "listDeletedSecrets",
      dataAction: `${ACTION}/readMetadata/action`,
      handle: (exchange, _params, scope) => {
        const items = objects.store.listDeleted(scope.vault.name, "secrets").map((d) => deletedBundle(exchange, scope, d, false));
        return { status: 200, body: page(items, exchange) };
      },
    },
    {
      method: "GET",
      pattern: "/deletedsecrets/{name}",
      operation: "getDeletedSecret",
      dataAction: `${ACTION}/readMetadata/action`,
      handle: (exchange, params, scope) => {
        const deleted = objects.getDeleted(scope.vault.name, "secrets", params.name!);
        const bundle = deletedBundle(exchange, scope, deleted, false);
        return { status: 200, body: bundle };
      },
    },
    {
      method: "DELETE",
      pattern: "/deletedsecrets/{name}",
      operation: "purgeDeletedSecret",
      dataAction: `${ACTION}/purge/action`,
      handle: (_exchange, params, scope) => {
        objects.purge(scope.vault.name, "secrets", params.name!);
        return { status: 204 };
      },
    },
    {
      method: "POST",
      pattern: "/deletedsecrets/{name}/recover",
      operation: "recoverDeletedSecret",
      dataAction: `${ACTION}/recover/action`,
      handle: (exchange, params, scope) => {
        const object = objects.recover(scope.vault.name, "secrets", params.name!);
        const bundle = secretBundle(exchange, object.name, object.versions.at(-1)!);
        delete bundle.value;
        return { status: 200, body: bundle };
      },
    },
  ];
}
