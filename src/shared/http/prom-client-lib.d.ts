// prom-client declares only its index; src/shared/http/prometheus.ts imports some
// of its files directly and gives each the type of the index's export of the
// same name.
declare module "prom-client/lib/*.js" {
  const exported: unknown;
  export default exported;
}
