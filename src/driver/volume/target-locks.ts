// One operation per target at a time. A CSI call on a target (or volume id)
// that another CSI call is still working on is answered ABORTED, the CSI
// spec's "operation pending for volume" convention: kubelet retries it later,
// and by then the first call has finished. A CSI call waits for a rotation
// write in progress (short) instead; the reconciler skips a busy target and
// comes back on its next pass.
import { status } from "@grpc/grpc-js";
import { DriverError, ErrorType } from "../errors.ts";

interface Holder {
  kind: "call" | "refresh";
  operation: string;
  released: Promise<void>;
}

/** An operation's hold on targets: a refresh it asks for writes under it. */
export interface TargetHold {
  holds(targetPath: string): boolean;
}

export class TargetLease {
  private done = false;
  readonly keys: readonly string[];
  private readonly onRelease: () => void;
  constructor(keys: readonly string[], onRelease: () => void) {
    this.keys = keys;
    this.onRelease = onRelease;
  }

  holds(key: string): boolean {
    return !this.done && this.keys.includes(key);
  }

  release(): void {
    if (this.done) return;
    this.done = true;
    this.onRelease();
  }
}

/** A key as a message shows it: a volume id is kubelet's choice and unbounded on the wire. */
const shown = (key: string) => (key.length > 256 ? `${key.slice(0, 255)}…` : key);

export const targetKey = (targetPath: string) => `target:${targetPath}`;
export const volumeKey = (volumeId: string) => `volume:${volumeId}`;

export class TargetLocks {
  private readonly held = new Map<string, Holder>();

  /** For a CSI call: ABORTED if another call holds any key; waits out rotation writes. */
  async acquireForCall(keys: readonly string[], operation: string): Promise<TargetLease> {
    for (;;) {
      const busy = keys.map((k) => this.held.get(k)).filter((h): h is Holder => h !== undefined);
      const call = busy.find((h) => h.kind === "call");
      if (call) {
        throw new DriverError(
          status.ABORTED,
          ErrorType.OperationInProgress,
          `an operation (${call.operation}) is already in progress for ${keys.map((k) => shown(k.replace(/^[a-z]+:/, ""))).join(" / ")}; retry later`,
        );
      }
      if (busy.length === 0) return this.take(keys, "call", operation);
      await Promise.all(busy.map((h) => h.released));
    }
  }

  /** For the reconciler: the lease, or undefined if anything holds the target now. */
  tryAcquireForRefresh(keys: readonly string[]): TargetLease | undefined {
    if (keys.some((k) => this.held.has(k))) return undefined;
    return this.take(keys, "refresh", "rotation");
  }

  get size(): number {
    return this.held.size;
  }

  private take(keys: readonly string[], kind: Holder["kind"], operation: string): TargetLease {
    let release!: () => void;
    const holder: Holder = { kind, operation, released: new Promise<void>((r) => (release = r)) };
    for (const k of keys) this.held.set(k, holder);
    return new TargetLease(keys, () => {
      for (const k of keys) if (this.held.get(k) === holder) this.held.delete(k);
      release();
    });
  }
}
