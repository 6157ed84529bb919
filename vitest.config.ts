import { defineConfig } from "vitest/config";

// Three projects: "unit" (everything that needs no Kubernetes API server),
// "cluster" (files named *.cluster.test.ts), which share one real
// kube-apiserver + etcd started once by the global setup, and "node" (files
// named *.node.test.ts), each of which starts its own cluster and a real node
// (containerd + kubelet, test/harness/node.ts). Files run one at a time
// because integration tests use real mounts and a machine runs one kubelet.
export default defineConfig({
  test: {
    fileParallelism: false,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    reporters: ["default", ["json", { outputFile: ".test-results/vitest.json" }]],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.cluster.test.ts", "test/**/*.node.test.ts", "node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "cluster",
          include: ["test/**/*.cluster.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "node",
          include: ["test/**/*.node.test.ts"],
        },
      },
    ],
  },
});
