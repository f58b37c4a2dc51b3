// JSON kept in localStorage.

/** The value stored under `key`, or `fallback` if there is none or it does not parse. */
export function readJson<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  } catch {
    return fallback;
  }
}
