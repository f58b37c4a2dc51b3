// Entry point: load automerge's wasm, register the service worker, swap in any server copies
// asked for, render the app.
import { render } from "preact";
import { App } from "./App";
import { initAutomerge } from "./repo";
import { applyServerCopies } from "./server-copy";
import "./styles.css";

async function main() {
  if ("serviceWorker" in navigator && import.meta.env.PROD) {
    navigator.serviceWorker.register("./sw.js", { scope: "./" }).catch((e) => console.warn("service worker", e));
  }
  await initAutomerge();
  await applyServerCopies().catch((e) => console.warn("taking the server's copies back", e));
  render(<App />, document.getElementById("app")!);
}

void main();
