#!/usr/bin/env node
// A server that does no work: it answers the stock client from recordings of another server's
// answers (`bench-client.mjs pull|upload --record FILE`), each at the moment the client's message
// arrives. No storage, no checks, no automerge: what a stock client's pull or upload costs the
// client itself, with the recorded server's messages and no wait for any server, which the
// benchmarks compare with the real server's. A document's n-th message from the client is
// answered with the frames the recorded server sent after the client's n-th message for that
// document, addressed to this client and document; the peer message answers `join`. A document
// the recordings do not name (an upload gives each record a new id) is the recorded document
// whose first message from the client had the same bytes: the same record.
// Usage: node replay-server.mjs --port P --recording FILE [--recording FILE…]
// Prints "listening P" once ready; exits 0 on SIGTERM/SIGINT.

import { readFileSync } from "node:fs"
import { cbor } from "@automerge/automerge-repo"
import { WebSocketServer } from "ws"

const values = name => process.argv.flatMap((a, i) => (a === name && i + 1 < process.argv.length ? [process.argv[i + 1]] : []))
const recordings = values("--recording")
if (recordings.length === 0) {
  console.error("usage: node replay-server.mjs --port P --recording FILE [--recording FILE…]")
  process.exit(2)
}

// documentId -> [{after, message}], decoded once here, so answering only re-addresses them;
// a first message's bytes (base64) -> the recorded documents that began with it.
const answers = new Map()
const byFirst = new Map()
let peer
for (const file of recordings) {
  for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean)) {
    const { documentId, after, frame, first } = JSON.parse(line)
    if (first !== undefined) {
      byFirst.set(first, [...(byFirst.get(first) ?? []), documentId])
      continue
    }
    const message = cbor.decode(Buffer.from(frame, "base64"))
    if (!documentId) {
      if (message.type === "peer") peer = message
      continue
    }
    if (!answers.has(documentId)) answers.set(documentId, [])
    answers.get(documentId).push({ after, message })
  }
}
if (!peer) throw new Error(`${recordings.join(", ")}: no peer message recorded`)

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(values("--port")[0] ?? 0) })
wss.on("connection", socket => {
  const received = new Map() // documentId -> messages from this client
  const recorded = new Map() // this client's documentId -> the recorded one
  const taken = new Map() // a first message's bytes -> how many recorded documents it has taken
  let client
  // The next recorded document, not yet taken on this connection, whose first message was `data`.
  const sameRecord = data => {
    const first = Buffer.from(data ?? []).toString("base64")
    const n = taken.get(first) ?? 0
    taken.set(first, n + 1)
    return byFirst.get(first)?.[n]
  }
  socket.on("message", data => {
    const message = cbor.decode(new Uint8Array(data))
    if (message.type === "join") {
      client = message.senderId
      socket.send(cbor.encode({ ...peer, targetId: client }))
      return
    }
    const { documentId } = message
    const n = (received.get(documentId) ?? 0) + 1
    received.set(documentId, n)
    if (n === 1) recorded.set(documentId, answers.has(documentId) ? documentId : sameRecord(message.data))
    for (const answer of answers.get(recorded.get(documentId)) ?? []) {
      if (answer.after === n) socket.send(cbor.encode({ ...answer.message, targetId: client, documentId }))
    }
  })
})
wss.on("listening", () => console.log(`listening ${wss.address().port}`))

const stop = () => wss.close(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
