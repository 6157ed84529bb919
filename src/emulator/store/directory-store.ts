// The Entra ID side: app registrations (service principals), managed
// identities, Key Vault role assignments and the Kubernetes service-account
// token issuers trusted for workload identity federation.
import type { KeyObject } from "node:crypto";

export interface FederatedCredential {
  issuer: string;
  subject: string;
  audiences: string[];
}

interface PrincipalBase {
  displayName: string;
  tenantId: string;
  /** Application (client) id. */
  clientId: string;
  /** Service principal object id (the "oid" claim). */
  objectId: string;
}

export interface ApplicationRecord extends PrincipalBase {
  kind: "application";
  clientSecrets: string[];
  federatedCredentials: FederatedCredential[];
}

export interface ManagedIdentityRecord extends PrincipalBase {
  kind: "managedIdentity";
  /** ARM resource id (msi_res_id). */
  resourceId: string;
  /** The VM's system-assigned identity (at most one). */
  systemAssigned: boolean;
}

export type PrincipalRecord = ApplicationRecord | ManagedIdentityRecord;

export interface RoleAssignmentRecord {
  principalObjectId: string;
  /** Vault name, or "*" for every vault. */
  vault: string;
  /** Built-in role name, or "custom". */
  roleName: string;
  /** Data actions granted (wildcards allowed). */
  dataActions: string[];
}

export interface ServiceAccountIssuerRecord {
  issuer: string;
  /** Public keys that sign the issuer's tokens; empty means signatures are not checked. */
  keys: Array<{ kid?: string; key: KeyObject }>;
}

export interface DirectoryStore {
  putPrincipal(principal: PrincipalRecord): void;
  /** By client id, object id or display name (case-insensitive). */
  findPrincipal(reference: string): PrincipalRecord | undefined;
  getApplication(tenantId: string, clientId: string): ApplicationRecord | undefined;
  listPrincipals(): PrincipalRecord[];
  findManagedIdentity(query: { clientId?: string; objectId?: string; resourceId?: string }): ManagedIdentityRecord | undefined;
  systemAssignedIdentity(): ManagedIdentityRecord | undefined;
  knownTenants(): Set<string>;
  addTenant(tenantId: string): void;

  addRoleAssignment(assignment: RoleAssignmentRecord): void;
  roleAssignmentsFor(principalObjectId: string, vault: string): RoleAssignmentRecord[];

  putServiceAccountIssuer(issuer: ServiceAccountIssuerRecord): void;
  getServiceAccountIssuer(issuer: string): ServiceAccountIssuerRecord | undefined;
}
