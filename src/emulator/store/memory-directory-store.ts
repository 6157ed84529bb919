// In-memory DirectoryStore.
import type {
  ApplicationRecord,
  DirectoryStore,
  ManagedIdentityRecord,
  PrincipalRecord,
  RoleAssignmentRecord,
  ServiceAccountIssuerRecord,
} from "./directory-store.ts";

export class MemoryDirectoryStore implements DirectoryStore {
  readonly #principals = new Map<string, PrincipalRecord>();
  readonly #assignments: RoleAssignmentRecord[] = [];
  readonly #issuers = new Map<string, ServiceAccountIssuerRecord>();
  readonly #tenants = new Set<string>();

  putPrincipal(principal: PrincipalRecord): void {
    for (const [key, existing] of this.#principals) {
      if (existing.clientId === principal.clientId || existing.objectId === principal.objectId) this.#principals.delete(key);
    }
    if (principal.kind === "managedIdentity" && principal.systemAssigned) {
      for (const existing of this.#principals.values()) {
        if (existing.kind === "managedIdentity") existing.systemAssigned = false;
      }
    }
    this.#principals.set(principal.objectId, principal);
    this.#tenants.add(principal.tenantId.toLowerCase());
  }

  findPrincipal(reference: string): PrincipalRecord | undefined {
    const ref = reference.toLowerCase();
    for (const principal of this.#principals.values()) {
      if (principal.clientId.toLowerCase() === ref || principal.objectId.toLowerCase() === ref) return principal;
    }
    for (const principal of this.#principals.values()) {
      if (principal.displayName.toLowerCase() === ref) return principal;
    }
    return undefined;
  }

  getApplication(tenantId: string, clientId: string): ApplicationRecord | undefined {
    for (const principal of this.#principals.values()) {
      if (
        principal.kind === "application" &&
        principal.clientId.toLowerCase() === clientId.toLowerCase() &&
        principal.tenantId.toLowerCase() === tenantId.toLowerCase()
      ) {
        return principal;
      }
    }
    return undefined;
  }

  listPrincipals(): PrincipalRecord[] {
    return [...this.#principals.values()];
  }

  findManagedIdentity(query: { clientId?: string; objectId?: string; resourceId?: string }): ManagedIdentityRecord | undefined {
    for (const principal of this.#principals.values()) {
      if (principal.kind !== "managedIdentity") continue;
      if (query.clientId && principal.clientId.toLowerCase() === query.clientId.toLowerCase()) return principal;
      if (query.objectId && principal.objectId.toLowerCase() === query.objectId.toLowerCase()) return principal;
      if (query.resourceId && principal.resourceId.toLowerCase() === query.resourceId.toLowerCase()) return principal;
    }
    return undefined;
  }

  systemAssignedIdentity(): ManagedIdentityRecord | undefined {
    for (const principal of this.#principals.values()) {
      if (principal.kind === "managedIdentity" && principal.systemAssigned) return principal;
    }
    return undefined;
  }

  knownTenants(): Set<string> {
    return new Set(this.#tenants);
  }

  addTenant(tenantId: string): void {
    this.#tenants.add(tenantId.toLowerCase());
  }

  addRoleAssignment(assignment: RoleAssignmentRecord): void {
    this.#assignments.push(assignment);
  }

  roleAssignmentsFor(principalObjectId: string, vault: string): RoleAssignmentRecord[] {
    return this.#assignments.filter(
      (a) => a.principalObjectId === principalObjectId && (a.vault === "*" || a.vault.toLowerCase() === vault.toLowerCase()),
    );
  }

  putServiceAccountIssuer(issuer: ServiceAccountIssuerRecord): void {
    this.#issuers.set(normalizeIssuer(issuer.issuer), issuer);
  }

  getServiceAccountIssuer(issuer: string): ServiceAccountIssuerRecord | undefined {
    return this.#issuers.get(normalizeIssuer(issuer));
  }
}

function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, "");
}
