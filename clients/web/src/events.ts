// App-wide signals that do not belong to one screen: the server told this device to wipe,
// another tab wiped it, or the session can no longer be renewed.
export type AuthSignal =
  | { kind: "wipe"; reason: string }
  | { kind: "wiped-elsewhere"; reason: string }
  | { kind: "session-ended"; reason: string };

const listeners = new Set<(signal: AuthSignal) => void>();

export function onAuthSignal(listener: (signal: AuthSignal) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function emitAuthSignal(signal: AuthSignal): void {
  for (const listener of [...listeners]) listener(signal);
}
