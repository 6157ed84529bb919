// Refuses to go on under a Node older than 24: the project runs TypeScript
// sources directly through Node's type stripping, which older releases lack
// or hide behind a flag. `npm test` runs this first so the failure is one
// clear line instead of a syntax error deep in a test.
const MINIMUM_MAJOR = 24;

const major = Number.parseInt(process.versions.node.split(".")[0] ?? "0", 10);
if (!Number.isFinite(major) || major < MINIMUM_MAJOR) {
  console.error(
    `check-node: Node ${process.versions.node} is too old; this project needs Node ${MINIMUM_MAJOR} or newer ` +
      `(it runs .ts files directly). The project's own copy is in node_modules/.bin: ` +
      `export PATH="$PWD/node_modules/.bin:$PATH"`,
  );
  process.exit(1);
}
