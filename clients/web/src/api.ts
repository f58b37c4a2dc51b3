// Calls to the Fieldbook API with the access token, renewing it first when it is about to
// expire and once more when a call answers 401.
import { emitAuthSignal } from "./events";
import { loadSession, needsRenewal, refreshSession } from "./session";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function freshToken(): Promise<string> {
  const session = loadSession();
  if (!session) throw new ApiError("You are signed out.", 401);
  if (needsRenewal(session)) return (await refreshSession()).accessToken;
  return session.accessToken;
}

/** `read`: how to take the answer (JSON unless told; `(r) => r.text()` for a CSV, say). */
export async function api<T>(path: string, init: RequestInit = {}, read: (response: Response) => Promise<T> = (r) => r.json()): Promise<T> {
  let token = await freshToken();
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, {
      ...init,
      headers: { accept: "application/json", ...(init.headers ?? {}), authorization: `Bearer ${token}` },
    });
    if (response.ok) return (response.status === 204 ? undefined : await read(response)) as T;
    const body = await response.json().catch(() => ({}) as Record<string, unknown>);
    if (response.status === 401 && (body.wipe === true || body.code === "device-revoked")) {
      emitAuthSignal({ kind: "wipe", reason: String(body.detail ?? "This device was revoked.") });
      throw new ApiError(String(body.detail ?? "This device was revoked."), 401);
    }
    if (response.status === 401 && attempt === 0) {
      token = (await refreshSession()).accessToken;
      continue;
    }
    throw new ApiError(String(body.detail ?? `The server answered ${response.status}.`), response.status);
  }
}
