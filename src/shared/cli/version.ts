// Build identity, stamped into bundles at build time through environment
// variables; "local-dev" when running from sources.
export const BUILD_VERSION = process.env.SSCSI_BUILD_VERSION ?? "v0.1.0";
export const GIT_COMMIT = process.env.SSCSI_GIT_COMMIT ?? "local-dev";
export const BUILD_DATE = process.env.SSCSI_BUILD_DATE ?? "";
