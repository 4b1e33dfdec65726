/** Lookup over the configured kinds, by URL coordinates, by apiVersion/kind, or by a short reference. */

import { apiVersionOf, type ResourceType } from './resource-type.js';

export class ResourceTable {
  readonly all: readonly ResourceType[];

  constructor(resources: readonly ResourceType[]) {
    const seen = new Set<string>();
    for (const rt of resources) {
      const key = `${rt.plural}.${rt.group}`;
      if (seen.has(key)) throw new Error(`local API: resource ${key} defined twice`);
      seen.add(key);
    }
    this.all = resources;
  }

  /** By URL coordinates: /apis/<group>/<version>/<plural>. */
  lookup(group: string, version: string, plural: string): ResourceType | undefined {
    return this.all.find((rt) => rt.group === group && rt.version === version && rt.plural === plural);
  }

  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.all.find((rt) => apiVersionOf(rt) === apiVersion && rt.kind === kind);
  }

  /**
   * Accepts what a test would naturally write: "secrets", "secret", "Secret",
   * "kmeshnodeinfos.kmesh.net". Throws when the reference is unknown or ambiguous.
   */
  resolve(ref: string): ResourceType {
    const matches = this.all.filter((rt) =>
      [rt.plural, rt.singular, rt.kind, `${rt.plural}.${rt.group}`, ...rt.shortNames].includes(ref),
    );
    const [only] = matches;
    if (matches.length !== 1 || only === undefined) {
      throw new Error(`local API: resource reference "${ref}" matches ${matches.length} kinds`);
    }
    return only;
  }

  groups(): string[] {
    return [...new Set(this.all.map((rt) => rt.group))];
  }

  versionsOf(group: string): string[] {
    return [...new Set(this.all.filter((rt) => rt.group === group).map((rt) => rt.version))];
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all.filter((rt) => rt.group === group && rt.version === version);
  }
}
