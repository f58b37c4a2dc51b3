#!/usr/bin/env node
// Captures the automerge-repo websocket protocol as spoken by the stock JS
// packages (versions pinned in package.json) and writes every binary frame to
// sync-core/tests/fixtures/js-2.5/ plus a manifest.json.
//
// Setup mirrors automerge-repo-sync-server: Repo + NodeFSStorageAdapter +
// NodeWSServerAdapter on a `ws` WebSocketServer, sharePolicy () => false.
// Remote-heads gossiping (an option of the stock Repo, off by default) is
// switched on for the server and both clients so that
// remote-subscription-change / remote-heads-changed appear on the wire.
//
// Usage: node capture-fixtures.mjs [--out DIR]   (overwrites DIR)

import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { Repo, cbor, generateAutomergeUrl } from "@automerge/automerge-repo"
import {
  BrowserWebSocketClientAdapter,
  NodeWSServerAdapter,
} from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer, WebSocket } from "ws"
import { describe } from "./cbor-diag.mjs"

const here = path.dirname(fileURLToPath(import.meta.url))
const argOut = process.argv.indexOf("--out")
const OUT =
  argOut > 0
    ? path.resolve(process.argv[argOut + 1])
    : path.resolve(here, "../../sync-core/tests/fixtures/js-2.5")

const SERVER_PEER = "fixture-sync-server"
const CLIENT_A = "fixture-client-a"
const CLIENT_B = "fixture-client-b"
const CLIENT_RAW = "fixture-client-raw"

const pkgVersion = name =>
  JSON.parse(
    fs.readFileSync(path.join(here, "node_modules", name, "package.json"), "utf8")
  ).version

const sleep = ms => new Promise(r => setTimeout(r, ms))
async function waitFor(pred, label, timeoutMs = 10000) {
  const start = Date.now()
  while (!(await pred())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timeout waiting for ${label}`)
    await sleep(10)
  }
}
const sameHeads = (a, b) =>
  !!a && !!b && a.length === b.length && [...a].sort().join() === [...b].sort().join()

// Hard stop so a hung run never blocks anyone.
const watchdog = setTimeout(() => {
  console.error("capture-fixtures: overall timeout")
  process.exit(1)
}, 60000)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fieldbook-fixtures-"))
const frames = []
const steps = []
let currentStep = "setup"
const step = s => {
  currentStep = s
  steps.push(s)
}

// ---------------------------------------------------------------- server
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
await new Promise(r => wss.once("listening", r))
const port = wss.address().port

// Raw frame recorder. Registered before the adapter's own "connection"
// listener so inbound frames are recorded before the server reacts to them.
let connSeq = 0
wss.on("connection", socket => {
  const conn = ++connSeq
  socket.on("message", (data, isBinary) => {
    frames.push({
      direction: "client-to-server",
      conn,
      binary: isBinary,
      step: currentStep,
      bytes: Buffer.from(data),
    })
  })
  const origSend = socket.send.bind(socket)
  socket.send = (data, ...rest) => {
    frames.push({
      direction: "server-to-client",
      conn,
      binary: typeof data !== "string",
      step: currentStep,
      bytes: Buffer.from(typeof data === "string" ? Buffer.from(data) : data),
    })
    return origSend(data, ...rest)
  }
})

const serverRepo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(path.join(tmp, "server")),
  peerId: SERVER_PEER,
  sharePolicy: async () => false,
  enableRemoteHeadsGossiping: true,
})
// NB: do not call serverRepo.storageId() here: StorageSubsystem.id() is not
// race-safe on a fresh directory, and a concurrent first call generates a
// different UUID than the one the repo advertises. Use what goes on the wire.
let serverStorageId
const url = `ws://127.0.0.1:${port}/v1/sync`

function connectedClient(peerId, storageDir) {
  const repo = new Repo({
    network: [new BrowserWebSocketClientAdapter(url)],
    storage: storageDir ? new NodeFSStorageAdapter(storageDir) : undefined,
    peerId,
    enableRemoteHeadsGossiping: true,
  })
  const peered = new Promise(resolve =>
    repo.networkSubsystem.on("peer", ({ peerId }) => {
      if (peerId === SERVER_PEER) resolve()
    })
  )
  return { repo, peered }
}

const serverHas = handle => () =>
  sameHeads(handle.getSyncInfo(serverStorageId)?.lastHeads, handle.heads())

try {
  // ------------------------------------------------------------ client A
  step("client A (NodeFS storage) connects: join / peer")
  const A = connectedClient(CLIENT_A, path.join(tmp, "client-a"))
  await A.peered
  serverStorageId = A.repo.peerMetadataByPeerId[SERVER_PEER].storageId
  await waitFor(() => serverRepo.peerMetadataByPeerId[CLIENT_A], "server to see A")
  const storageIdA = serverRepo.peerMetadataByPeerId[CLIENT_A].storageId
  await sleep(100)

  step("client A creates a document and waits until the server stored it")
  const handleA = A.repo.create({
    title: "Field notes",
    author: "ada",
    status: "draft",
    tags: ["moss", "lichen"],
    location: { site: "north ridge", grid: { x: 12, y: 7 } },
  })
  const docUrl = handleA.url
  await waitFor(serverHas(handleA), "server to store the created doc")
  await sleep(250)

  step("client A changes the document")
  handleA.change(d => {
    d.status = "reviewed"
    d.tags.push("fern")
    d.location.grid.x = 13
  })
  await waitFor(serverHas(handleA), "server to store the change")
  await sleep(250)

  // ------------------------------------------------------------ client B
  step("client B (no storage, isEphemeral) connects: join / peer")
  const B = connectedClient(CLIENT_B, undefined)
  await B.peered
  await sleep(100)

  step("client B finds the document by URL: request / sync")
  const handleB = await B.repo.find(docUrl)
  await waitFor(() => sameHeads(handleB.heads(), handleA.heads()), "B to catch up")
  await sleep(250)

  step("client B subscribes to remote heads of client A and the server: remote-subscription-change")
  B.repo.subscribeToRemotes([storageIdA, serverStorageId])
  await sleep(250)

  step("client A changes the document again: sync, remote-heads-changed to B")
  const gotRemoteHeads = new Promise(resolve => handleB.once("remote-heads", resolve))
  handleA.change(d => {
    d.title = "Field notes (day 2)"
  })
  await waitFor(serverHas(handleA), "server to store the second change")
  await Promise.race([gotRemoteHeads, sleep(2000)])
  await waitFor(() => sameHeads(handleB.heads(), handleA.heads()), "B to get day 2")
  await sleep(250)

  step("client B broadcasts an ephemeral message; the server relays it to A")
  const gotEphemeral = new Promise(resolve => handleA.once("ephemeral-message", resolve))
  handleB.broadcast({ kind: "cursor", user: "bea", pos: 3 })
  const eph = await Promise.race([gotEphemeral, sleep(3000).then(() => null)])
  if (!eph) console.error("warning: ephemeral message did not reach client A")
  await sleep(250)

  step("client B asks for a document that exists nowhere: request / doc-unavailable")
  const missingUrl = generateAutomergeUrl()
  let unavailable = false
  try {
    await B.repo.find(missingUrl)
  } catch (e) {
    unavailable = /unavailable/.test(String(e))
  }
  if (!unavailable) throw new Error("expected the missing doc to be unavailable")
  await sleep(250)

  step("raw client joins with an unsupported protocol version: error")
  await new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.binaryType = "arraybuffer"
    ws.on("open", () => {
      const join = {
        type: "join",
        senderId: CLIENT_RAW,
        peerMetadata: { isEphemeral: true },
        supportedProtocolVersions: ["999"],
      }
      ws.send(cbor.encode(join))
    })
    ws.on("close", resolve)
    ws.on("error", reject)
  })
  await sleep(100)

  step("clients shut down")
  await B.repo.shutdown()
  await sleep(150)
  await A.repo.shutdown()
  await sleep(300)
} finally {
  clearTimeout(watchdog)
}

// Close the server side; the adapter terminates sockets.
await new Promise(r => wss.close(() => r()))

// ---------------------------------------------------------------- output
const connNames = {}
for (const f of frames) {
  if (f.direction !== "client-to-server") continue
  try {
    const m = cbor.decode(f.bytes)
    if (m.type === "join") connNames[f.conn] ??= m.senderId
  } catch {}
}

fs.rmSync(OUT, { recursive: true, force: true })
fs.mkdirSync(OUT, { recursive: true })

const seen = new Set()
const entries = []
let n = 0
const byteNote = anns => {
  const bs = anns.filter(a => a.kind === "cbor-byte-string").map(a => a.path)
  const tags = anns.filter(a => a.kind === "tag")
  if (!bs.length && !tags.length) return "no byte fields"
  const parts = []
  if (bs.length) parts.push(`plain CBOR byte strings (major type 2, untagged): ${bs.join(", ")}`)
  if (tags.length)
    parts.push(`CBOR tags: ${tags.map(t => `${t.path || "<root>"}=tag ${t.tag}`).join(", ")}`)
  return parts.join("; ")
}

function writeEntry({ bytes, direction, synthesized, step, conn, note }) {
  const d = describe(bytes)
  const type = d.json?.type ?? "unknown"
  seen.add(type)
  const file = `${String(++n).padStart(3, "0")}-${direction}-${type}.cbor`
  fs.writeFileSync(path.join(OUT, file), bytes)
  const viaCborX = cbor.decode(bytes)
  const entry = {
    file,
    direction,
    type,
    synthesized: !!synthesized,
    step,
    connection: conn ? connNames[conn] ?? `conn-${conn}` : undefined,
    byteLength: bytes.length,
    decoded: d.json,
    diagnostic: d.diag,
    encodingNotes: {
      bytes: byteNote(d.annotations),
      undefinedFields: d.annotations.filter(a => a.kind === "undefined").map(a => a.path),
      floats: d.annotations
        .filter(a => a.kind.startsWith("float"))
        .map(a => `${a.path}: ${a.kind}`),
      nonMinimalHeaders: d.annotations
        .filter(a => a.kind === "non-minimal-header")
        .map(a => `${a.path}: major ${a.major} len ${a.argument} in ${a.headerBytes} header bytes`),
      keyOrder: Object.keys(viaCborX),
    },
  }
  if (note) entry.note = note
  entries.push(entry)
}

for (const f of frames) {
  if (!f.binary) throw new Error("unexpected text frame")
  writeEntry(f)
}

// ---------------------------------------------------------- synthesized
// Encoded with automerge-repo's own `cbor.encode` (cbor-x Encoder with
// { tagUint8Array: false, useRecords: false }), the exact function the
// websocket adapters call before socket.send().
const ALL = [
  "join",
  "peer",
  "error",
  "leave",
  "request",
  "sync",
  "doc-unavailable",
  "ephemeral",
  "remote-subscription-change",
  "remote-heads-changed",
]
const sampleDoc = "4NMNnkMhL8jXrdJ9jamS58PAVdXu" // placeholder base58check doc id
const synth = {
  leave: {
    direction: "client-to-server",
    msg: { type: "leave", senderId: CLIENT_B },
    note:
      "Not sent by @automerge/automerge-repo-network-websocket 2.5.x: the client adapter's disconnect() just closes the socket. LeaveMessage {type, senderId} existed in older versions of the package's messages.ts; encoded here with the same encoder.",
  },
}
const firstOf = t => entries.find(e => e.type === t && !e.synthesized)
for (const t of ALL) {
  if (seen.has(t)) continue
  const s = synth[t] ?? fallbackSynth(t)
  writeEntry({
    bytes: Buffer.from(cbor.encode(s.msg)),
    direction: s.direction,
    synthesized: true,
    step: "synthesized",
    note: s.note,
  })
}

function fallbackSynth(t) {
  // Only reached if the live run did not produce a type (should not happen
  // with the pinned versions). Shapes follow dist/network/messages.d.ts.
  const data = new Uint8Array([0x42, 0x00, 0x00, 0x01, 0x00])
  const base = { senderId: SERVER_PEER, targetId: CLIENT_B }
  const m = {
    join: { direction: "client-to-server", msg: { type: "join", senderId: CLIENT_B, peerMetadata: { isEphemeral: true }, supportedProtocolVersions: ["1"] } },
    peer: { direction: "server-to-client", msg: { type: "peer", senderId: SERVER_PEER, peerMetadata: { storageId: serverStorageId, isEphemeral: false }, selectedProtocolVersion: "1", targetId: CLIENT_B } },
    error: { direction: "server-to-client", msg: { type: "error", senderId: SERVER_PEER, message: "unsupported protocol version", targetId: CLIENT_B } },
    request: { direction: "client-to-server", msg: { type: "request", senderId: CLIENT_B, targetId: SERVER_PEER, documentId: sampleDoc, data } },
    sync: { direction: "server-to-client", msg: { type: "sync", ...base, documentId: sampleDoc, data } },
    "doc-unavailable": { direction: "server-to-client", msg: { type: "doc-unavailable", ...base, documentId: sampleDoc } },
    ephemeral: { direction: "client-to-server", msg: { type: "ephemeral", senderId: CLIENT_B, targetId: SERVER_PEER, documentId: sampleDoc, count: 1, sessionId: "abc123", data } },
    "remote-subscription-change": { direction: "client-to-server", msg: { type: "remote-subscription-change", senderId: CLIENT_B, targetId: SERVER_PEER, add: [serverStorageId] } },
    "remote-heads-changed": { direction: "server-to-client", msg: { type: "remote-heads-changed", ...base, documentId: sampleDoc, newHeads: { [serverStorageId]: { heads: [], timestamp: Date.now() } } } },
  }[t]
  return { ...m, note: "synthesized: not observed in the live capture" }
}

const manifest = {
  description:
    "Frames captured on the server side of a stock automerge-repo websocket sync server (see tests/js/capture-fixtures.mjs). Each .cbor file is one binary websocket message, byte for byte.",
  generatedBy: "tests/js/capture-fixtures.mjs",
  versions: {
    "@automerge/automerge-repo": pkgVersion("@automerge/automerge-repo"),
    "@automerge/automerge-repo-network-websocket": pkgVersion(
      "@automerge/automerge-repo-network-websocket"
    ),
    "@automerge/automerge-repo-storage-nodefs": pkgVersion("@automerge/automerge-repo-storage-nodefs"),
    "@automerge/automerge": pkgVersion("@automerge/automerge"),
    "cbor-x": pkgVersion("cbor-x"),
    ws: pkgVersion("ws"),
    node: process.version,
  },
  setup: {
    server: {
      peerId: SERVER_PEER,
      storageId: serverStorageId,
      sharePolicy: "async () => false (as automerge-repo-sync-server)",
      enableRemoteHeadsGossiping: true,
      path: "/v1/sync (the stock server ignores the path)",
    },
    clients: {
      [CLIENT_A]: "Repo + BrowserWebSocketClientAdapter + NodeFSStorageAdapter (has a storageId, isEphemeral false), enableRemoteHeadsGossiping",
      [CLIENT_B]: "Repo + BrowserWebSocketClientAdapter, no storage (storageId undefined, isEphemeral true), enableRemoteHeadsGossiping",
      [CLIENT_RAW]: "plain ws client sending a join with supportedProtocolVersions [\"999\"]",
    },
  },
  encoding:
    "All frames are encoded by automerge-repo's helpers/cbor.js: new cbor-x Encoder({ tagUint8Array: false, useRecords: false }).encode(msg). Uint8Array fields are plain CBOR byte strings (major type 2), never tag 64. Every JS object (the message map itself, peerMetadata, newHeads, and the cbor-encoded ephemeral payload) is written with a 3-byte map header 0xb9 NN NN (16-bit length, non-minimal) by cbor-x; arrays and strings use minimal headers. JS `undefined` values are written as simple value 23 (0xf7), e.g. peerMetadata.storageId of a storage-less client and `remove` in remote-subscription-change. Integers above 2^32 (Date.now() timestamps) are written as float64 (0xfb). Key order is insertion order and differs between message kinds (senderId is often last). 'decoded' shows byte strings as lowercase hex; 'diagnostic' is exact (h'..' bytes, undefined, float widths _1/_2/_3).",
  steps,
  frames: entries,
}
fs.writeFileSync(path.join(OUT, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n")
fs.rmSync(tmp, { recursive: true, force: true })

const counts = {}
for (const e of entries) {
  const k = `${e.direction} ${e.type}${e.synthesized ? " (synthesized)" : ""}`
  counts[k] = (counts[k] ?? 0) + 1
}
console.log(`wrote ${entries.length} frames to ${OUT}`)
for (const [k, v] of Object.entries(counts)) console.log(`  ${v} x ${k}`)
process.exit(0)
