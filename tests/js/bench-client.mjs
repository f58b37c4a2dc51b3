#!/usr/bin/env node
// Benchmark driver: the stock @automerge/automerge-repo 2.5.6 client against a sync server
// (Fieldbook or the stock tests/js/node-server.mjs), printing ONE JSON line of measurements.
// Same idioms as client.mjs: every Repo is a fresh `new Repo({...})` with no storage adapter
// (in memory) and the default sharePolicy; the network, when used, is one
// BrowserWebSocketClientAdapter(url) per Repo. "Stored by the server" means the heads the repo
// records for the server's storageId (handle.getSyncInfo(storageId).lastHeads) equal
// handle.heads().
//
//   node bench-client.mjs floor       --bins FILE --ids FILE
//   node bench-client.mjs pull        --url WSURL --ids FILE [--window N] [--record FILE]
//   node bench-client.mjs upload      --url WSURL --bins FILE [--record FILE]
//   node bench-client.mjs propagation --url WSURL --ids FILE [--rounds N]
// Common option: --timeout-ms N (default 600000). --rounds defaults to 200.
//
// Inputs (written by the Rust side):
//   --bins FILE  records of [4-byte big-endian length][that many bytes of Automerge.save()]
//   --ids FILE   one automerge URL (automerge:<bs58 id>) per line, same order as --bins
//
// Modes, and where each timer starts and stops:
//   floor        No network (network: []). Timer starts once the files are read and the Repo
//                exists; for each
//                binary repo.import(bytes, {docId}) with the id from the matching URL; stops
//                once every handle is ready and handle.doc() is readable.
//                -> {mode, documents, seconds, client_cpu_seconds}
//   pull         A fresh device fetches every document. Timer starts before the adapter and
//                Repo are created (so it includes connecting); stops when
//                Promise.all(ids.map(repo.find)) resolves (2.x find resolves when the doc is
//                ready). With --window N, at most N finds are pending at a time, the next
//                started as one resolves, as clients/web opens a user's records (records.ts
//                OPEN_WINDOW). first_document_seconds is when the first find resolved. Afterwards,
//                untimed, every doc must have content (doc.type defined).
//                messages_received counts repo messages the adapter emitted ("message"
//                events: everything but the server's `peer`), messages_sent every message the
//                adapter sent (join included), bytes_received every WebSocket frame's payload
//                (peer message included); all three up to the moment the timer stops.
//                client_busy is the share of the timed wall clock the client's event loop was
//                running (performance.eventLoopUtilization): near 1, the client never waited
//                for the server. longest_silence_seconds is the longest time between two frames
//                (either way) on the socket while timed: a stall shows there.
//                -> {mode, documents, window, seconds, first_document_seconds, client_cpu_seconds,
//                    client_busy, longest_silence_seconds, messages_received, messages_sent,
//                    bytes_received}
//   upload       One device uploads new documents. Connecting and waiting for the server's
//                `peer` message is untimed; the timer starts before the first
//                repo.import(bytes) (no docId: each gets a new id) and stops once the server
//                has stored every handle's heads. A "fieldbook/rejected" notice fails the run.
//                -> {mode, documents, seconds, client_cpu_seconds, client_busy}
//   propagation  Two devices A and B (two Repos, two sockets, same URL) both find every
//                document and wait until the server has their heads (untimed; 100 documents
//                at a time), then until neither socket has moved a message for 250 ms. Then for
//                r in 0..rounds, sequentially, on doc ids[r % ids.length]: the timer starts
//                right before A's handle.change(d => { d.purpose = label }) and stops at B's
//                handle "change" event after which B's doc.purpose === label. Untimed, each
//                round then waits until the server has stored A's heads. The label is
//                "edit <r> <run nonce>": the nonce keeps repeated runs against the same
//                server from assigning a value a document already holds.
//                client_cpu_seconds covers the rounds (both devices share this process).
//                p50/p99 are nearest-rank: sorted[ceil(q*n)-1].
//                -> {mode, documents, rounds, p50_ms, p99_ms, max_ms, mean_ms, samples_ms,
//                    client_cpu_seconds}
//
// --record FILE (pull, upload): once timed, waits until no frame moved for 250 ms, then writes
// what the server sent, one JSON line each, for tests/js/replay-server.mjs to answer from:
// {documentId (null for the peer message), after (how many messages for that document this
// client had sent when it arrived), frame (base64)}, and each document's first message from
// this client as {documentId, first (its data, base64)}. Recording costs the client time, so
// a recording run's figures are not comparable.
//
// Success: exactly one JSON line on stdout, exit 0. Failure: message on stderr, exit 1
// (2 for usage errors); a server closing a connection before the result is ready is a failure.
// WebSockets are closed (close frame) before exiting.

import { readFileSync, writeFileSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { Repo, cbor, isValidAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { untilServerHas } from "./server-heads.mjs"

// Library code occasionally console.log()s; keep stdout for our one JSON line.
console.log = console.info = console.warn = console.debug = (...a) => console.error(...a)

const USAGE = `usage: bench-client.mjs <floor|pull|upload|propagation> [--url WSURL] [--bins FILE] [--ids FILE] [--window N] [--record FILE] [--rounds N] [--timeout-ms N]`
const MODES = ["floor", "pull", "upload", "propagation"]

let phase = "starting"
let closing = false // set by finish(): disconnects from then on are ours
const devices = [] // every connected {repo, adapter}, closed by finish()

function fail(msg, code = 1) {
  process.stderr.write(`${msg}\n`, () => process.exit(code))
  setTimeout(() => process.exit(code), 200).unref()
}

process.on("uncaughtException", e => fail(`error (${phase}): ${e?.message ?? e}`))
process.on("unhandledRejection", e => fail(`error (${phase}): ${e?.message ?? e}`))

function parseArgs(argv) {
  const [mode, ...rest] = argv
  const opts = { rounds: 200, timeoutMs: 600000 }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]
    const val = () => {
      if (i + 1 >= rest.length) throw new Error(`${a} needs a value`)
      return rest[++i]
    }
    switch (a) {
      case "--url": opts.url = val(); break
      case "--bins": opts.bins = val(); break
      case "--ids": opts.ids = val(); break
      case "--rounds": opts.rounds = Number(val()); break
      case "--window": opts.window = Number(val()); break
      case "--record": opts.record = val(); break
      case "--timeout-ms": opts.timeoutMs = Number(val()); break
      default: throw new Error(`unknown argument ${a}`)
    }
  }
  return { mode, opts }
}

// ---------- inputs ----------

/** The --bins file: [u32 BE length][Automerge.save() bytes], repeated. */
function readBins(file) {
  const buf = readFileSync(file)
  const out = []
  let off = 0
  while (off < buf.length) {
    if (off + 4 > buf.length) throw new Error(`${file}: truncated length prefix at byte ${off}`)
    const len = buf.readUInt32BE(off)
    off += 4
    if (off + len > buf.length) throw new Error(`${file}: record ${out.length} runs past the end of the file`)
    out.push(new Uint8Array(buf.buffer, buf.byteOffset + off, len))
    off += len
  }
  if (out.length === 0) throw new Error(`${file}: no documents`)
  return out
}

/** The --ids file: one automerge URL per line. */
function readIds(file) {
  const urls = readFileSync(file, "utf8").split("\n").map(l => l.trim()).filter(Boolean)
  for (const u of urls) if (!isValidAutomergeUrl(u)) throw new Error(`${file}: not an automerge URL: ${JSON.stringify(u)}`)
  if (urls.length === 0) throw new Error(`${file}: no documents`)
  return urls
}

// ---------- helpers shared with client.mjs ----------

/** Wrap a new adapter so it counts traffic; call before the Repo connects it. */
function countedAdapter(url) {
  const adapter = new BrowserWebSocketClientAdapter(url)
  const stats = { messagesReceived: 0, messagesSent: 0, bytesReceived: 0, longestSilenceMs: 0 }
  let lastFrame
  const frame = () => {
    const now = performance.now()
    if (lastFrame !== undefined) stats.longestSilenceMs = Math.max(stats.longestSilenceMs, now - lastFrame)
    lastFrame = now
  }
  const send = adapter.send.bind(adapter)
  adapter.send = message => {
    stats.messagesSent++
    frame()
    return send(message)
  }
  // Every WebSocket frame goes through receiveMessage (the adapter's onMessage calls it via this).
  const receive = adapter.receiveMessage.bind(adapter)
  adapter.receiveMessage = bytes => {
    stats.bytesReceived += bytes?.byteLength ?? 0
    frame()
    return receive(bytes)
  }
  adapter.on("message", () => stats.messagesReceived++)
  // A dropped connection makes the stock client mark documents it is still requesting as
  // unavailable and invalidates any timing, so it fails the run. (The stock Node server
  // terminates a socket whose pong it has not processed within its 5 s keep-alive, which can
  // happen when it is saturated for seconds.)
  adapter.on("peer-disconnected", () => {
    if (!closing) fail(`error (${phase}): the server closed the connection`)
  })
  return { adapter, stats }
}

/** Records what the server sends on `adapter` (call before the Repo connects it), for
 *  tests/js/replay-server.mjs: every frame, with how many messages for its document this client
 *  had sent when it arrived, and each document's first message from this client.
 *  `save(file, device)` writes them once no frame has moved on `device` for QUIET_MS, so the
 *  server's last answers are in. */
function recorder(adapter) {
  const sent = new Map() // documentId -> messages this client sent for it
  const lines = []
  const send = adapter.send.bind(adapter)
  adapter.send = message => {
    const { documentId, data } = message
    if (documentId) {
      const n = (sent.get(documentId) ?? 0) + 1
      sent.set(documentId, n)
      if (n === 1 && data) lines.push({ documentId, first: Buffer.from(data).toString("base64") })
    }
    return send(message)
  }
  const receive = adapter.receiveMessage.bind(adapter)
  adapter.receiveMessage = bytes => {
    const frame = new Uint8Array(bytes)
    const documentId = cbor.decode(frame).documentId ?? null
    lines.push({ documentId, after: documentId ? (sent.get(documentId) ?? 0) : 0, frame: Buffer.from(frame).toString("base64") })
    return receive(bytes)
  }
  return {
    async save(file, device) {
      phase = "waiting for the server's last answers, to record them"
      await quiet([device])
      writeFileSync(file, lines.map(l => JSON.stringify(l)).join("\n") + "\n")
    },
  }
}

/** A fresh in-memory device on one WebSocket; resolves once the server's `peer` message arrived.
 *  `record` (a path) records what the server sends (see `recorder`). */
async function connect(url, record) {
  const { adapter, stats } = countedAdapter(url)
  const recording = record && recorder(adapter)
  const repo = new Repo({ network: [adapter] })
  // The peer message needs a network round trip, so subscribing right after construction
  // (same tick, as client.mjs does) cannot miss it.
  const peer = new Promise(resolve => {
    repo.networkSubsystem.once("peer", ({ peerId }) => resolve(peerId))
  })
  const device = { repo, adapter, stats, recording }
  devices.push(device)
  const serverPeerId = await peer
  device.storageId = repo.peerMetadataByPeerId[serverPeerId]?.storageId
  if (!device.storageId) {
    throw new Error("server's peer message carried no peerMetadata.storageId; cannot confirm storage")
  }
  return device
}

/** Reject if Fieldbook refuses this document's changes (an ephemeral "fieldbook/rejected"). */
function rejection(handle) {
  return new Promise((_, reject) => {
    handle.on("ephemeral-message", ({ message }) => {
      if (message?.type === "fieldbook/rejected") {
        reject(new Error(`server rejected ${handle.url}: ${message.reason ?? JSON.stringify(message)}`))
      }
    })
  })
}

const OPEN_CHUNK = 100 // documents opened per batch in propagation's setup
const QUIET_MS = 250 // propagation starts once no message moved for this long...
const QUIET_CAP_MS = 30000 // ...or after this long regardless

/** Resolve once no message has been sent or received on any of the devices for QUIET_MS. */
async function quiet(devs) {
  const total = () => devs.reduce((n, d) => n + d.stats.messagesReceived + d.stats.messagesSent, 0)
  const deadline = performance.now() + QUIET_CAP_MS
  let last = total()
  for (;;) {
    await new Promise(r => setTimeout(r, QUIET_MS))
    const now = total()
    if (now === last || performance.now() > deadline) return
    last = now
  }
}

const cpuSeconds = since => {
  const { user, system } = process.cpuUsage(since)
  return (user + system) / 1e6
}
/** The share of the wall clock since `since` (an eventLoopUtilization() reading) that the
 *  event loop was running rather than waiting for I/O. */
const busy = since => round6(performance.eventLoopUtilization(since).utilization)
const round3 = x => Math.round(x * 1000) / 1000
const round6 = x => Math.round(x * 1e6) / 1e6

async function finish(obj) {
  const line = JSON.stringify(obj) + "\n"
  closing = true
  // Close every websocket politely (close frame) before exiting.
  const closed = devices.map(({ adapter, repo }) => {
    const socket = adapter.socket
    const done = socket
      ? new Promise(r => {
          if (socket.readyState >= 2) return r()
          socket.once?.("close", r)
        })
      : Promise.resolve()
    try {
      repo.networkSubsystem.disconnect()
    } catch {}
    return done
  })
  await Promise.race([Promise.all(closed), new Promise(r => setTimeout(r, 500))])
  process.stdout.write(line, () => process.exit(0))
}

// ---------- modes ----------

async function floor(opts) {
  const bins = readBins(opts.bins)
  const docIds = readIds(opts.ids).map(u => parseAutomergeUrl(u).documentId)
  if (docIds.length !== bins.length) throw new Error(`--bins has ${bins.length} documents, --ids ${docIds.length}`)
  const repo = new Repo({ network: [] })

  phase = "importing"
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const handles = bins.map((bytes, i) => repo.import(bytes, { docId: docIds[i] }))
  await Promise.all(handles.map(h => h.whenReady()))
  for (const h of handles) {
    if (h.doc() === undefined) throw new Error(`${h.url}: doc() unreadable after import`)
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(cpu0)

  return finish({ mode: "floor", documents: bins.length, seconds: round6(seconds), client_cpu_seconds: round6(cpu) })
}

/** Finds every document: all at once, or at most `window` pending, the next started as one
 *  resolves. Calls `found` as each resolves; returns the handles in `ids` order. */
async function findAll(repo, ids, window, found = () => {}) {
  const find = u =>
    repo.find(u).then(h => {
      found()
      return h
    })
  if (!window) return Promise.all(ids.map(find))
  const handles = new Array(ids.length)
  let next = 0
  const finder = async () => {
    while (next < ids.length) {
      const i = next++
      handles[i] = await find(ids[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, ids.length) }, finder))
  return handles
}

async function pull(opts) {
  const ids = readIds(opts.ids)

  phase = "connecting and finding every document"
  const cpu0 = process.cpuUsage()
  const elu0 = performance.eventLoopUtilization()
  const t0 = performance.now()
  const { adapter, stats } = countedAdapter(opts.url)
  const recording = opts.record && recorder(adapter)
  const repo = new Repo({ network: [adapter] })
  const device = { repo, adapter, stats }
  devices.push(device)
  let first
  const handles = await findAll(repo, ids, opts.window, () => (first ??= performance.now()))
  const t1 = performance.now()
  const cpu = cpuSeconds(cpu0)
  const clientBusy = busy(elu0)
  const counts = { ...stats }

  phase = "checking the pulled documents"
  const empty = handles.filter(h => h.doc()?.type === undefined)
  if (empty.length > 0) {
    throw new Error(`${empty.length} pulled document(s) have no content (doc.type undefined), e.g. ${empty[0].url}`)
  }
  await recording?.save(opts.record, device)

  return finish({
    mode: "pull",
    documents: ids.length,
    window: opts.window ?? null,
    seconds: round6((t1 - t0) / 1000),
    first_document_seconds: round6((first - t0) / 1000),
    client_cpu_seconds: round6(cpu),
    client_busy: clientBusy,
    longest_silence_seconds: round6(counts.longestSilenceMs / 1000),
    messages_received: counts.messagesReceived,
    messages_sent: counts.messagesSent,
    bytes_received: counts.bytesReceived,
  })
}

async function upload(opts) {
  const bins = readBins(opts.bins)
  phase = "waiting for the server's peer message"
  const device = await connect(opts.url, opts.record)
  const { repo, storageId } = device

  phase = "importing and waiting for the server to store every document"
  const cpu0 = process.cpuUsage()
  const elu0 = performance.eventLoopUtilization()
  const t0 = performance.now()
  const handles = bins.map(bytes => repo.import(bytes))
  await Promise.race([
    Promise.all(handles.map(h => untilServerHas(h, storageId))),
    ...handles.map(rejection),
  ])
  const seconds = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(cpu0)
  const clientBusy = busy(elu0)
  await device.recording?.save(opts.record, device)

  return finish({
    mode: "upload",
    documents: bins.length,
    seconds: round6(seconds),
    client_cpu_seconds: round6(cpu),
    client_busy: clientBusy,
  })
}

async function propagation(opts) {
  const ids = readIds(opts.ids)
  const rounds = opts.rounds

  phase = "connecting devices A and B"
  const [A, B] = await Promise.all([connect(opts.url), connect(opts.url)])
  if (A.storageId !== B.storageId) throw new Error("A and B saw different server storageIds")

  // Untimed setup, in chunks so the server never sees thousands of requests at once (a
  // saturated stock server can drop connections, see countedAdapter).
  const handlesA = []
  const handlesB = []
  for (let i = 0; i < ids.length; i += OPEN_CHUNK) {
    const chunk = ids.slice(i, i + OPEN_CHUNK)
    phase = `opening documents ${i}..${i + chunk.length - 1} on A and B, then catching up with the server`
    const [a, b] = await Promise.all([
      Promise.all(chunk.map(u => A.repo.find(u))),
      Promise.all(chunk.map(u => B.repo.find(u))),
    ])
    await Promise.all([...a.map(h => untilServerHas(h, A.storageId)), ...b.map(h => untilServerHas(h, B.storageId))])
    handlesA.push(...a)
    handlesB.push(...b)
  }
  // Heads agreeing is not the end of the traffic: trailing sync acknowledgements keep flowing
  // for a while. Let the connections go quiet so they do not land in the first rounds.
  phase = "waiting for the connections to go quiet"
  await quiet([A, B])

  const nonce = Math.random().toString(36).slice(2, 10)
  const samples = []
  const cpu0 = process.cpuUsage()
  for (let r = 0; r < rounds; r++) {
    const i = r % ids.length
    const a = handlesA[i]
    const b = handlesB[i]
    const label = `edit ${r} ${nonce}`
    phase = `round ${r}: waiting for B to see ${JSON.stringify(label)} on ${ids[i]}`
    const seen = new Promise(resolve => {
      const onChange = ({ doc }) => {
        if (doc?.purpose === label) {
          b.off("change", onChange)
          resolve(performance.now())
        }
      }
      b.on("change", onChange)
    })
    const t0 = performance.now()
    a.change(d => {
      d.purpose = label
    })
    const stored = Promise.race([untilServerHas(a, A.storageId), rejection(a)])
    const t1 = await seen
    samples.push(t1 - t0)
    phase = `round ${r}: waiting for the server to store A's heads`
    await stored
  }
  const cpu = cpuSeconds(cpu0)

  const sorted = [...samples].sort((x, y) => x - y)
  const rank = q => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]
  const mean = samples.reduce((s, x) => s + x, 0) / samples.length
  return finish({
    mode: "propagation",
    documents: ids.length,
    rounds,
    p50_ms: round3(rank(0.5)),
    p99_ms: round3(rank(0.99)),
    max_ms: round3(sorted[sorted.length - 1]),
    mean_ms: round3(mean),
    samples_ms: samples.map(round3),
    client_cpu_seconds: round6(cpu),
  })
}

async function main() {
  let parsed
  try {
    parsed = parseArgs(process.argv.slice(2))
  } catch (e) {
    return fail(`${e.message}\n${USAGE}`, 2)
  }
  const { mode, opts } = parsed
  if (!MODES.includes(mode)) return fail(USAGE, 2)
  const need = { floor: ["bins", "ids"], pull: ["url", "ids"], upload: ["url", "bins"], propagation: ["url", "ids"] }[mode]
  for (const k of need) if (!opts[k]) return fail(`${mode} needs --${k}\n${USAGE}`, 2)
  if (!(opts.timeoutMs > 0)) return fail("--timeout-ms must be a positive number", 2)
  if (!(Number.isInteger(opts.rounds) && opts.rounds > 0)) return fail("--rounds must be a positive integer", 2)
  if (opts.window !== undefined && !(Number.isInteger(opts.window) && opts.window > 0)) {
    return fail("--window must be a positive integer", 2)
  }
  setTimeout(() => fail(`timeout after ${opts.timeoutMs} ms (${phase})`), opts.timeoutMs)

  switch (mode) {
    case "floor": return floor(opts)
    case "pull": return pull(opts)
    case "upload": return upload(opts)
    case "propagation": return propagation(opts)
  }
}

main().catch(e => fail(`error (${phase}): ${e?.message ?? e}`))
