/**
 * This node's own facts, as the KmeshNodeInfo publishes them: the Node's InternalIPs in Node
 * order, its pod CIDRs and its boot ID. The boot ID the kubelet reports is cross-checked with
 * the kernel's: right after a reboot the Node object can still carry the previous boot's, and
 * keys derived from it would not match what peers derive. Pure.
 */
import type { V1Node } from '@kubernetes/client-node';
import { nodeFactsFromNode } from '../../core/nodeinfo-claims.js';
import type { LocalNode } from '../../core/plan.js';
import { type Result, fail, ok } from '../../core/result.js';

export interface OwnNode {
  readonly uid: string;
  readonly local: LocalNode;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `bootIdFromKernel` is the content of /proc/sys/kernel/random/boot_id (or the file given with
 * --boot-id-file), `bootIdFile` its path for messages.
 */
export function ownNodeFrom(name: string, node: V1Node | undefined, bootIdFromKernel: string, bootIdFile: string): Result<OwnNode> {
  if (!node) return fail([{ field: `Node ${name}`, message: 'does not exist (is --node-name right? it defaults to $NODE_NAME)' }]);
  const facts = nodeFactsFromNode(node);
  const uid = node.metadata?.uid;
  if (!facts || !uid) return fail([{ field: `Node ${name}`, message: 'has no metadata.name or metadata.uid' }]);
  const errors = [];
  if (facts.internalIPs.length === 0) {
    errors.push({ field: `Node ${name} status.addresses`, message: 'has no InternalIP address; the kubelet reports them once it runs' });
  }
  const reported = node.status?.nodeInfo?.bootID ?? '';
  const kernel = bootIdFromKernel.trim().toLowerCase();
  if (!UUID.test(kernel)) {
    errors.push({ field: bootIdFile, message: `must hold the kernel's boot ID (a 36-character UUID), got ${kernel.length} characters` });
  } else if (reported.toLowerCase() !== kernel) {
    errors.push({
      field: `Node ${name} status.nodeInfo.bootID`,
      message: `is ${JSON.stringify(reported)} but this kernel's boot ID (${bootIdFile}) is ${kernel}: the kubelet has not reported this boot yet, or --node-name names another node`,
    });
  }
  if (errors.length > 0) return fail(errors);
  // Published as the kubelet reports it: Kmesh hashes the text as written into the pair keys.
  return ok({ uid, local: { name, addresses: facts.internalIPs, bootID: reported, podCIDRS: facts.podCIDRs } });
}
