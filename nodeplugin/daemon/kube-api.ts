/**
 * Everything the node plugin asks of the Kubernetes API, in one thin adapter over
 * @kubernetes/client-node: its own Node (get), its own KmeshNodeInfo (create, replace,
 * replace status, delete), Events about its Node, and informers over KmeshNodeInfos, its pods
 * and Namespaces. It never reads Secrets: the key comes from the mounted volume.
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Namespace,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KMESH_NAMESPACE, KNI_GROUP, KNI_PLURAL, KNI_VERSION } from '../../core/constants.js';
import { SupervisedInformer } from '../../lib/supervised-informer.js';

/** A KmeshNodeInfo as stored (spec not trusted; status ours). */
export interface NodeInfoObject extends KubernetesObject {
  spec?: unknown;
  status?: { conditions?: unknown[] } & Record<string, unknown>;
}

/** Namespace of the Events the plugin writes about its Node (where the kubelet writes them). */
export const EVENT_NAMESPACE = 'default';

const kni = { group: KNI_GROUP, version: KNI_VERSION, namespace: KMESH_NAMESPACE, plural: KNI_PLURAL } as const;

export interface InformerTuning {
  readonly relistIntervalMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class NodePluginApi {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #logger: Logger;
  readonly #tuning: InformerTuning;

  constructor(kc: KubeConfig, logger: Logger, tuning: InformerTuning = {}) {
    this.#kc = kc;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#logger = logger;
    this.#tuning = tuning;
  }

  /** The Node, or undefined when it does not exist. */
  async readNode(name: string): Promise<V1Node | undefined> {
    return notFoundAsUndefined(this.#core.readNode({ name }));
  }

  async readNodeInfo(name: string): Promise<NodeInfoObject | undefined> {
    return notFoundAsUndefined(this.#custom.getNamespacedCustomObject({ ...kni, name }) as Promise<NodeInfoObject>);
  }

  async createNodeInfo(body: NodeInfoObject): Promise<NodeInfoObject> {
    return (await this.#custom.createNamespacedCustomObject({ ...kni, body })) as NodeInfoObject;
  }

  /** Conditional on body.metadata.resourceVersion: a stale one is a 409. */
  async replaceNodeInfo(body: NodeInfoObject): Promise<NodeInfoObject> {
    return (await this.#custom.replaceNamespacedCustomObject({ ...kni, name: body.metadata?.name ?? '', body })) as NodeInfoObject;
  }

  async replaceNodeInfoStatus(body: NodeInfoObject): Promise<NodeInfoObject> {
    return (await this.#custom.replaceNamespacedCustomObjectStatus({ ...kni, name: body.metadata?.name ?? '', body })) as NodeInfoObject;
  }

  /** Delete our KmeshNodeInfo; `uid` makes it a precondition (never delete a successor's). */
  async deleteNodeInfo(name: string, uid?: string): Promise<boolean> {
    try {
      await this.#custom.deleteNamespacedCustomObject({ ...kni, name, ...(uid ? { body: { preconditions: { uid } } } : {}) });
      return true;
    } catch (err: unknown) {
      if (err instanceof ApiException && err.code === 404) return false;
      throw err;
    }
  }

  async createEvent(body: CoreV1Event): Promise<void> {
    await this.#core.createNamespacedEvent({ namespace: EVENT_NAMESPACE, body });
  }

  nodeInfoInformer(onChange: () => void): SupervisedInformer<NodeInfoObject> {
    return new SupervisedInformer<NodeInfoObject>({
      ...this.#tuning,
      kubeConfig: this.#kc,
      path: `/apis/${KNI_GROUP}/${KNI_VERSION}/namespaces/${KMESH_NAMESPACE}/${KNI_PLURAL}`,
      list: async () => (await this.#custom.listNamespacedCustomObject(kni)) as KubernetesListObject<NodeInfoObject>,
      what: 'KmeshNodeInfo',
      logger: this.#logger,
      onChange,
    });
  }

  /** Pods scheduled on `nodeName` (field selector, as the kubelet watches them). */
  podInformer(nodeName: string, onChange: () => void): SupervisedInformer<V1Pod> {
    const fieldSelector = `spec.nodeName=${nodeName}`;
    return new SupervisedInformer<V1Pod>({
      ...this.#tuning,
      kubeConfig: this.#kc,
      path: '/api/v1/pods',
      fieldSelector,
      list: () => this.#core.listPodForAllNamespaces({ fieldSelector }),
      what: 'Pod',
      logger: this.#logger,
      onChange,
    });
  }

  namespaceInformer(onChange: () => void): SupervisedInformer<V1Namespace> {
    return new SupervisedInformer<V1Namespace>({
      ...this.#tuning,
      kubeConfig: this.#kc,
      path: '/api/v1/namespaces',
      list: () => this.#core.listNamespace(),
      what: 'Namespace',
      logger: this.#logger,
      onChange,
    });
  }
}

async function notFoundAsUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err: unknown) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

/** HTTP status of a failed API call, undefined when the server was not reached. */
export function apiCode(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}
