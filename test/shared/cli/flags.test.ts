import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "../../../src/shared/cli/duration.ts";
import { parseEndpoint, parseListenAddress } from "../../../src/shared/grpc/endpoint.ts";
import { parseFlags } from "../../../src/shared/cli/flags.ts";

describe("Go durations", () => {
  it.each([
    ["2m", 120_000],
    ["30s", 30_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["1.5s", 1500],
    ["0", 0],
  ])("%s", (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(["", "2", "2 m", "m", "1d"])("rejects %j", (text) => expect(() => parseDuration(text)).toThrow(`invalid duration "${text}"`));
  it("formats", () => expect(formatDuration(5_400_500)).toBe("1h30m0.5s"));
});

describe("endpoints", () => {
  it("makes unix paths absolute as upstream does", () => {
    expect(parseEndpoint("unix://tmp/csi.sock")).toEqual({ kind: "unix", path: "/tmp/csi.sock" });
    expect(parseEndpoint("unix:///csi/csi.sock")).toEqual({ kind: "unix", path: "/csi/csi.sock" });
    expect(parseEndpoint("TCP://127.0.0.1:10000")).toEqual({ kind: "tcp", address: "127.0.0.1:10000" });
    expect(() => parseEndpoint("/csi.sock")).toThrow("invalid endpoint: /csi.sock");
  });
  it("parses listen addresses", () => {
    expect(parseListenAddress(":8095")).toEqual({ host: undefined, port: 8095 });
    expect(parseListenAddress("[::1]:80")).toEqual({ host: "::1", port: 80 });
    expect(() => parseListenAddress("8095")).toThrow('invalid listen address "8095"');
  });
});

describe("flags", () => {
  const specs = { name: { kind: "string", default: "x", usage: "" }, on: { kind: "bool", default: false, usage: "" } } as const;
  it("takes -x v, --x=v, bare bools and ignored klog flags", () => {
    expect(parseFlags(["-name", "y", "--on", "-v", "5"], specs as never, ["v"])).toEqual({ name: "y", on: true });
    expect(parseFlags(["--on=false", "--name="], specs as never)).toEqual({ name: "", on: false });
  });
  it("rejects positional arguments and missing values", () => {
    expect(() => parseFlags(["extra"], specs as never)).toThrow('unexpected argument "extra"');
    expect(() => parseFlags(["--name"], specs as never)).toThrow("flag --name needs a value");
  });
});
