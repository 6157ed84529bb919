// After a driver restart, rebuilds the record of mounted volumes from this
// node's SecretProviderClassPodStatus objects and the live tmpfs mounts, so
// rotation and sync resume for volumes mounted before the restart. The volume
// context is partial (no tokens) until kubelet's next republish.
import type { DriverContext } from "./context.ts";
import { requireKube } from "./context.ts";
import { NODE_NAME_LABEL } from "./kube-types.ts";
import type { MountedVolume } from "./mounted-volumes.ts";
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, SERVICE_ACCOUNT_NAME_KEY, SPC_NAME_KEY } from "./volume-attributes.ts";

export async function recoverMountedVolumes(ctx: DriverContext, jitter: () => number): Promise<number> {
  const kube = requireKube(ctx);
  const statuses = await kube.listPodStatuses(`${NODE_NAME_LABEL}=${ctx.options.nodeId}`);
  let recovered = 0;
  for (const st of statuses) {
    const target = st.status?.targetPath;
    if (!target || ctx.volumes.get(target)) continue;
    if ((await ctx.mounter.state(target).catch(() => "absent")) !== "mounted") continue;
    const owner = st.metadata.ownerReferences?.find((o) => o.kind === "Pod");
    const namespace = st.metadata.namespace!;
    if (!owner) continue;
    let serviceAccount = "";
    try {
      const pod = await kube.core.readNamespacedPod({ name: owner.name, namespace });
      if (pod.metadata?.uid !== owner.uid) continue;
      serviceAccount = pod.spec?.serviceAccountName ?? "default";
    } catch {
      continue;
    }
    const now = Date.now();
    const volume: MountedVolume = {
      targetPath: target,
      volumeId: "",
      pod: { name: owner.name, namespace, uid: owner.uid },
      spcName: st.status.secretProviderClassName,
      provider: "",
      volumeContext: {
        [SPC_NAME_KEY]: st.status.secretProviderClassName,
        [POD_NAME_KEY]: owner.name,
        [POD_NAMESPACE_KEY]: namespace,
        [POD_UID_KEY]: owner.uid,
        [SERVICE_ACCOUNT_NAME_KEY]: serviceAccount,
        "csi.storage.k8s.io/ephemeral": "true",
      },
      secrets: {},
      objectVersions: st.status.objects ?? [],
      lastRefresh: now,
      lastChange: now,
      failures: 0,
      contextUpdatedAt: 0,
      jitterMs: jitter(),
      syncPending: true,
      recovered: true,
    };
    ctx.volumes.set(volume);
    recovered++;
  }
  if (recovered > 0) ctx.logger.info({ volumes: recovered }, "recovered mounted volumes after restart");
  return recovered;
}
