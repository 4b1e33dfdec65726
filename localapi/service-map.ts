/**
 * Stands in for cluster DNS and Service routing: webhook clientConfig.service references are
 * turned into the local address a test server really listens on.
 */

export interface ServiceRef {
  namespace: string;
  name: string;
  /** Service port; 443 when the webhook configuration leaves it out. */
  port: number;
}

export interface ServiceTarget {
  host: string;
  port: number;
}

/** Fallback lookup for references not registered with `mapService`. */
export type ServiceResolver = (service: ServiceRef) => ServiceTarget | undefined;

export class ServiceMap {
  private readonly entries = new Map<string, ServiceTarget>();
  private readonly fallback: ServiceResolver | undefined;

  constructor(fallback?: ServiceResolver) {
    this.fallback = fallback;
  }

  private static key(s: ServiceRef): string {
    return `${s.namespace}/${s.name}:${s.port}`;
  }

  set(service: ServiceRef, target: ServiceTarget): void {
    this.entries.set(ServiceMap.key(service), target);
  }

  delete(service: ServiceRef): void {
    this.entries.delete(ServiceMap.key(service));
  }

  resolve(service: ServiceRef): ServiceTarget | undefined {
    return this.entries.get(ServiceMap.key(service)) ?? this.fallback?.(service);
  }
}
