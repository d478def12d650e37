/** One timeout slot: pending or not, never two at once. Its handle is dropped before `fn` runs. */
export class Timer {
  private handle: ReturnType<typeof setTimeout> | null = null;

  get pending(): boolean {
    return this.handle !== null;
  }

  /** (Re)starts it: a pending run is replaced. */
  set(ms: number, fn: () => void): void {
    this.clear();
    this.handle = setTimeout(() => {
      this.handle = null;
      fn();
    }, ms);
  }

  /** Starts it unless it is already pending (the first request sets the time, later ones join it). */
  ensure(ms: number, fn: () => void): void {
    if (!this.handle) this.set(ms, fn);
  }

  clear(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
  }
}
