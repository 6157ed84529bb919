import { defineConfig } from "vitest/config";

// Two projects: "unit" (everything that needs no Kubernetes API server) and
// "cluster" (files named *.cluster.test.ts), which share one real
// kube-apiserver + etcd started once by the global setup. Files run one at a
// time because integration tests use real mounts and fixed ports.
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
          exclude: ["test/**/*.cluster.test.ts", "node_modules/**"],
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
    ],
  },
});
