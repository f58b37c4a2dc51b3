#!/usr/bin/env node
// Stock automerge-repo sync server (baseline for benchmarks and interop tests),
// set up like automerge-repo-sync-server: Repo + NodeFSStorageAdapter +
// NodeWSServerAdapter, sharePolicy () => false. Accepts the websocket upgrade
// on any path. Usage: node node-server.mjs --port P --dir DIR
// Prints "listening P" once ready; exits 0 on SIGTERM/SIGINT.

import os from "node:os"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const arg = name => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const port = Number(arg("--port") ?? 3030)
const dir = arg("--dir") ?? "automerge-sync-server-data"

const wss = new WebSocketServer({ host: "127.0.0.1", port })
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  sharePolicy: async () => false,
})
// The Repo attaches its adapter to the server only after it has read its storage id, so
// "listening" waits for that too: a connection accepted earlier would be dropped.
wss.on("listening", () => {
  const announce = () =>
    wss.listenerCount("connection") > 0
      ? console.log(`listening ${wss.address().port}`)
      : setTimeout(announce, 5)
  announce()
})

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  wss.close() // the adapter terminates the client sockets
  const timeout = new Promise(r => setTimeout(r, 60000)) // storage writes are debounced: let them finish
  await Promise.race([repo.flush().catch(() => {}), timeout])
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
