/**
 * One ordered record of what the fakes were asked to do, shared by the fakes of one test, so a
 * test can assert the order across ports (e.g. "the maps were updated before any removal").
 * Entries are short strings such as `xfrm:addState`, `xfrm:deleteState ESRCH`,
 * `maps:setPeerMarks`; a test may add its own markers with `record`.
 */
export class Timeline {
  readonly #events: string[] = [];

  record(event: string): void {
    this.#events.push(event);
  }

  get events(): readonly string[] {
    return [...this.#events];
  }

  clear(): void {
    this.#events.length = 0;
  }
}
