// The app shell: signed in or not, the header, routing, and the background work (polling the
// record index, renewing tokens, obeying the server's wipe order).
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { onAuthSignal } from "./events";
import { useOnline } from "./online";
import { RecordStore } from "./records";
import { sealStoredRecords, setSyncToken, startRepo, stopRepo } from "./repo";
import { useRoute } from "./router";
import {
  AuthError,
  clearSession,
  loadSession,
  login,
  logout,
  type Me,
  onTokens,
  refreshSession,
  saveSession,
  type Session,
  type StoredSession,
  storedSession,
  unsealSession,
  withinOfflineGrace,
} from "./session";
import { CpdScreen } from "./screens/CpdScreen";
import { ExpertiseScreen } from "./screens/ExpertiseScreen";
import { FindScreen } from "./screens/FindScreen";
import { GroupSessionScreen } from "./screens/GroupSessionScreen";
import { Home } from "./screens/Home";
import { NewObservation } from "./screens/NewObservation";
import { ChoosePin, Unlock } from "./screens/Pin";
import { ObservationScreen } from "./screens/ObservationScreen";
import { PlanScreen } from "./screens/PlanScreen";
import { ProgressScreen } from "./screens/ProgressScreen";
import { SignIn } from "./screens/SignIn";
import { ThemeScreen, ThemesScreen } from "./screens/ThemesScreen";
import { changedHereCount, storedOnServer } from "./sync-state";
import { unsealAll } from "./sealed-local";
import { RemovedRecords } from "./ui/record-status";
import { openWithDeviceKey, unlockWithPin, vaultOwner } from "./vault";
import { wipeLocalData } from "./wipe";

const OWNER_KEY = "fb.owner";
const POLL_MS = 15_000;

type State =
  | { phase: "out"; message?: string }
  | { phase: "locked"; stored: StoredSession }
  | { phase: "choose-pin"; session: Session; deviceKey: string }
  | { phase: "in"; session: Session; me: Me; store: RecordStore };

function initialState(): State {
  const stored = storedSession();
  if (!stored || !stored.me) {
    // Signed in before the records here were encrypted: they are sealed at the next sign-in.
    return localStorage.getItem("fb.session")
      ? { phase: "out", message: "Fieldbook now encrypts the records kept on this device. Sign in again to choose a PIN." }
      : { phase: "out" };
  }
  if (!withinOfflineGrace(stored)) {
    return { phase: "out", message: "It is more than 7 days since the server last confirmed your sign-in. Sign in again to carry on." };
  }
  if (vaultOwner() !== stored.userId) return { phase: "out" };
  return { phase: "locked", stored };
}

const NOT_ALL_DELETED = " Some data could not be removed while another Fieldbook tab had it open: close other Fieldbook tabs and reload.";

function start(session: Session): State {
  const repo = startRepo(session.accessToken);
  // A repo still running from before (a session that ended) must use the new token.
  setSyncToken(session.accessToken);
  return { phase: "in", session, me: session.me!, store: new RecordStore(repo, session.me!.id) };
}

export function App() {
  const [state, setState] = useState<State>(initialState);
  const [announcement, setAnnouncement] = useState("");
  // The signal handler is registered once; it reads the state as it is when a signal comes.
  const stateRef = useRef(state);
  stateRef.current = state;

  useEffect(
    () =>
      onAuthSignal(async (signal) => {
        if (stateRef.current.phase === "in") stateRef.current.store.close();
        if (signal.kind === "wipe") {
          const deleted = await wipeLocalData({ keepDevice: false, reason: signal.reason });
          setState({
            phase: "out",
            message:
              `This device was signed out by the server and its Fieldbook data was deleted (${signal.reason}). If you did not expect this, contact your admin.` +
              (deleted ? "" : NOT_ALL_DELETED),
          });
        } else if (signal.kind === "wiped-elsewhere") {
          await stopRepo();
          setState({ phase: "out", message: `Fieldbook was signed out in another tab, and its data was removed from this device (${signal.reason}).` });
        } else {
          await stopRepo();
          clearSession();
          setState({ phase: "out", message: signal.reason });
        }
      }),
    [],
  );

  const signIn = async (userId: string, password: string): Promise<string | null> => {
    try {
      const owner = localStorage.getItem(OWNER_KEY);
      if (owner && owner !== userId) {
        // Another person's records must not stay on the device, but their unsent work must
        // not be lost either: they sync first, or an admin revokes the device.
        const unsynced = changedHereCount();
        if (unsynced > 0) {
          return `This device holds ${unsynced === 1 ? "1 record" : `${unsynced} records`} of ${owner} that ${unsynced === 1 ? "is" : "are"} not on the server yet. ${owner} must sign in here and sync before anyone else can use this device; or an admin can revoke the device, which deletes ${unsynced === 1 ? "it" : "them"}.`;
        }
      }
      const { session, deviceKey } = await login(userId, password);
      if (owner && owner !== userId) await wipeLocalData({ keepDevice: true, reason: "another person signed in" });
      localStorage.setItem(OWNER_KEY, userId);
      if (!session.me) return "Signed in, but the server did not say who you are. Try again.";
      setState({ phase: "choose-pin", session, deviceKey });
      return null;
    } catch (e) {
      if (e instanceof AuthError && e.kind === "revoked") {
        const deleted = await wipeLocalData({ keepDevice: false, reason: "this device was revoked" });
        return `This device was revoked, so its Fieldbook data was deleted (${e.message}). Contact your admin.` + (deleted ? "" : NOT_ALL_DELETED);
      }
      if (e instanceof AuthError && e.kind === "network" && !navigator.onLine) {
        return "You are offline. You need the network to sign in. Connect and try again.";
      }
      return e instanceof Error ? e.message : "Signing in failed. Try again.";
    }
  };

  /** After a password sign-in: the vault opens with the device key and is wrapped under the PIN. */
  const choosePin = async (pin: string): Promise<string | null> => {
    if (state.phase !== "choose-pin") return null;
    try {
      await openWithDeviceKey(state.session.userId, state.deviceKey, pin);
      await sealStoredRecords();
      await unsealAll();
      await saveSession(state.session);
      setState(start(state.session));
      return null;
    } catch (e) {
      console.warn("opening the local store", e);
      return "Fieldbook could not protect the records on this device. Sign in again.";
    }
  };

  const unlock = async (pin: string): Promise<string | null> => {
    const result = await unlockWithPin(pin);
    if (result.ok) {
      const session = await unsealSession().catch(() => null);
      if (!session?.me) {
        setState({ phase: "out", message: "Your sign-in on this device could not be read. Sign in again." });
        return null;
      }
      await sealStoredRecords();
      await unsealAll();
      setState(start(session));
      return null;
    }
    if ("wipe" in result) {
      const deleted = await wipeLocalData({ keepDevice: true, reason: "too many wrong PINs" });
      setState({
        phase: "out",
        message: "Too many wrong PINs, so Fieldbook deleted its data from this device. Sign in with your password to carry on." + (deleted ? "" : NOT_ALL_DELETED),
      });
      return null;
    }
    const tries = `${result.triesLeft} ${result.triesLeft === 1 ? "try" : "tries"} left before Fieldbook deletes its data from this device.`;
    const wait = Math.ceil((result.retryAt - Date.now()) / 1000);
    if (result.early) return `Too soon: wait ${wait} seconds before trying again. ${tries}`;
    return wait > 0 ? `That PIN is not right. Wait ${wait} seconds, then try again. ${tries}` : `That PIN is not right. ${tries}`;
  };

  const signOut = async () => {
    if (state.phase !== "in") return;
    state.store.close();
    if (navigator.onLine) await logout(loadSession() ?? state.session);
    const deleted = await wipeLocalData({ keepDevice: true, reason: "signed out" });
    setState({
      phase: "out",
      message: deleted
        ? "You have signed out. Fieldbook data was removed from this device."
        : "You have signed out, but some Fieldbook data could not be removed: close other Fieldbook tabs, then sign in and out again.",
    });
  };

  // Signed out, focus is where the next keystroke belongs: the user id; otherwise the
  // screen's heading, so screen readers start at the top.
  useEffect(() => {
    const target = state.phase === "out" ? document.getElementById("user-id") : document.querySelector<HTMLElement>("main h1");
    target?.focus();
  }, [state.phase]);

  if (state.phase === "out") {
    return (
      <Layout>
        <SignIn message={state.message} onSignIn={signIn} />
      </Layout>
    );
  }
  if (state.phase === "choose-pin") {
    return (
      <Layout>
        <ChoosePin onChosen={choosePin} />
      </Layout>
    );
  }
  if (state.phase === "locked") {
    const forgot = () => setState({ phase: "out", message: "Sign in with your password to choose a new PIN. Your records stay on this device." });
    return (
      <Layout>
        <Unlock name={state.stored.me?.name ?? state.stored.userId} onUnlock={unlock} onForgot={forgot} />
      </Layout>
    );
  }
  return <SignedIn state={state} onSignOut={signOut} announce={setAnnouncement} announcement={announcement} />;
}

function Layout({ header, children, announcement = "" }: { header?: ComponentChildren; children: ComponentChildren; announcement?: string }) {
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to main content
      </a>
      <header class="top">
        <p class="brand">Fieldbook</p>
        {header}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
      <div class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </div>
    </>
  );
}

function SignedIn({
  state,
  onSignOut,
  announce,
  announcement,
}: {
  state: Extract<State, { phase: "in" }>;
  onSignOut: () => Promise<void>;
  announce: (text: string) => void;
  announcement: string;
}) {
  const { store, me } = state;
  const route = useRoute();
  const online = useOnline();
  const [confirming, setConfirming] = useState(false);
  const firstRoute = useRef(true);
  const dialog = useRef<HTMLElement>(null);
  useEffect(() => {
    if (!confirming) return;
    dialog.current?.focus();
    // The count in the warning follows records reaching the server while it is open.
    const recount = setInterval(() => setUnsyncedNow(unsyncedCount()), 1000);
    return () => clearInterval(recount);
  }, [confirming]);
  const unsyncedCount = () => store.entries().filter((e) => e.handle && !storedOnServer(e.handle)).length;
  const [unsyncedNow, setUnsyncedNow] = useState(0);

  // Background sync of the index and lists, and token renewal.
  useEffect(() => {
    let stopped = false;
    // Renew the access token a while before it expires (see `needsRenewal`), whatever its
    // lifetime: the sync session is renewed in-band with it.
    let renewal: ReturnType<typeof setTimeout> | undefined;
    const scheduleRenewal = (session: Session) => {
      clearTimeout(renewal);
      const life = session.accessExpiresAt - session.confirmedAt;
      const lead = Math.min(120_000, life / 3);
      renewal = setTimeout(renew, Math.max(1_000, session.accessExpiresAt - lead - Date.now()));
    };
    const renew = async () => {
      if (stopped) return;
      try {
        if (navigator.onLine) await refreshSession();
      } catch {
        // offline or the server is away: try again shortly
      }
      const session = loadSession();
      if (session && !stopped) scheduleRenewal(session);
    };
    const stopTokens = onTokens((session) => {
      setSyncToken(session.accessToken);
      scheduleRenewal(session);
    });
    const current = loadSession();
    if (current) scheduleRenewal(current);
    const tick = async () => {
      if (stopped || !navigator.onLine) return;
      const session = loadSession();
      if (!session) return;
      try {
        if (session.accessExpiresAt < Date.now()) await refreshSession();
        await store.poll();
      } catch {
        // offline or the server is away: the next tick tries again
      }
    };
    const lists = () => {
      if (navigator.onLine) void store.refreshLists().catch(() => undefined);
    };
    void tick().then(lists);
    const timer = setInterval(tick, POLL_MS);
    const grace = setInterval(() => {
      const session = loadSession();
      if (session && !withinOfflineGrace(session)) location.reload();
    }, 60_000);
    const online = () => {
      void tick().then(lists);
    };
    window.addEventListener("online", online);
    return () => {
      stopped = true;
      stopTokens();
      clearTimeout(renewal);
      clearInterval(timer);
      clearInterval(grace);
      window.removeEventListener("online", online);
    };
  }, [store]);

  useEffect(() => {
    announce(online ? "You are online. Records sync with the server." : "You are offline. Your work is saved on this device.");
  }, [online]);

  // Move focus to the new screen's heading, as a page load would.
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    document.querySelector<HTMLElement>("main h1")?.focus();
    window.scrollTo(0, 0);
  }, [route]);

  const requestSignOut = () => {
    const unsynced = unsyncedCount();
    setUnsyncedNow(unsynced);
    if (unsynced > 0) setConfirming(true);
    else void onSignOut();
  };

  const header = (
    <>
      <p class="who">
        {me.name} <span class="role">({me.role.replace(/-/g, " ")})</span>
      </p>
      <p class={online ? "net online" : "net offline"}>{online ? "Online" : "Offline"}</p>
      <button type="button" class="secondary" onClick={requestSignOut}>
        Sign out
      </button>
    </>
  );

  return (
    <Layout header={header} announcement={announcement}>
      {confirming && (
        <section ref={dialog} tabIndex={-1} class="card warning" role="alertdialog" aria-labelledby="signout-heading" aria-describedby="signout-text">
          <h2 id="signout-heading">Sign out and lose unsaved records?</h2>
          <p id="signout-text">
            {unsyncedNow === 0
              ? "Every record is stored on the server now: signing out loses nothing."
              : `${unsyncedNow === 1 ? "1 record is" : `${unsyncedNow} records are`} saved on this device only. Signing out deletes
            Fieldbook data from this device, so that work would be lost. Connect to the network and wait until every record
            says "Stored on the server" first.`}
          </p>
          <div class="row">
            <button type="button" class="danger" onClick={() => void onSignOut()}>
              Sign out anyway
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </div>
        </section>
      )}
      <RemovedRecords />
      {route.name === "observation" ? (
        <ObservationScreen key={route.documentId} store={store} me={me} documentId={route.documentId} />
      ) : route.name === "plan" ? (
        <PlanScreen key={route.documentId} store={store} me={me} documentId={route.documentId} />
      ) : route.name === "new-observation" ? (
        <NewObservation store={store} me={me} />
      ) : route.name === "session" ? (
        <GroupSessionScreen key={route.documentId} store={store} me={me} documentId={route.documentId} />
      ) : route.name === "find" ? (
        <FindScreen store={store} me={me} />
      ) : route.name === "progress" ? (
        <ProgressScreen key={route.userId} store={store} me={me} userId={route.userId} />
      ) : route.name === "expertise" ? (
        <ExpertiseScreen store={store} me={me} />
      ) : route.name === "cpd" ? (
        <CpdScreen me={me} />
      ) : route.name === "themes" ? (
        <ThemesScreen store={store} me={me} />
      ) : route.name === "theme" ? (
        <ThemeScreen key={route.documentId} store={store} me={me} documentId={route.documentId} />
      ) : (
        <Home store={store} me={me} />
      )}
    </Layout>
  );
}
