/** The toasts on screen, kept outside React state so that showing one re-renders only the toasts. */
import type { Toast } from './context.js';
import type { Notice } from './notices.js';

export class ToastStore {
  private listValue: readonly Toast[] = [];
  private nextId = 1;
  private readonly timers = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly listeners = new Set<() => void>();

  /** `timeoutMs`: how long a toast stays; 0 keeps it until dismissed. `max`: how many at once. */
  constructor(
    private readonly timeoutMs: number,
    private readonly max = 5,
  ) {}

  get list(): readonly Toast[] {
    return this.listValue;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  push(notice: Notice): void {
    const id = this.nextId++;
    const { kind, title, body, jobId } = notice;
    const dropped = this.listValue.slice(0, Math.max(0, this.listValue.length - (this.max - 1)));
    for (const toast of dropped) this.clearTimer(toast.id);
    this.set([...this.listValue.slice(dropped.length), { id, kind, title, body, jobId }]);
    if (this.timeoutMs > 0) this.timers.set(id, setTimeout(() => this.dismiss(id), this.timeoutMs));
  }

  dismiss = (id: number): void => {
    this.clearTimer(id);
    if (this.listValue.some((t) => t.id === id)) this.set(this.listValue.filter((t) => t.id !== id));
  };

  /** Clears every timer (the provider unmounts). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private clearTimer(id: number): void {
    const timer = this.timers.get(id);
    if (timer) clearTimeout(timer);
    this.timers.delete(id);
  }

  private set(list: readonly Toast[]): void {
    this.listValue = list;
    for (const listener of [...this.listeners]) listener();
  }
}
