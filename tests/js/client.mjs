#!/usr/bin/env node
// Command-line stock automerge-repo client for Fieldbook's end-to-end tests.
// Every run is a fresh client: in-memory Repo (no storage, so it advertises
// isEphemeral: true), one BrowserWebSocketClientAdapter (isomorphic-ws -> `ws`
// under Node, so no global WebSocket is needed), default sharePolicy (true).
//
//   node client.mjs create --url WSURL --json '{"a":"b"}'
//   node client.mjs fetch  --url WSURL --doc automerge:...
//   node client.mjs edit   --url WSURL --doc automerge:... --set k=v [--set k2=v2]
//   node client.mjs watch  --url WSURL --doc automerge:... --until k=v
// Common options: --timeout-ms N (default 15000), --peer-id ID.
// create and edit print {"url", "heads"} once the server has stored the change, or
// {"url", "rejected": {type: "fieldbook/rejected", reason, changeHashes}} if it refused it.
//
// watch proves a live push: it connects, finds the document, catches up with the server's
// heads, fails if k=v already holds, and then prints a first line {"ready": true, "url",
// "heads", "doc"}. From then on it sends no request or join and never reconnects; it waits
// for a 'change' event on the handle after which doc[k] === v, checks that it is still on
// the same open WebSocket with no new peer handshake and that it sent no request or join
// meanwhile, and prints {"url", "doc", "headsBefore", "headsAfter", "sentSinceReady",
// "receivedSinceReady", "reconnects"}. Any of those checks failing, or a timeout, exits 1
// with a message saying which.
//
// Success: exactly one JSON line on stdout (two for watch), exit 0. Failure: message on
// stderr, exit 1 (a doc-unavailable answer prints "unavailable: ...").
// "Stored by the server" means: the heads the repo records for the server's
// storageId (from the server's `peer` message, peerMetadata.storageId; updated
// from the heads in the server's sync messages) equal handle.heads().

import { Repo } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { untilServerHas } from "./server-heads.mjs"

// Library code occasionally console.log()s; keep stdout for our one JSON line.
console.log = console.info = console.warn = console.debug = (...a) => console.error(...a)

const USAGE = `usage: client.mjs <create|fetch|edit|watch> --url WSURL [--json JSON] [--doc URL] [--set k=v]... [--until k=v] [--timeout-ms N] [--peer-id ID]`

let phase = "starting"
let repo
let adapter
let socketRef

function fail(msg, code = 1) {
  process.stderr.write(`${msg}\n`, () => process.exit(code))
  setTimeout(() => process.exit(code), 200).unref()
}

process.on("uncaughtException", e => fail(`error (${phase}): ${e?.message ?? e}`))
process.on("unhandledRejection", e => fail(`error (${phase}): ${e?.message ?? e}`))

function parseArgs(argv) {
  const [cmd, ...rest] = argv
  const opts = { set: [], timeoutMs: 15000 }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]
    const val = () => {
      if (i + 1 >= rest.length) throw new Error(`${a} needs a value`)
      return rest[++i]
    }
    switch (a) {
      case "--url": opts.url = val(); break
      case "--json": opts.json = val(); break
      case "--doc": opts.doc = val(); break
      case "--set": opts.set.push(splitKv(val())); break
      case "--until": opts.until = splitKv(val()); break
      case "--timeout-ms": opts.timeoutMs = Number(val()); break
      case "--peer-id": opts.peerId = val(); break
      default: throw new Error(`unknown argument ${a}`)
    }
  }
  return { cmd, opts }
}

function splitKv(s) {
  const i = s.indexOf("=")
  if (i <= 0) throw new Error(`expected key=value, got ${JSON.stringify(s)}`)
  return [s.slice(0, i), s.slice(i + 1)]
}

/** Connect and wait for the server's `peer` message. */
async function connect(url, peerId) {
  adapter = new BrowserWebSocketClientAdapter(url)
  repo = new Repo({ network: [adapter], ...(peerId ? { peerId } : {}) })
  phase = "waiting for the server's peer message"
  const serverPeerId = await new Promise(resolve => {
    repo.networkSubsystem.once("peer", ({ peerId }) => resolve(peerId))
  })
  socketRef = adapter.socket
  const storageId = repo.peerMetadataByPeerId[serverPeerId]?.storageId
  return { serverPeerId, storageId }
}

/** Resolve with Fieldbook's rejection notice ({type: "fieldbook/rejected", reason, changeHashes})
 *  if the server sends one for this document; it arrives as an ordinary ephemeral message. */
function rejection(handle) {
  return new Promise(resolve => {
    handle.on("ephemeral-message", ({ message }) => {
      if (message?.type === "fieldbook/rejected") resolve(message)
    })
  })
}

/** Wait until the server stores our heads, or refuses our changes. */
async function storedOrRejected(handle, storageId) {
  const rejected = await Promise.race([untilServerHas(handle, storageId).then(() => null), rejection(handle)])
  return rejected ? { url: handle.url, rejected } : { url: handle.url, heads: handle.heads() }
}

async function find(docUrl) {
  phase = `finding ${docUrl}`
  try {
    return await repo.find(docUrl)
  } catch (e) {
    const m = String(e?.message ?? e)
    if (/unavailable/i.test(m)) throw Object.assign(new Error(`unavailable: ${m}`), { unavailable: true })
    throw e
  }
}

const plain = handle => JSON.parse(JSON.stringify(handle.doc()))

async function finish(obj) {
  const line = JSON.stringify(obj) + "\n"
  // Close the websocket politely (close frame) before exiting.
  const closed = socketRef
    ? new Promise(r => {
        if (socketRef.readyState >= 2) return r()
        socketRef.once?.("close", r)
      })
    : Promise.resolve()
  try {
    repo?.networkSubsystem.disconnect()
  } catch {}
  await Promise.race([closed, new Promise(r => setTimeout(r, 300))])
  process.stdout.write(line, () => process.exit(0))
}

async function main() {
  let parsed
  try {
    parsed = parseArgs(process.argv.slice(2))
  } catch (e) {
    return fail(`${e.message}\n${USAGE}`, 2)
  }
  const { cmd, opts } = parsed
  if (!["create", "fetch", "edit", "watch"].includes(cmd)) return fail(USAGE, 2)
  if (!opts.url) return fail(`--url is required\n${USAGE}`, 2)
  if (!(opts.timeoutMs > 0)) return fail("--timeout-ms must be a positive number", 2)
  setTimeout(() => fail(`timeout after ${opts.timeoutMs} ms (${phase})`), opts.timeoutMs)

  const { storageId } = await connect(opts.url, opts.peerId)

  switch (cmd) {
    case "create": {
      if (opts.json === undefined) return fail("create needs --json", 2)
      const content = JSON.parse(opts.json)
      const handle = repo.create(content)
      phase = "waiting for the server to store the new document"
      return finish(await storedOrRejected(handle, storageId))
    }
    case "fetch": {
      if (!opts.doc) return fail("fetch needs --doc", 2)
      const handle = await find(opts.doc)
      phase = "waiting to catch up with the server's heads"
      if (storageId) await untilServerHas(handle, storageId)
      return finish({ url: handle.url, doc: plain(handle) })
    }
    case "edit": {
      if (!opts.doc || opts.set.length === 0) return fail("edit needs --doc and --set k=v", 2)
      const handle = await find(opts.doc)
      phase = "waiting to catch up with the server's heads"
      await untilServerHas(handle, storageId)
      handle.change(d => {
        for (const [k, v] of opts.set) d[k] = v
      })
      phase = "waiting for the server to store the edit"
      return finish(await storedOrRejected(handle, storageId))
    }
    case "watch": {
      if (!opts.doc || !opts.until) return fail("watch needs --doc and --until k=v", 2)
      const [k, v] = opts.until
      const handle = await find(opts.doc)
      phase = "waiting to catch up with the server's heads"
      await untilServerHas(handle, storageId)
      if (handle.doc()?.[k] === v) {
        return fail(`${k}=${v} already held when the watch began: this run cannot show a live push`)
      }
      // From here on, everything this client sends and receives, and every sign of a new
      // connection, is recorded: the change must arrive without us asking for it again.
      const socketAtReady = adapter.socket
      const sent = []
      const received = []
      let reconnects = 0
      let socketClosed = false
      const send = adapter.send.bind(adapter)
      adapter.send = message => {
        sent.push({ type: message.type, documentId: message.documentId })
        return send(message)
      }
      adapter.on("message", message => received.push({ type: message.type, documentId: message.documentId }))
      adapter.on("peer-candidate", () => reconnects++)
      socketAtReady.addEventListener("close", () => (socketClosed = true))
      const headsBefore = handle.heads()
      process.stdout.write(JSON.stringify({ ready: true, url: handle.url, heads: headsBefore, doc: plain(handle) }) + "\n")

      phase = `waiting for the server to push ${k}=${v} live (connected, caught up, sending no request)`
      await new Promise(resolve => {
        const onChange = () => {
          if (handle.doc()?.[k] === v) {
            handle.off("change", onChange)
            resolve()
          }
        }
        handle.on("change", onChange)
      })
      const problems = []
      if (adapter.socket !== socketAtReady) problems.push("the adapter opened a new WebSocket")
      if (socketClosed || socketAtReady.readyState !== 1) problems.push("the WebSocket closed")
      if (reconnects > 0) problems.push(`${reconnects} new peer handshake(s)`)
      const asked = sent.filter(m => m.type === "request" || m.type === "join")
      if (asked.length > 0) problems.push(`the client sent ${asked.map(m => m.type).join(", ")} after it was ready`)
      if (!received.some(m => m.type === "sync" && m.documentId === handle.documentId)) {
        problems.push("no sync message for the document arrived after the client was ready")
      }
      if (problems.length > 0) {
        return fail(`saw ${k}=${v}, but not as a live push on the open connection: ${problems.join("; ")}`)
      }
      return finish({
        url: handle.url,
        doc: plain(handle),
        headsBefore,
        headsAfter: handle.heads(),
        sentSinceReady: sent.map(m => m.type),
        receivedSinceReady: received.map(m => m.type),
        reconnects,
      })
    }
  }
}

main().catch(e => fail(e?.unavailable ? e.message : `error (${phase}): ${e?.message ?? e}`))
