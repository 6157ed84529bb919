// Identity binding's names: the token proxy's server name from a cluster id
// (the expected values were computed with Go's crypto/sha256 and
// encoding/base32.HexEncoding without padding, as upstream's provider does),
// and the cluster id from an API server certificate's names.
import { describe, expect, it } from "vitest";
import { base32Hex, clusterCertificateName, clusterIdFromNames, tokenProxyServerName } from "../../src/shared/identity-binding.ts";

describe("identity binding names", () => {
  it("derives the token proxy's server name as upstream does", () => {
    expect(tokenProxyServerName("abc123")).toBe("avogudkohgdatdl5h3uisa3it85na3oqte6ir8heubtqsv4hgo1qg.ests.aks");
    expect(tokenProxyServerName("6756a1e3f2b9c40001a2b3c4")).toBe("a8qs4li5ldqhragfvd1cercipmtu9rkrn412kimd0sk94ajo3857g.ests.aks");
  });

  it("encodes base32 with the extended hex alphabet, unpadded (RFC 4648 test vectors)", () => {
    const cases: Array<[string, string]> = [
      ["", ""],
      ["f", "CO"],
      ["fo", "CPNG"],
      ["foo", "CPNMU"],
      ["foob", "CPNMUOG"],
      ["fooba", "CPNMUOJ1"],
      ["foobar", "CPNMUOJ1E8"],
    ];
    for (const [input, encoded] of cases) expect(base32Hex(Buffer.from(input))).toBe(encoded);
  });

  it("finds the cluster id in the hcp-kubernetes.<id>.svc.cluster.local name only", () => {
    expect(clusterCertificateName("abc123")).toBe("hcp-kubernetes.abc123.svc.cluster.local");
    expect(clusterIdFromNames(["kubernetes", "kubernetes.default.svc.cluster.local", "hcp-kubernetes.abc123.svc.cluster.local"])).toBe("abc123");
    expect(clusterIdFromNames(["kubernetes.default.svc.cluster.local", "hcp-kubernetes..svc.cluster.local", "hcp-kubernetes.x.svc"])).toBeUndefined();
    expect(clusterIdFromNames([])).toBeUndefined();
  });
});
