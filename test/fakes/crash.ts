/**
 * A node-plugin process being killed, as the fakes simulate it. Several fakes share one
 * CrashSwitch (the ports of one process): when any of them "crashes" mid-call, every later call
 * on any of them rejects with SimulatedCrash and changes nothing, as nothing runs in a dead
 * process. What the fakes hold (the kernel's tables, the pinned maps) stays, as it would on a
 * real node. `restart()` stands for the next process attaching to the same kernel and maps.
 */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

export class CrashSwitch {
  #where: string | undefined;

  get crashed(): boolean {
    return this.#where !== undefined;
  }

  /** The process dies at `where`; returns the error the interrupted call rejects with. */
  trip(where: string): SimulatedCrash {
    this.#where = where;
    return new SimulatedCrash(`process killed ${where}`);
  }

  /** First thing every fake port method does: a dead process cannot make calls. */
  check(operation: string): void {
    if (this.#where !== undefined) throw new SimulatedCrash(`${operation} not run: the process was killed ${this.#where}`);
  }

  /** A new process starts; the fakes serve calls again, with what they held when it died. */
  restart(): void {
    this.#where = undefined;
  }
}
