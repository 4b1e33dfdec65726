/**
 * Where things are in a lab directory (root's, mode 0700):
 *
 *   lab.json            what the lab made (state.ts)       kubeconfig   the admin's
 *   control.sock        the API process's control channel  api/config.json  its configuration (tokens)
 *   logs/<process>.log  every process's output             tls/, stamp/  the webhook's certificates and stamp key
 *   webhook/kubeconfig  bpffs/<node>/ (a private bpffs: the node's pins)
 *   nodes/<node>/       kubeconfig, boot_id, secret/ (Secret volume), stamp-jwks/ (ConfigMap volume)
 *   pods/<pod>.sock     the pod agent's control socket
 */
import { join } from 'node:path';

export class LabLayout {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  get kubeconfig(): string {
    return join(this.dir, 'kubeconfig');
  }

  get controlSocket(): string {
    return join(this.dir, 'control.sock');
  }

  get apiConfig(): string {
    return join(this.dir, 'api', 'config.json');
  }

  get bpffs(): string {
    return join(this.dir, 'bpffs');
  }

  get tlsDir(): string {
    return join(this.dir, 'tls');
  }

  get stampKey(): string {
    return join(this.dir, 'stamp', 'stamp-key.jwk');
  }

  get stampJwks(): string {
    return join(this.dir, 'stamp', 'stamp-jwks.json');
  }

  get webhookKubeconfig(): string {
    return join(this.dir, 'webhook', 'kubeconfig');
  }

  /** Directories `up` creates before anything else. */
  get subdirectories(): string[] {
    return ['logs', 'api', 'nodes', 'pods', 'webhook', 'stamp'].map((d) => join(this.dir, d));
  }

  /** `key` is a process key (`api`, `node/node1`, `pod/pod-1-2`). */
  log(key: string): string {
    return join(this.dir, 'logs', `${key.replace('/', '-')}.log`);
  }

  node(name: string, file?: 'kubeconfig' | 'boot_id' | 'secret' | 'stamp-jwks'): string {
    return file === undefined ? join(this.dir, 'nodes', name) : join(this.dir, 'nodes', name, file);
  }

  /** The node plugin's pins (what --bpffs-root plus the node name makes). */
  pins(node: string): string {
    return join(this.bpffs, node);
  }

  podSocket(pod: string): string {
    return join(this.dir, 'pods', `${pod}.sock`);
  }
}
