// JSON kept in localStorage, and a hook that re-renders when this tab writes it.
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

/** The value stored under `key`, or `fallback` if there is none or it does not parse. */
export function readJson<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}

/** Stores `value` under `key`; components reading it with `useJson` re-render. */
export function writeJson(key: string, value: unknown): void {
  localStorage.setItem(key, JSON.stringify(value));
  for (const listener of [...listeners]) listener();
}

/** The value under `key`, kept current as `writeJson` changes it. */
export function useJson<T>(key: string, fallback: T): T {
  const [value, setValue] = useState(() => readJson(key, fallback));
  useEffect(() => {
    const update = () => setValue(readJson(key, fallback));
    update();
    listeners.add(update);
    return () => void listeners.delete(update);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return value;
}
