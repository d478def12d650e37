import type { ReactNode } from 'react';
import type { ConnectionState } from '../lib/ProgressClient.js';
import { useConnectionState } from './hooks.js';

/** The exact texts the contract names for each connection state. */
export const CONNECTION_TEXT: Record<ConnectionState, string> = {
  connected: 'Connected',
  reconnecting: 'Reconnecting\u2026',
  polling: 'Offline (polling)',
  // Neither Socket.IO nor the polling fallback answers (the fallback keeps trying).
  offline: 'Cannot reach the server',
};

/** A role="status" element reading `Connected`, `Reconnecting…`, `Offline (polling)` or `Cannot reach the server`. */
export function ConnectionStatus({ className = '' }: { className?: string }): ReactNode {
  const state = useConnectionState();
  return (
    <p role="status" className={`rt-connection rt-connection--${state} ${className}`.trim()} data-state={state}>
      {CONNECTION_TEXT[state]}
    </p>
  );
}
