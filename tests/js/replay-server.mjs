#!/usr/bin/env node
// A server that does no work: it answers the stock client from a recording of another server's
// answers (`bench-client.mjs record`), each at the moment the client's message arrives. No
// storage, no checks, no automerge: what a stock client's pull costs the client itself, with the
// recorded server's messages and no wait for any server, which the benchmarks compare with the
// real server's pull. Answers a document's n-th message from the client with the frames the
// recorded server sent after the client's n-th message for that document; the peer message
// answers `join`. Usage: node replay-server.mjs --recording FILE --port P
// Prints "listening P" once ready; exits 0 on SIGTERM/SIGINT.

import { readFileSync } from "node:fs"
import { cbor } from "@automerge/automerge-repo"
import { WebSocketServer } from "ws"

const arg = name => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const recording = arg("--recording")
if (!recording) {
  console.error("usage: node replay-server.mjs --recording FILE --port P")
  process.exit(2)
}

// documentId -> [{after, message}]; decoded once here, so answering only re-addresses them.
const answers = new Map()
let peer
for (const line of readFileSync(recording, "utf8").split("\n").filter(Boolean)) {
  const { documentId, after, frame } = JSON.parse(line)
  const message = cbor.decode(Buffer.from(frame, "base64"))
  if (!documentId) {
    if (message.type === "peer") peer = message
    continue
  }
  if (!answers.has(documentId)) answers.set(documentId, [])
  answers.get(documentId).push({ after, message })
}
if (!peer) throw new Error(`${recording}: no peer message recorded`)

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(arg("--port") ?? 0) })
wss.on("connection", socket => {
  const received = new Map() // documentId -> messages from this client
  let client
  socket.on("message", data => {
    const message = cbor.decode(new Uint8Array(data))
    if (message.type === "join") {
      client = message.senderId
      socket.send(cbor.encode({ ...peer, targetId: client }))
      return
    }
    const n = (received.get(message.documentId) ?? 0) + 1
    received.set(message.documentId, n)
    for (const answer of answers.get(message.documentId) ?? []) {
      if (answer.after === n) socket.send(cbor.encode({ ...answer.message, targetId: client }))
    }
  })
})
wss.on("listening", () => console.log(`listening ${wss.address().port}`))

const stop = () => wss.close(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
