// Certificates, coupled as in Key Vault: every certificate version V of name N
// comes with key N/V (the certificate's key pair, managed) and secret N/V
// (managed, with `kid`): base64 PFX with an empty password for
// application/x-pkcs12, or PEM private key + chain for application/x-pem-file.
import { createPrivateKey, randomUUID, X509Certificate, type KeyObject } from "node:crypto";
import { curveOf, keyTypeOf, rsaKeySize, type CurveName, type KeyType } from "../crypto/json-web-key.ts";
import { decodePemBlocks, encodePem } from "../../shared/crypto/pem.ts";
import { readPfx, writePfx } from "../crypto/pkcs12.ts";
import { createCertificate, describeCertificate, generateCertificateChain, generateSelfSignedCertificate } from "../crypto/x509.ts";
import { BadParameterError, ConflictError, PendingCertificateNotFoundError } from "../errors/key-vault-errors.ts";
import type {
  CertificateOperationRecord,
  CertificatePolicyRecord,
  CertificateVersionRecord,
  DeletedObject,
  SecretVersionRecord,
  StoredObject,
  VaultRecord,
} from "../store/key-vault-store.ts";
import type { KeyService } from "./key-service.ts";
import { applyAttributeUpdate, newAttributes, newVersionId, nextCreated, nowSeconds, validateName, type AttributeInput, type VaultObjects } from "./vault-objects.ts";

export const CONTENT_TYPE_PKCS12 = "application/x-pkcs12";
export const CONTENT_TYPE_PEM = "application/x-pem-file";

/** Policy fields a request or seed may set; everything else gets Key Vault's defaults. */
export interface CertificatePolicyInput {
  contentType?: string;
  keyType?: KeyType | string;
  keySize?: number;
  curve?: CurveName | string;
  exportable?: boolean;
  reuseKey?: boolean;
  subject?: string;
  dnsNames?: string[];
  validityMonths?: number;
  issuerName?: string;
  ekus?: string[];
  keyUsage?: string[];
  lifetimeActions?: unknown[];
  generation?: "self" | "chain";
}

export interface ImportCertificateInput {
  /** PEM text (private key + certificates) or base64 of a PFX. */
  value: string;
  password?: string;
  policy?: CertificatePolicyInput;
  attributes?: AttributeInput;
  tags?: Record<string, string>;
  preserveCertOrder?: boolean;
  created?: number;
  /** Keep `created` as given even when it equals the previous version's (a seed reproducing Key Vault's one-second timestamps). */
  createdExact?: boolean;
}

export interface CreateCertificateInput {
  policy?: CertificatePolicyInput;
  attributes?: AttributeInput;
  tags?: Record<string, string>;
  preserveCertOrder?: boolean;
  /** How long the operation stays "inProgress" (default: completes at the first poll). */
  delayMs?: number;
  created?: number;
  /** Keep `created` as given even when it equals the previous version's (a seed reproducing Key Vault's one-second timestamps). */
  createdExact?: boolean;
}

export interface CertificateVersion {
  name: string;
  record: CertificateVersionRecord;
  policy: CertificatePolicyRecord | undefined;
}

interface PendingCreate {
  input: CreateCertificateInput;
}

export class CertificateService {
  readonly #objects: VaultObjects;
  readonly #keys: KeyService;
  readonly #pending = new Map<string, PendingCreate>();

  constructor(objects: VaultObjects, keys: KeyService) {
    this.#objects = objects;
    this.#keys = keys;
  }

  import(vault: VaultRecord, name: string, input: ImportCertificateInput): CertificateVersion {
    validateName("certificates", name);
    if (typeof input.value !== "string" || input.value === "") throw new BadParameterError("The certificate value ('value') is required.");
    const pem = input.value.includes("-----BEGIN ");
    const { privateKey, certificates } = pem ? parsePemBundle(input.value, input.password) : parsePfxBase64(input.value, input.password);
    const leafIndex = certificates.findIndex((der) => new X509Certificate(der).checkPrivateKey(privateKey));
    if (leafIndex < 0) throw new BadParameterError("The specified X.509 certificate content does not contain a certificate matching the private key.");
    const chain = input.preserveCertOrder ? certificates : [certificates[leafIndex]!, ...certificates.filter((_, i) => i !== leafIndex)];
    const contentType = input.policy?.contentType ?? (pem ? CONTENT_TYPE_PEM : CONTENT_TYPE_PKCS12);
    checkContentType(contentType);
    const existingPolicy = this.#objects.store.getCertificatePolicy(vault.name, name);
    const facts = describeCertificate(certificates[leafIndex]!);
    const policy = mergePolicy(existingPolicy ?? defaultPolicyFor(privateKey, facts, "Unknown"), { ...input.policy, contentType });
    return this.#addVersion(vault, name, privateKey, chain, policy, input);
  }

  /** Starts a self-signed creation; returns the pending operation (status inProgress). */
  create(vault: VaultRecord, name: string, input: CreateCertificateInput): CertificateOperationRecord {
    validateName("certificates", name);
    this.#objects.ensureNotDeleted(vault.name, "certificates", name);
    const issuerName = input.policy?.issuerName ?? "Self";
    if (issuerName.toLowerCase() !== "self") {
      throw new BadParameterError(`The issuer '${issuerName}' is not supported by the emulator; only 'Self' can create certificates.`);
    }
    const existingPolicy = this.#objects.store.getCertificatePolicy(vault.name, name);
    const policy = mergePolicy(existingPolicy ?? basePolicy(name), { ...input.policy, issuerName: "Self" });
    checkContentType(policy.contentType);
    if (!["RSA", "RSA-HSM", "EC", "EC-HSM"].includes(policy.keyProperties.kty)) {
      throw new BadParameterError(`The key type '${policy.keyProperties.kty}' is not supported for certificates.`);
    }
    this.#objects.store.putCertificatePolicy(vault.name, name, policy);
    const operation: CertificateOperationRecord = {
      requestId: randomUUID().replace(/-/g, ""),
      status: "inProgress",
      statusDetails: "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.",
      cancellationRequested: false,
      csr: "",
      completeAfter: Date.now() + (input.delayMs ?? 0),
    };
    this.#objects.store.putCertificateOperation(vault.name, name, operation);
    this.#pending.set(pendingKey(vault.name, name), { input });
    return operation;
  }

  /** Completes a due pending creation (generating the certificate); idempotent. */
  async settle(vault: VaultRecord, name: string): Promise<void> {
    const operation = this.#objects.store.getCertificateOperation(vault.name, name);
    const pending = this.#pending.get(pendingKey(vault.name, name));
    if (!operation || operation.status !== "inProgress" || !pending || Date.now() < operation.completeAfter) return;
    this.#pending.delete(pendingKey(vault.name, name));
    if (operation.cancellationRequested) {
      operation.status = "cancelled";
      return;
    }
    try {
      const created = await this.generate(vault, name, pending.input);
      operation.status = "completed";
      operation.statusDetails = undefined;
      operation.version = created.record.version;
    } catch (err) {
      operation.status = "failed";
      operation.error = { code: "CertificateCreationFailed", message: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Generates and stores a version from the stored (or given) policy right away. */
  async generate(vault: VaultRecord, name: string, input: CreateCertificateInput): Promise<CertificateVersion> {
    validateName("certificates", name);
    const stored = this.#objects.store.getCertificatePolicy(vault.name, name);
    const policy = mergePolicy(stored ?? basePolicy(name), input.policy ?? {});
    checkContentType(policy.contentType);
    const keyProps = policy.keyProperties;
    const previous = this.#objects.store.getObject(vault.name, "certificates", name)?.versions.at(-1);
    const ec = keyProps.kty === "EC" || keyProps.kty === "EC-HSM";
    const options = {
      subject: policy.subject,
      dnsNames: policy.dnsNames,
      validityMonths: policy.validityMonths,
      keyType: ec ? ("EC" as const) : ("RSA" as const),
      keySize: keyProps.keySize,
      curve: keyProps.curve as "P-256" | "P-384" | "P-521" | undefined,
      extendedKeyUsage: policy.ekus,
      keyUsage: policy.keyUsage,
    };
    let privateKey: KeyObject;
    let chain: Buffer[];
    if (policy.generation === "chain") {
      ({ privateKey, chain } = await generateCertificateChain(options));
    } else if (keyProps.reuseKey && previous) {
      privateKey = previous.privateKey;
      chain = [createCertificate({ ...options, extendedKeyUsage: options.extendedKeyUsage, publicKey: privateKey, selfSigningKey: privateKey })];
    } else {
      const generated = await generateSelfSignedCertificate(options);
      privateKey = generated.privateKey;
      chain = [generated.certificate];
    }
    return this.#addVersion(vault, name, privateKey, chain, policy, input);
  }

  operation(vault: VaultRecord, name: string): CertificateOperationRecord {
    validateName("certificates", name);
    const operation = this.#objects.store.getCertificateOperation(vault.name, name);
    if (!operation) throw new PendingCertificateNotFoundError(`Pending certificate not found: ${name}`);
    return operation;
  }

  cancelOperation(vault: VaultRecord, name: string): CertificateOperationRecord {
    const operation = this.operation(vault, name);
    if (operation.status === "inProgress") operation.cancellationRequested = true;
    return operation;
  }

  deleteOperation(vault: VaultRecord, name: string): CertificateOperationRecord {
    const operation = this.operation(vault, name);
    this.#objects.store.putCertificateOperation(vault.name, name, undefined);
    this.#pending.delete(pendingKey(vault.name, name));
    return operation;
  }

  get(vault: VaultRecord, name: string, version?: string): CertificateVersion {
    const { object, record } = this.#objects.resolve(vault.name, "certificates", name, version);
    return { name: object.name, record, policy: this.#objects.store.getCertificatePolicy(vault.name, name) };
  }

  versions(vault: VaultRecord, name: string): StoredObject<CertificateVersionRecord> | undefined {
    validateName("certificates", name);
    return this.#objects.store.getObject(vault.name, "certificates", name);
  }

  list(vault: VaultRecord): StoredObject<CertificateVersionRecord>[] {
    return this.#objects.store.listObjects(vault.name, "certificates");
  }

  /** Updates attributes/tags of a version; enabling/disabling carries over to its key and secret. */
  update(vault: VaultRecord, name: string, version: string | undefined, update: { attributes?: AttributeInput; tags?: Record<string, string> }): CertificateVersion {
    const { object, record } = this.#objects.resolve(vault.name, "certificates", name, version);
    applyAttributeUpdate(record.attributes, update.attributes);
    if (update.tags !== undefined) record.tags = { ...update.tags };
    if (update.attributes?.enabled !== undefined) {
      for (const kind of ["keys", "secrets"] as const) {
        const sibling = this.#objects.store.getObject(vault.name, kind, name)?.versions.find((v) => v.version === record.version);
        if (sibling) applyAttributeUpdate(sibling.attributes, { enabled: update.attributes.enabled });
      }
    }
    return { name: object.name, record, policy: this.#objects.store.getCertificatePolicy(vault.name, name) };
  }

  /** The stored policy (also while a creation is pending); 404 if there is no such certificate. */
  policy(vault: VaultRecord, name: string): CertificatePolicyRecord {
    validateName("certificates", name);
    const stored = this.#objects.store.getCertificatePolicy(vault.name, name);
    if (stored) return stored;
    this.#objects.resolve(vault.name, "certificates", name);
    return basePolicy(name);
  }

  updatePolicy(vault: VaultRecord, name: string, input: CertificatePolicyInput): CertificatePolicyRecord {
    const current = this.policy(vault, name);
    const policy = mergePolicy(current, input);
    checkContentType(policy.contentType);
    this.#objects.store.putCertificatePolicy(vault.name, name, policy);
    return policy;
  }

  /** Deletes the certificate with its managed key and secret. */
  delete(vault: VaultRecord, name: string): DeletedObject<CertificateVersionRecord> {
    const deleted = this.#objects.delete(vault, "certificates", name);
    for (const kind of ["keys", "secrets"] as const) {
      const sibling = this.#objects.store.getObject(vault.name, kind, name);
      if (sibling && sibling.versions.some((v) => v.managed)) this.#objects.delete(vault, kind, name);
    }
    this.#objects.store.putCertificateOperation(vault.name, name, undefined);
    return deleted;
  }

  recover(vault: VaultRecord, name: string): StoredObject<CertificateVersionRecord> {
    const recovered = this.#objects.recover(vault.name, "certificates", name);
    for (const kind of ["keys", "secrets"] as const) {
      if (this.#objects.store.getDeleted(vault.name, kind, name)) this.#objects.recover(vault.name, kind, name);
    }
    return recovered;
  }

  purge(vault: VaultRecord, name: string): void {
    this.#objects.purge(vault.name, "certificates", name);
    for (const kind of ["keys", "secrets"] as const) this.#objects.store.removeDeleted(vault.name, kind, name);
    this.#objects.store.putCertificatePolicy(vault.name, name, undefined);
  }

  listDeleted(vault: VaultRecord): DeletedObject<CertificateVersionRecord>[] {
    return this.#objects.store.listDeleted(vault.name, "certificates");
  }

  getDeleted(vault: VaultRecord, name: string): DeletedObject<CertificateVersionRecord> {
    return this.#objects.getDeleted(vault.name, "certificates", name);
  }

  /** The PEM rendering (PKCS#8 key, then the chain) of a certificate version. */
  renderPem(record: CertificateVersionRecord): string {
    return renderPem(record.privateKey, record.chain);
  }

  /** The certificate version behind a certificate-backed secret version. */
  certificateFor(vault: VaultRecord, name: string, version: string): CertificateVersionRecord | undefined {
    return this.#objects.store.getObject(vault.name, "certificates", name)?.versions.find((v) => v.version === version);
  }

  #addVersion(
    vault: VaultRecord,
    name: string,
    privateKey: KeyObject,
    chain: Buffer[],
    policy: CertificatePolicyRecord,
    input: { attributes?: AttributeInput; tags?: Record<string, string>; preserveCertOrder?: boolean; created?: number; createdExact?: boolean },
  ): CertificateVersion {
    for (const kind of ["certificates", "keys", "secrets"] as const) this.#objects.ensureNotDeleted(vault.name, kind, name);
    const existing = this.#objects.store.getObject(vault.name, "certificates", name);
    const unmanagedSecret = this.#objects.store.getObject(vault.name, "secrets", name)?.versions.some((v) => !v.managed);
    if (!existing && unmanagedSecret) {
      throw new ConflictError(`A secret named ${name} already exists and is not managed by a certificate; choose another certificate name.`);
    }
    const facts = describeCertificate(chain[0]!);
    const version = newVersionId();
    const created = nextCreated(existing, input.created, input.createdExact);
    const validity = { enabled: input.attributes?.enabled ?? true, nbf: facts.notBefore, exp: facts.notAfter };
    const record: CertificateVersionRecord = {
      version,
      chain,
      privateKey,
      contentType: policy.contentType,
      attributes: newAttributes(vault, created, validity),
    };
    if (input.tags) record.tags = { ...input.tags };
    if (input.preserveCertOrder !== undefined) record.preserveCertOrder = input.preserveCertOrder;

    this.#keys.addManaged(vault, name, version, privateKey, created, { ...validity, exportable: policy.keyProperties.exportable });
    const secret: SecretVersionRecord = {
      version,
      value: policy.contentType === CONTENT_TYPE_PEM ? renderPem(privateKey, chain) : writePfx({ privateKey, certificates: chain }).toString("base64"),
      contentType: policy.contentType,
      managed: true,
      certificateBacked: true,
      attributes: newAttributes(vault, created, validity),
    };
    if (input.tags) secret.tags = { ...input.tags };
    this.#objects.addVersion(vault, "secrets", name, secret);
    this.#objects.addVersion(vault, "certificates", name, record);
    policy.updated = nowSeconds();
    this.#objects.store.putCertificatePolicy(vault.name, name, policy);
    return { name: existing?.name ?? name, record, policy };
  }
}

function pendingKey(vault: string, name: string): string {
  return `${vault.toLowerCase()}/${name.toLowerCase()}`;
}

function checkContentType(contentType: string): void {
  if (contentType !== CONTENT_TYPE_PKCS12 && contentType !== CONTENT_TYPE_PEM) {
    throw new BadParameterError(`The content type '${contentType}' is not supported. Use ${CONTENT_TYPE_PKCS12} or ${CONTENT_TYPE_PEM}.`);
  }
}

export function renderPem(privateKey: KeyObject, chain: readonly Buffer[]): string {
  const key = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  return key + chain.map((der) => encodePem("CERTIFICATE", der)).join("");
}

function parsePemBundle(text: string, password?: string): { privateKey: KeyObject; certificates: Buffer[] } {
  const blocks = decodePemBlocks(text);
  const certificates = blocks.filter((b) => b.type === "CERTIFICATE").map((b) => b.bytes);
  const keyBlocks = blocks.filter((b) => b.type.endsWith("PRIVATE KEY"));
  if (certificates.length === 0) {
    throw new BadParameterError("The specified PEM X.509 certificate content is in an unexpected format. Please check if certificate is in valid PEM format.");
  }
  if (keyBlocks.length === 0) {
    throw new BadParameterError("Private key is not specified in the specified X.509 PEM certificate content. Please specify private key in the X.509 PEM certificate content.");
  }
  try {
    const block = keyBlocks[0]!;
    return { privateKey: createPrivateKey({ key: encodePem(block.type, block.bytes), passphrase: password }), certificates };
  } catch (err) {
    throw new BadParameterError(`The private key in the PEM content could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parsePfxBase64(value: string, password?: string): { privateKey: KeyObject; certificates: Buffer[] } {
  const compact = value.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw new BadParameterError("The certificate content is neither PEM nor base64-encoded PKCS#12 (PFX).");
  }
  let parsed;
  try {
    parsed = readPfx(Buffer.from(compact, "base64"), password ?? "");
  } catch (err) {
    throw new BadParameterError(`Certificate import failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (parsed.privateKeys.length === 0) throw new BadParameterError("The specified PKCS#12 content does not contain a private key.");
  if (parsed.certificates.length === 0) throw new BadParameterError("The specified PKCS#12 content does not contain a certificate.");
  return { privateKey: parsed.privateKeys[0]!, certificates: parsed.certificates };
}

function basePolicy(name: string): CertificatePolicyRecord {
  const now = nowSeconds();
  return {
    keyProperties: { exportable: true, kty: "RSA", keySize: 2048, reuseKey: false },
    contentType: CONTENT_TYPE_PKCS12,
    subject: `CN=${name}`,
    dnsNames: [],
    validityMonths: 12,
    issuerName: "Self",
    ekus: ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
    keyUsage: ["digitalSignature", "keyEncipherment"],
    lifetimeActions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: "AutoRenew" } }],
    created: now,
    updated: now,
  };
}

function defaultPolicyFor(privateKey: KeyObject, facts: ReturnType<typeof describeCertificate>, issuerName: string): CertificatePolicyRecord {
  const policy = basePolicy("imported");
  const kty = keyTypeOf(privateKey);
  policy.keyProperties = { exportable: true, kty, reuseKey: false };
  if (kty === "RSA") policy.keyProperties.keySize = rsaKeySize(privateKey);
  else policy.keyProperties.curve = curveOf(privateKey);
  policy.subject = facts.subject;
  policy.dnsNames = facts.dnsNames;
  policy.validityMonths = Math.max(1, Math.round((facts.notAfter - facts.notBefore) / (30.44 * 86400)));
  policy.issuerName = issuerName;
  policy.lifetimeActions = [{ trigger: { lifetime_percentage: 80 }, action: { action_type: "EmailContacts" } }];
  return policy;
}

function mergePolicy(base: CertificatePolicyRecord, input: CertificatePolicyInput): CertificatePolicyRecord {
  const policy: CertificatePolicyRecord = structuredClone(base);
  if (input.contentType !== undefined) policy.contentType = input.contentType;
  if (input.keyType !== undefined) {
    policy.keyProperties.kty = input.keyType as KeyType;
    if (input.keyType.startsWith("EC")) delete policy.keyProperties.keySize;
    else delete policy.keyProperties.curve;
  }
  if (input.keySize !== undefined) policy.keyProperties.keySize = input.keySize;
  if (input.curve !== undefined) policy.keyProperties.curve = input.curve;
  if (input.exportable !== undefined) policy.keyProperties.exportable = input.exportable;
  if (input.reuseKey !== undefined) policy.keyProperties.reuseKey = input.reuseKey;
  if (input.subject !== undefined) policy.subject = input.subject;
  if (input.dnsNames !== undefined) policy.dnsNames = [...input.dnsNames];
  if (input.validityMonths !== undefined) policy.validityMonths = input.validityMonths;
  if (input.issuerName !== undefined) policy.issuerName = input.issuerName;
  if (input.ekus !== undefined) policy.ekus = [...input.ekus];
  if (input.keyUsage !== undefined) policy.keyUsage = [...input.keyUsage];
  if (input.lifetimeActions !== undefined) policy.lifetimeActions = input.lifetimeActions;
  if (input.generation !== undefined) policy.generation = input.generation;
  if (policy.keyProperties.kty.startsWith("EC") && !policy.keyProperties.curve) policy.keyProperties.curve = "P-256";
  return policy;
}
