// Whether the server has stored a document, as a stock automerge-repo client can tell: the
// heads the repo records for the server's storageId (from the server's `peer` message,
// peerMetadata.storageId; updated from the heads in the server's sync messages) equal
// handle.heads(). Shared by client.mjs and bench-client.mjs.

export const sameHeads = (a, b) =>
  Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
  [...a].sort().join(",") === [...b].sort().join(",")

/** Resolve once the repo's record of the server's heads equals handle.heads(). */
export function untilServerHas(handle, storageId) {
  if (!storageId) {
    throw new Error("server's peer message carried no peerMetadata.storageId; cannot confirm storage")
  }
  return new Promise(resolve => {
    const check = () => {
      if (sameHeads(handle.getSyncInfo(storageId)?.lastHeads, handle.heads())) {
        handle.off("remote-heads", check)
        handle.off("heads-changed", check)
        resolve()
        return true
      }
      return false
    }
    if (!check()) {
      handle.on("remote-heads", check)
      handle.on("heads-changed", check)
    }
  })
}
