// Key Vault certificate operations: /certificates, /certificates/{name}[/{version}],
// versions, import, create (202 + /pending), policy and /deletedcertificates.
import { describeCertificate } from "../crypto/x509.ts";
import { BadParameterError } from "../errors/key-vault-errors.ts";
import type { Exchange } from "../server/exchange.ts";
import type { Route } from "../server/router.ts";
import type { CertificatePolicyInput, CertificateService } from "../services/certificate-service.ts";
import type { CertificateOperationRecord, CertificatePolicyRecord, CertificateVersionRecord, DeletedObject } from "../store/key-vault-store.ts";
import { deletedFields, listingOrder, optionalString, page, parseAttributes, parseTags, type VaultScope, wireAttributes } from "./wire.ts";

const ACTION = "Microsoft.KeyVault/vaults/certificates";

export interface CertificateHandlerServices {
  certificates: CertificateService;
}

function certificateId(exchange: Exchange, name: string, version?: string): string {
  return `${exchange.baseUrl}/certificates/${name}${version ? `/${version}` : ""}`;
}

function wirePolicy(exchange: Exchange, name: string, policy: CertificatePolicyRecord): Record<string, unknown> {
  const keyProps: Record<string, unknown> = {
    exportable: policy.keyProperties.exportable,
    kty: policy.keyProperties.kty,
    reuse_key: policy.keyProperties.reuseKey,
  };
  if (policy.keyProperties.keySize !== undefined) keyProps.key_size = policy.keyProperties.keySize;
  if (policy.keyProperties.curve !== undefined) keyProps.crv = policy.keyProperties.curve;
  const x509: Record<string, unknown> = {
    subject: policy.subject,
    sans: policy.dnsNames.length > 0 ? { dns_names: policy.dnsNames } : undefined,
    ekus: policy.ekus,
    key_usage: policy.keyUsage,
    validity_months: policy.validityMonths,
    basic_constraints: { ca: false },
  };
  return {
    id: `${certificateId(exchange, name)}/policy`,
    key_props: keyProps,
    secret_props: { contentType: policy.contentType },
    x509_props: x509,
    lifetime_actions: policy.lifetimeActions ?? [],
    issuer: { name: policy.issuerName },
    attributes: { enabled: true, created: policy.created, updated: policy.updated },
  };
}

function certificateBundle(
  exchange: Exchange,
  name: string,
  record: CertificateVersionRecord,
  policy?: CertificatePolicyRecord,
): Record<string, unknown> {
  const facts = describeCertificate(record.chain[0]!);
  const bundle: Record<string, unknown> = {
    id: certificateId(exchange, name, record.version),
    kid: `${exchange.baseUrl}/keys/${name}/${record.version}`,
    sid: `${exchange.baseUrl}/secrets/${name}/${record.version}`,
    x5t: facts.x5t,
    cer: record.chain[0]!.toString("base64"),
    contentType: record.contentType,
    attributes: wireAttributes(record.attributes),
  };
  if (policy) bundle.policy = wirePolicy(exchange, name, policy);
  if (record.tags) bundle.tags = record.tags;
  if (record.preserveCertOrder !== undefined) bundle.preserveCertOrder = record.preserveCertOrder;
  return bundle;
}

function certificateItem(exchange: Exchange, name: string, record: CertificateVersionRecord, withVersion: boolean): Record<string, unknown> {
  const item: Record<string, unknown> = {
    id: certificateId(exchange, name, withVersion ? record.version : undefined),
    x5t: describeCertificate(record.chain[0]!).x5t,
    attributes: wireAttributes(record.attributes),
  };
  if (record.tags) item.tags = record.tags;
  return item;
}

function operationBundle(exchange: Exchange, name: string, operation: CertificateOperationRecord, policy: CertificatePolicyRecord | undefined): Record<string, unknown> {
  const bundle: Record<string, unknown> = {
    id: `${certificateId(exchange, name)}/pending`,
    issuer: { name: policy?.issuerName ?? "Self" },
    csr: operation.csr,
    cancellation_requested: operation.cancellationRequested,
    status: operation.status,
    request_id: operation.requestId,
  };
  if (operation.statusDetails) bundle.status_details = operation.statusDetails;
  if (operation.error) bundle.error = operation.error;
  if (operation.status === "completed") bundle.target = certificateId(exchange, name);
  return bundle;
}

function deletedBundle(exchange: Exchange, scope: VaultScope, deleted: DeletedObject<CertificateVersionRecord>, full: boolean): Record<string, unknown> {
  const current = deleted.versions.at(-1)!;
  const bundle = full ? certificateBundle(exchange, deleted.name, current) : certificateItem(exchange, deleted.name, current, true);
  return { ...bundle, ...deletedFields(exchange, "deletedcertificates", deleted, scope.vault) };
}

/** Reads the policy fields the emulator honours from a wire CertificatePolicy. */
export function parsePolicy(value: unknown): CertificatePolicyInput | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new BadParameterError("'policy' must be an object.");
  const raw = value as Record<string, Record<string, unknown> | undefined>;
  const policy: CertificatePolicyInput = {};
  const keyProps = raw.key_props;
  if (keyProps) {
    if (typeof keyProps.kty === "string") policy.keyType = keyProps.kty;
    if (typeof keyProps.key_size === "number") policy.keySize = keyProps.key_size;
    if (typeof keyProps.crv === "string") policy.curve = keyProps.crv;
    if (typeof keyProps.exportable === "boolean") policy.exportable = keyProps.exportable;
    if (typeof keyProps.reuse_key === "boolean") policy.reuseKey = keyProps.reuse_key;
  }
  const contentType = raw.secret_props?.contentType;
  if (typeof contentType === "string") policy.contentType = contentType;
  const x509 = raw.x509_props;
  if (x509) {
    if (typeof x509.subject === "string" && x509.subject !== "") policy.subject = x509.subject;
    const sans = x509.sans as Record<string, unknown> | undefined;
    if (sans && Array.isArray(sans.dns_names)) policy.dnsNames = sans.dns_names.map(String);
    if (Array.isArray(x509.ekus)) policy.ekus = x509.ekus.map(String);
    if (Array.isArray(x509.key_usage)) policy.keyUsage = x509.key_usage.map(String);
    if (typeof x509.validity_months === "number") policy.validityMonths = x509.validity_months;
  }
  const issuerName = raw.issuer?.name;
  if (typeof issuerName === "string") policy.issuerName = issuerName;
  if (Array.isArray(raw.lifetime_actions)) policy.lifetimeActions = raw.lifetime_actions as unknown[];
  return policy;
}

export function certificateRoutes(services: CertificateHandlerServices): Route<VaultScope>[] {
  const { certificates } = services;

  const getCertificate: Route<VaultScope>["handle"] = async (exchange, params, scope) => {
    await certificates.settle(scope.vault, params.name!);
    const { name, record, policy } = certificates.get(scope.vault, params.name!, params.version);
    return { status: 200, body: certificateBundle(exchange, name, record, params.version ? undefined : policy) };
  };

  return [
    {
      method: "GET",
      pattern: "/certificates",
      operation: "listCertificates",
      dataAction: `${ACTION}/read`,
      handle: (exchange, _params, scope) => ({
        status: 200,
        body: page(certificates.list(scope.vault).map((o) => certificateItem(exchange, o.name, o.versions.at(-1)!, false)), exchange),
      }),
    },
    {
      method: "GET",
      pattern: "/certificates/{name}/versions",
      operation: "listCertificateVersions",
      dataAction: `${ACTION}/read`,
      handle: (exchange, params, scope) => {
        const object = certificates.versions(scope.vault, params.name!);
        return { status: 200, body: page(listingOrder(scope.vault, object?.versions ?? []).map((v) => certificateItem(exchange, object!.name, v, true)), exchange) };
      },
    },
    {
      method: "POST",
      pattern: "/certificates/{name}/import",
      operation: "importCertificate",
      dataAction: `${ACTION}/import/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        const value = optionalString(body, "value");
        if (!value) throw new BadParameterError("The request body must contain the certificate 'value'.");
        const { name, record, policy } = certificates.import(scope.vault, params.name!, {
          value,
          password: optionalString(body, "pwd"),
          policy: parsePolicy(body.policy),
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
          preserveCertOrder: typeof body.preserveCertOrder === "boolean" ? body.preserveCertOrder : undefined,
        });
        return { status: 200, body: certificateBundle(exchange, name, record, policy) };
      },
    },
    {
      method: "POST",
      pattern: "/certificates/{name}/create",
      operation: "createCertificate",
      dataAction: `${ACTION}/create/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        const policy = parsePolicy(body.policy);
        if (!policy?.subject && !(policy?.dnsNames && policy.dnsNames.length > 0)) {
          throw new BadParameterError("Subject or SubjectAlternativeNames must be specified in the certificate policy.");
        }
        const operation = certificates.create(scope.vault, params.name!, {
          policy,
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
          preserveCertOrder: typeof body.preserveCertOrder === "boolean" ? body.preserveCertOrder : undefined,
        });
        const location = `${certificateId(exchange, params.name!)}/pending?api-version=${exchange.query.get("api-version") ?? "7.6"}&request_id=${operation.requestId}`;
        return {
          status: 202,
          body: operationBundle(exchange, params.name!, operation, certificates.policy(scope.vault, params.name!)),
          headers: { location, "retry-after": "0" },
        };
      },
    },
    {
      method: "GET",
      pattern: "/certificates/{name}/pending",
      operation: "getCertificateOperation",
      dataAction: `${ACTION}/read`,
      handle: async (exchange, params, scope) => {
        await certificates.settle(scope.vault, params.name!);
        const operation = certificates.operation(scope.vault, params.name!);
        return { status: 200, body: operationBundle(exchange, params.name!, operation, safePolicy(certificates, scope, params.name!)) };
      },
    },
    {
      method: "PATCH",
      pattern: "/certificates/{name}/pending",
      operation: "updateCertificateOperation",
      dataAction: `${ACTION}/update/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        const operation = body.cancellation_requested === true ? certificates.cancelOperation(scope.vault, params.name!) : certificates.operation(scope.vault, params.name!);
        return { status: 200, body: operationBundle(exchange, params.name!, operation, safePolicy(certificates, scope, params.name!)) };
      },
    },
    {
      method: "DELETE",
      pattern: "/certificates/{name}/pending",
      operation: "deleteCertificateOperation",
      dataAction: `${ACTION}/update/action`,
      handle: (exchange, params, scope) => {
        const operation = certificates.deleteOperation(scope.vault, params.name!);
        return { status: 200, body: operationBundle(exchange, params.name!, operation, safePolicy(certificates, scope, params.name!)) };
      },
    },
    {
      method: "GET",
      pattern: "/certificates/{name}/policy",
      operation: "getCertificatePolicy",
      dataAction: `${ACTION}/read`,
      handle: (exchange, params, scope) => ({ status: 200, body: wirePolicy(exchange, params.name!, certificates.policy(scope.vault, params.name!)) }),
    },
    {
      method: "PATCH",
      pattern: "/certificates/{name}/policy",
      operation: "updateCertificatePolicy",
      dataAction: `${ACTION}/update/action`,
      handle: async (exchange, params, scope) => {
        const policy = certificates.updatePolicy(scope.vault, params.name!, parsePolicy(await exchange.json()) ?? {});
        return { status: 200, body: wirePolicy(exchange, params.name!, policy) };
      },
    },
    { method: "GET", pattern: "/certificates/{name}", operation: "getCertificate", dataAction: `${ACTION}/read`, handle: getCertificate },
    {
      method: "DELETE",
      pattern: "/certificates/{name}",
      operation: "deleteCertificate",
      dataAction: `${ACTION}/delete`,
      handle: (exchange, params, scope) => ({ status: 200, body: deletedBundle(exchange, scope, certificates.delete(scope.vault, params.name!), true) }),
    },
    { method: "GET", pattern: "/certificates/{name}/{version}", operation: "getCertificate", dataAction: `${ACTION}/read`, handle: getCertificate },
    {
      method: "PATCH",
      pattern: "/certificates/{name}/{version}",
      operation: "updateCertificate",
      dataAction: `${ACTION}/update/action`,
      handle: async (exchange, params, scope) => {
        const body = await exchange.json();
        const { name, record, policy } = certificates.update(scope.vault, params.name!, params.version, {
          attributes: parseAttributes(body.attributes),
          tags: parseTags(body.tags),
        });
        return { status: 200, body: certificateBundle(exchange, name, record, policy) };
      },
    },
    {
      method: "GET",
      pattern: "/deletedcertificates",
      operation: "listDeletedCertificates",
      dataAction: `${ACTION}/read`,
      handle: (exchange, _params, scope) => {
        const deleted = certificates.listDeleted(scope.vault);
        return { status: 200, body: page(deleted.map((d) => deletedBundle(exchange, scope, d, false)), exchange) };
      },
    },
    {
      method: "GET",
      pattern: "/deletedcertificates/{name}",
      operation: "getDeletedCertificate",
      dataAction: `${ACTION}/read`,
      handle: (exchange, params, scope) => ({ status: 200, body: deletedBundle(exchange, scope, certificates.getDeleted(scope.vault, params.name!), true) }),
    },
    {
      method: "DELETE",
      pattern: "/deletedcertificates/{name}",
      operation: "purgeDeletedCertificate",
      dataAction: `${ACTION}/purge/action`,
      handle: (_exchange, params, scope) => {
        certificates.purge(scope.vault, params.name!);
        return { status: 204 };
      },
    },
    {
      method: "POST",
      pattern: "/deletedcertificates/{name}/recover",
      operation: "recoverDeletedCertificate",
      dataAction: `${ACTION}/recover/action`,
      handle: (exchange, params, scope) => {
        const object = certificates.recover(scope.vault, params.name!);
        const { policy } = certificates.get(scope.vault, object.name);
        return { status: 200, body: certificateBundle(exchange, object.name, object.versions.at(-1)!, policy) };
      },
    },
  ];
}

function safePolicy(certificates: CertificateService, scope: VaultScope, name: string): CertificatePolicyRecord | undefined {
  try {
    return certificates.policy(scope.vault, name);
  } catch {
    return undefined;
  }
}
