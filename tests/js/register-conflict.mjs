#!/usr/bin/env node
// Short fields as registers, with the stock automerge-repo client: device A stays online;
// device B (the same user) changes the same short field offline and reconnects while A
// changes it too. A sees both values as a conflict, keeps one by writing it again, and B
// must end with that value and no conflict. Repeated ROUNDS times.
//
//   node register-conflict.mjs WSURL      prints {"rounds", "settled", "slowestMs"}; exit 1 on a stall
import * as Automerge from "@automerge/automerge"
import { getConflicts, ImmutableString, Repo } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

console.log = console.info = console.warn = console.debug = (...a) => console.error(...a)
const url = process.argv[2]
const ROUNDS = 10
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const until = async (ok, ms) => {
  const start = Date.now()
  while (!ok()) {
    if (Date.now() - start > ms) return false
    await sleep(20)
  }
  return true
}
const values = (h) => Object.keys(getConflicts(h.doc(), "present") ?? {}).length

const online = new Repo({ network: [new BrowserWebSocketClientAdapter(url)], peerId: "sam-tablet-a" })
const a = online.create({
  type: "observation", schemaVersion: 1, practitionerId: "pat", observerId: "sam",
  observedAt: "2026-11-20T10:00:00Z", setting: "home-visit", consent: { given: true, by: "mother", how: "verbally" },
  framework: "kss-cf-2018", components: [], status: "shared", signOff: {}, judgements: {}, actions: [],
})
let held = a.doc()
let settled = 0
let slowest = 0
for (let round = 0; round < ROUNDS; round++) {
  const offline = new Repo({ network: [], peerId: `sam-tablet-b${round}` })
  const b = offline.import(Automerge.save(held), { docId: a.documentId })
  b.change((d) => { d.present = new ImmutableString(`b ${round}`) })
  a.change((d) => { d.present = new ImmutableString(`a ${round}`) })
  offline.networkSubsystem.addNetworkAdapter(new BrowserWebSocketClientAdapter(url))
  if (!(await until(() => values(a) === 2, 10_000))) {
    console.error(`round ${round}: device A never saw device B's value`)
    process.exit(1)
  }
  const start = Date.now()
  a.change((d) => { d.present = new ImmutableString(`kept ${round}`) })
  const ok = await until(() => values(b) < 2 && b.doc().present?.val === `kept ${round}`, 10_000)
  if (!ok) {
    console.error(`round ${round}: device B still has ${b.doc().present?.val} with ${values(b)} values after 10 s`)
    process.exit(1)
  }
  slowest = Math.max(slowest, Date.now() - start)
  settled++
  held = b.doc()
  await offline.shutdown()
}
process.stdout.write(`${JSON.stringify({ rounds: ROUNDS, settled, slowestMs: slowest })}\n`, () => process.exit(0))
