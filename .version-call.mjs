import grpc from "@grpc/grpc-js";
import loader from "@grpc/proto-loader";
const def = loader.loadSync("/work/main/proto/provider.proto", { keepCase: true });
const pkg = grpc.loadPackageDefinition(def);
const svcName = Object.keys(def).find((k) => k.endsWith("CSIDriverProvider"));
const Ctor = svcName.split(".").reduce((o, k) => o[k], pkg);
const c = new Ctor("unix://" + process.argv[2], grpc.credentials.createInsecure());
c.Version({ version: "v1alpha1" }, (err, res) => { console.log(err?.message ?? JSON.stringify(res)); c.close(); });
