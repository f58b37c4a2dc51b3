// Minimal CBOR walker used by capture-fixtures.mjs to describe frames exactly as
// they are on the wire (byte strings vs tagged typed arrays, undefined, float
// widths), which cbor-x's own decoder hides.

const hex = b => Buffer.from(b).toString("hex")

/**
 * Decode one CBOR item.
 * Returns { json, diag, annotations } where
 *  - json: a JSON-safe value (byte strings as hex strings, undefined as null)
 *  - diag: RFC 8949 style diagnostic notation (h'..' bytes, 64(h'..') tags,
 *    `undefined`, floats suffixed _1/_2/_3 for half/single/double)
 *  - annotations: [{ path, kind, ... }] for everything JSON cannot show:
 *    "cbor-byte-string" (major type 2), "tag" (major type 6, with the tag
 *    number), "undefined" (simple 23), "float16"/"float32"/"float64",
 *    "non-minimal-header" (e.g. cbor-x's 0xb9 0x00 0x04 for a 4-entry map).
 */
export function describe(buf) {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf)
  let pos = 0
  const annotations = []

  const readUint = (info) => {
    if (info < 24) return info
    if (info === 24) return bytes[pos++]
    if (info === 25) {
      const v = (bytes[pos] << 8) | bytes[pos + 1]
      pos += 2
      return v
    }
    if (info === 26) {
      const v = new DataView(bytes.buffer, bytes.byteOffset + pos, 4).getUint32(0)
      pos += 4
      return v
    }
    if (info === 27) {
      const v = new DataView(bytes.buffer, bytes.byteOffset + pos, 8).getBigUint64(0)
      pos += 8
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
    }
    throw new Error(`unsupported additional info ${info} at ${pos}`)
  }

  const minimalInfo = v => (v < 24 ? v : v < 0x100 ? 24 : v < 0x10000 ? 25 : v < 0x100000000 ? 26 : 27)
  const item = (path) => {
    const initial = bytes[pos++]
    const major = initial >> 5
    const info = initial & 0x1f
    if (info === 31) throw new Error(`indefinite-length item at ${pos - 1} (${path})`)
    if (major <= 6 && info >= 24) {
      // peek the argument to flag non-minimal ("non-canonical") headers
      const save = pos
      const v = readUint(info)
      pos = save
      if (typeof v === "number" && minimalInfo(v) !== info) {
        annotations.push({
          path: path || "<root>",
          kind: "non-minimal-header",
          major,
          argument: v,
          headerBytes: 1 + (1 << (info - 24)),
        })
      }
    }
    switch (major) {
      case 0: {
        const v = readUint(info)
        return { json: typeof v === "bigint" ? v.toString() : v, diag: String(v) }
      }
      case 1: {
        const v = readUint(info)
        const n = typeof v === "bigint" ? -1n - v : -1 - v
        return { json: typeof n === "bigint" ? n.toString() : n, diag: String(n) }
      }
      case 2: {
        const len = readUint(info)
        const b = bytes.subarray(pos, pos + len)
        pos += len
        annotations.push({ path, kind: "cbor-byte-string", length: len })
        return { json: hex(b), diag: `h'${hex(b)}'` }
      }
      case 3: {
        const len = readUint(info)
        const s = Buffer.from(bytes.subarray(pos, pos + len)).toString("utf8")
        pos += len
        return { json: s, diag: JSON.stringify(s) }
      }
      case 4: {
        const len = readUint(info)
        const json = []
        const diags = []
        for (let i = 0; i < len; i++) {
          const r = item(`${path}[${i}]`)
          json.push(r.json)
          diags.push(r.diag)
        }
        return { json, diag: `[${diags.join(", ")}]` }
      }
      case 5: {
        const len = readUint(info)
        const json = {}
        const diags = []
        for (let i = 0; i < len; i++) {
          const k = item(`${path}{key}`)
          const key = typeof k.json === "string" ? k.json : JSON.stringify(k.json)
          const v = item(path ? `${path}.${key}` : key)
          json[key] = v.json
          diags.push(`${k.diag}: ${v.diag}`)
        }
        return { json, diag: `{${diags.join(", ")}}` }
      }
      case 6: {
        const tag = readUint(info)
        const start = pos
        const inner = item(path)
        annotations.push({ path, kind: "tag", tag, innerBytes: pos - start })
        return { json: { $tag: tag, value: inner.json }, diag: `${tag}(${inner.diag})` }
      }
      case 7: {
        if (info === 20) return { json: false, diag: "false" }
        if (info === 21) return { json: true, diag: "true" }
        if (info === 22) return { json: null, diag: "null" }
        if (info === 23) {
          annotations.push({ path, kind: "undefined" })
          return { json: null, diag: "undefined" }
        }
        const dv = new DataView(bytes.buffer, bytes.byteOffset + pos)
        let v
        let w
        if (info === 25) {
          v = halfToFloat(dv.getUint16(0))
          pos += 2
          w = 1
        } else if (info === 26) {
          v = dv.getFloat32(0)
          pos += 4
          w = 2
        } else if (info === 27) {
          v = dv.getFloat64(0)
          pos += 8
          w = 3
        } else {
          const s = info < 24 ? info : bytes[pos++]
          return { json: null, diag: `simple(${s})` }
        }
        annotations.push({ path, kind: ["", "float16", "float32", "float64"][w] })
        return { json: v, diag: `${v}_${w}` }
      }
    }
    throw new Error("unreachable")
  }

  const r = item("")
  if (pos !== bytes.length) {
    throw new Error(`trailing bytes: consumed ${pos} of ${bytes.length}`)
  }
  return { json: r.json, diag: r.diag, annotations }
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const f = h & 0x3ff
  if (e === 0) return s * 2 ** -14 * (f / 1024)
  if (e === 31) return f ? NaN : s * Infinity
  return s * 2 ** (e - 15) * (1 + f / 1024)
}
