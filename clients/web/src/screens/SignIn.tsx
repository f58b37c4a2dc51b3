// Sign-in screen. Signing in needs the network; after that the app works offline.
import { useState } from "preact/hooks";
import { useOnline } from "../online";

export function SignIn({ message, onSignIn }: { message?: string; onSignIn: (userId: string, password: string) => Promise<string | null> }) {
  const online = useOnline();
  const [userId, setUserId] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!userId.trim() || !password) {
      setError("Enter your user id and your password.");
      return;
    }
    setBusy(true);
    setError(null);
    const problem = await onSignIn(userId.trim(), password);
    setBusy(false);
    if (problem) setError(problem);
  };

  return (
    <div class="sign-in">
      <h1 tabIndex={-1}>Sign in to Fieldbook</h1>
      {message && (
        <p class="notice" role="status">
          {message}
        </p>
      )}
      {!online && (
        <p class="notice">
          You are offline. Signing in needs the network the first time on this device (and again after 7 days
          offline). Connect and try again.
        </p>
      )}
      <form onSubmit={submit} noValidate class="card">
        <div class="field">
          <label for="user-id">User id</label>
          <input
            id="user-id"
            name="username"
            autocomplete="username"
            autocapitalize="none"
            spellcheck={false}
            value={userId}
            onInput={(e) => setUserId((e.currentTarget as HTMLInputElement).value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "sign-in-error" : undefined}
          />
        </div>
        <div class="field">
          <label for="password">Password</label>
          <input
            id="password"
            type="password"
            name="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "sign-in-error" : undefined}
          />
        </div>
        <div aria-live="assertive">
          {error && (
            <p id="sign-in-error" class="error">
              {error}
            </p>
          )}
        </div>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
