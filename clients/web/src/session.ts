// Sign-in state: tokens, the device id, and the offline grace period. Kept in localStorage so
// the app reopens signed in with no network, for at most OFFLINE_GRACE_MS after the server
// last confirmed the session (a login or a refresh). The tokens are stored sealed with the
// data key (see vault.ts): after a reload they are usable only once the user has unlocked.
import { emitAuthSignal } from "./events";
import { sealText, unsealText } from "./vault";

export const OFFLINE_GRACE_MS = 7 * 24 * 60 * 60 * 1000;
const SESSION_KEY = "fb.session";
const DEVICE_KEY = "fb.deviceId";

export type Role = "practitioner" | "supervisor" | "manager" | "principal-social-worker" | "hr" | "admin";

export interface Me {
  id: string;
  name: string;
  role: Role;
  teamId?: string | null;
  device?: unknown;
}

export interface Session {
  userId: string;
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
  /** When the server last confirmed this session (ms since epoch). */
  confirmedAt: number;
  me?: Me;
}

interface TokenResponse {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
}

export class AuthError extends Error {
  constructor(
    message: string,
    readonly kind: "rejected" | "revoked" | "network",
  ) {
    super(message);
  }
}

export const DEVICE_STORAGE_KEY = DEVICE_KEY;

export function deviceId(): string {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = "web-" + crypto.randomUUID();
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

/** What is stored in clear about the session: who, and when it was confirmed and expires. */
export type StoredSession = Omit<Session, "accessToken" | "refreshToken"> & { sealed: string };

const SEALED_WHAT = "session tokens";
let current: Session | null = null;

/** The stored session's clear part, if someone is signed in here (locked or not). */
export function storedSession(): StoredSession | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    const stored = raw ? (JSON.parse(raw) as StoredSession) : null;
    return stored && typeof stored.sealed === "string" ? stored : null;
  } catch {
    return null;
  }
}

/** The session in use (unlocked), or null. */
export function loadSession(): Session | null {
  const stored = storedSession();
  return current && stored && stored.userId === current.userId ? current : null;
}

/** Reads the stored session, tokens included (the vault must be unlocked). */
export async function unsealSession(): Promise<Session | null> {
  const stored = storedSession();
  if (!stored) return null;
  const tokens = JSON.parse(await unsealText(stored.sealed, SEALED_WHAT)) as {
    accessToken: string;
    refreshToken: string;
  };
  const { sealed: _sealed, ...rest } = stored;
  current = { ...rest, ...tokens };
  return current;
}

/** Stores the session, its tokens sealed (the vault must be unlocked). */
export async function saveSession(session: Session): Promise<void> {
  const tokens = JSON.stringify({ accessToken: session.accessToken, refreshToken: session.refreshToken });
  const { accessToken: _a, refreshToken: _r, ...rest } = session;
  const stored: StoredSession = { ...rest, sealed: await sealText(tokens, SEALED_WHAT) };
  current = session;
  localStorage.setItem(SESSION_KEY, JSON.stringify(stored));
  for (const listener of [...tokenListeners]) listener(session);
}

export function clearSession(): void {
  current = null;
  localStorage.removeItem(SESSION_KEY);
}

// Another tab renewed the tokens: use its (the refresh token it spent is void now).
if (typeof window !== "undefined") {
  window.addEventListener("storage", (event) => {
    if (event.key !== SESSION_KEY || !current) return;
    unsealSession()
      .then((session) => session && tokenListeners.forEach((listener) => listener(session)))
      .catch(() => undefined);
  });
}

/** Whether the session may still be used offline (confirmed by the server within the grace period). */
export function withinOfflineGrace(session: { confirmedAt: number }, now = Date.now()): boolean {
  return now - session.confirmedAt < OFFLINE_GRACE_MS;
}

const tokenListeners = new Set<(session: Session) => void>();
/** Called with the session whenever tokens change (the sync socket needs the new access token). */
export function onTokens(listener: (session: Session) => void): () => void {
  tokenListeners.add(listener);
  return () => tokenListeners.delete(listener);
}

async function postJson(path: string, body: unknown): Promise<Response> {
  try {
    return await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new AuthError("Fieldbook cannot reach the server. Check your connection and try again.", "network");
  }
}

async function errorFrom(response: Response, fallback: string): Promise<AuthError> {
  const body = await response.json().catch(() => ({}) as Record<string, unknown>);
  // Errors are problem+json: `detail` says what went wrong, `code` what to do about it.
  if (body.code === "device-revoked" || body.wipe === true) {
    return new AuthError(String(body.detail ?? "This device was revoked."), "revoked");
  }
  return new AuthError(String(body.detail ?? fallback), "rejected");
}

function sessionFrom(userId: string, tokens: TokenResponse, me?: Me): Session {
  const now = Date.now();
  return {
    userId,
    accessToken: tokens.accessToken,
    accessExpiresAt: now + tokens.expiresIn * 1000,
    refreshToken: tokens.refreshToken,
    refreshExpiresAt: now + tokens.refreshExpiresIn * 1000,
    confirmedAt: now,
    me,
  };
}

/** A password sign-in: the session (not stored yet: the vault opens first) and the device key. */
export async function login(userId: string, password: string): Promise<{ session: Session; deviceKey: string }> {
  const response = await postJson("/v1/auth/login", { userId, password, deviceId: deviceId() });
  if (!response.ok) {
    if (response.status === 401) {
      const error = await errorFrom(response, "The user id or password is not right.");
      if (error.kind === "revoked") throw error;
      throw new AuthError("The user id or password is not right. Check them and try again.", "rejected");
    }
    if (response.status === 429) {
      const wait = Number(response.headers.get("retry-after") ?? "60");
      const minutes = Math.ceil(wait / 60);
      throw new AuthError(
        wait < 90
          ? `Too many attempts to sign in. Wait ${Math.max(1, wait)} seconds and try again.`
          : `Too many attempts to sign in. Wait about ${minutes} minutes and try again.`,
        "rejected",
      );
    }
    throw await errorFrom(response, `The server could not sign you in (error ${response.status}).`);
  }
  const tokens = (await response.json()) as TokenResponse & { deviceKey?: string };
  if (!tokens.deviceKey) throw new AuthError("The server did not give this device its storage key. Try again.", "rejected");
  const session = sessionFrom(userId, tokens);
  const meResponse = await fetch("/v1/auth/me", { headers: { authorization: `Bearer ${session.accessToken}` } });
  if (meResponse.ok) session.me = (await meResponse.json()) as Me;
  return { session, deviceKey: tokens.deviceKey };
}

/**
 * Whether the access token is near enough its expiry to renew it: within a third of its
 * life, and at most two minutes, before it ends (tokens may be short-lived).
 */
export function needsRenewal(session: Session, now = Date.now()): boolean {
  const life = session.accessExpiresAt - session.confirmedAt;
  return session.accessExpiresAt - now < Math.min(120_000, life / 3);
}

/**
 * Renews the access token with the refresh token (which rotates). Serialised across tabs with
 * a Web Lock, and re-reads the stored session inside it, so two tabs never spend the same
 * refresh token (reusing one signs the device out).
 */
export async function refreshSession(): Promise<Session> {
  const run = async (): Promise<Session> => {
    // As stored now: another tab may have spent the refresh token this one holds.
    const before = await unsealSession().catch(() => null);
    if (!before) throw new AuthError("You are signed out.", "rejected");
    // Another tab (or call) renewed it just now.
    if (!needsRenewal(before) && Date.now() - before.confirmedAt < 5_000) return before;
    const response = await postJson("/v1/auth/refresh", { refreshToken: before.refreshToken });
    if (!response.ok) {
      const error = await errorFrom(response, "Your session has ended.");
      if (response.status === 401) {
        emitAuthSignal(
          error.kind === "revoked"
            ? { kind: "wipe", reason: error.message }
            : { kind: "session-ended", reason: "Your session has ended. Sign in again to carry on." },
        );
      }
      throw error;
    }
    const session = sessionFrom(before.userId, (await response.json()) as TokenResponse, before.me);
    // Signed out (or in as someone else) while the request was out: keep nothing.
    if (storedSession()?.confirmedAt !== before.confirmedAt) throw new AuthError("You are signed out.", "rejected");
    await saveSession(session);
    return session;
  };
  return navigator.locks ? navigator.locks.request("fieldbook-refresh", run) : run();
}

/** Tells the server to end the session; ignores failures (offline sign-out still wipes locally). */
export async function logout(session: Session): Promise<void> {
  try {
    await fetch("/v1/auth/logout", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refreshToken: session.refreshToken }),
    });
  } catch {
    // offline: the refresh token simply expires
  }
}
