/**
 * The backoff for the reconnects Socket.IO leaves to us (after a refusal by the server).
 */
import { describe, expect, it, vi } from 'vitest';
import { refusalDelay, withJitter } from '../src/lib/socket';

const NO_JITTER = { reconnectionDelay: 100, reconnectionDelayMax: 1000, randomizationFactor: 0 };

describe('refusalDelay', () => {
  it('doubles from reconnectionDelay with each refusal in a row, up to reconnectionDelayMax', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => refusalDelay(n, false, NO_JITTER))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('starts five times slower and caps three times higher on too_many_connections', () => {
    expect([1, 2, 3, 4].map((n) => refusalDelay(n, true, NO_JITTER))).toEqual([500, 1000, 2000, 3000]);
  });

  it('stops doubling after ten refusals', () => {
    const opts = { ...NO_JITTER, reconnectionDelayMax: 1e9 };
    expect(refusalDelay(11, false, opts)).toBe(100 * 2 ** 10);
    expect(refusalDelay(40, false, opts)).toBe(100 * 2 ** 10);
  });
});

describe('withJitter', () => {
  it('spreads a delay by the factor either way', () => {
    vi.spyOn(Math, 'random').mockReturnValueOnce(0).mockReturnValueOnce(0.5).mockReturnValueOnce(0.999999);
    expect(withJitter(1000, 0.5)).toBe(500);
    expect(withJitter(1000, 0.5)).toBe(1000);
    expect(withJitter(1000, 0.5)).toBe(1500);
  });
});
