// The PIN that unlocks this device's records offline: chosen after each password sign-in, asked
// for after every reload (see vault.ts).
import { useState } from "preact/hooks";
import { MAX_TRIES, MIN_PIN_LENGTH } from "../vault";

export function ChoosePin({ onChosen }: { onChosen: (pin: string) => Promise<string | null> }) {
  const [pin, setPin] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (pin.length < MIN_PIN_LENGTH) return setError(`Use at least ${MIN_PIN_LENGTH} characters (digits or a passphrase).`);
    if (pin !== again) return setError("The two entries are not the same. Type the PIN again in both fields.");
    setBusy(true);
    setError(await onChosen(pin));
    setBusy(false);
  };
  return (
    <div class="sign-in">
      <h1 tabIndex={-1}>Choose a PIN for this device</h1>
      <p>
        Fieldbook keeps your records on this device encrypted. You unlock them with this PIN each time you open
        Fieldbook, online or offline. After {MAX_TRIES} wrong tries, Fieldbook deletes its data from this device.
      </p>
      <form onSubmit={submit} noValidate class="card">
        <div class="field">
          <label for="new-pin">PIN or passphrase</label>
          <input id="new-pin" type="password" autocomplete="new-password" value={pin} onInput={(e) => setPin((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="new-pin-again">The same again</label>
          <input id="new-pin-again" type="password" autocomplete="new-password" value={again} onInput={(e) => setAgain((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div aria-live="assertive">{error && <p class="error">{error}</p>}</div>
        <button type="submit" disabled={busy}>
          {busy ? "Protecting your records…" : "Use this PIN"}
        </button>
      </form>
    </div>
  );
}

export function Unlock({
  name,
  onUnlock,
  onForgot,
}: {
  name: string;
  onUnlock: (pin: string) => Promise<string | null>;
  onForgot: () => void;
}) {
  const [pin, setPin] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!pin) return setError("Enter your PIN.");
    setBusy(true);
    setError(await onUnlock(pin));
    setPin("");
    setBusy(false);
  };
  return (
    <div class="sign-in">
      <h1 tabIndex={-1}>Unlock Fieldbook</h1>
      <p>Signed in as {name}. Enter the PIN you chose for this device.</p>
      <form onSubmit={submit} noValidate class="card">
        <div class="field">
          <label for="pin">PIN</label>
          <input id="pin" type="password" autocomplete="current-password" value={pin} onInput={(e) => setPin((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <div aria-live="assertive">{error && <p class="error">{error}</p>}</div>
        <button type="submit" disabled={busy}>
          {busy ? "Unlocking…" : "Unlock"}
        </button>
      </form>
      <p>
        <button type="button" class="secondary" onClick={onForgot}>
          Forgot your PIN? Sign in with your password
        </button>
      </p>
    </div>
  );
}
