import { assert, describe, it } from "@effect/vitest"
import { encode, preAuthGate, reader } from "../src/internal/frames.js"

/** What `reader` makes of `chunks`: the messages, and the error if any. */
const read = (maxFrameBytes: number, chunks: ReadonlyArray<Buffer>) => {
  const messages: Array<unknown> = []
  const errors: Array<string> = []
  const feed = reader(maxFrameBytes, (message) => messages.push(message), (reason) => errors.push(reason))
  for (const chunk of chunks) feed(chunk)
  return { messages, errors }
}

/** `bytes` cut into pieces of `size`. */
const pieces = (bytes: Buffer, size: number) =>
  Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size))

describe("frames", () => {
  it("reader: frames cut anywhere, even a byte at a time, decode to what was sent", () => {
    const sent = ["nonce", [1, 2, [{ _tag: "Get", ns: "x", key: "k", watch: false }]], { big: "v".repeat(70_000) }]
    const stream = Buffer.concat(sent.map(encode))
    for (const size of [1, 3, 4, 5, 1000, 65_536, stream.length]) {
      assert.deepStrictEqual(read(1 << 20, pieces(stream, size)), { messages: sent, errors: [] }, `pieces of ${size}`)
    }
  })

  it("reader: a header over maxFrameBytes fails at once, before its body; bytes that do not decode fail", () => {
    assert.strictEqual(read(1024, [Buffer.from([0x00, 0x00, 0x04, 0x01])]).errors.length, 1)
    // A frame of one byte that opens an array of two and ends there.
    const notMsgPack = Buffer.from([0x00, 0x00, 0x00, 0x01, 0x92])
    assert.strictEqual(read(1024, [notMsgPack]).errors.length, 1)
    // After a failure nothing more is read, not even a good frame.
    assert.deepStrictEqual(read(1024, [notMsgPack, encode("later")]).messages, [])
  })

  it("preAuthGate: a handshake passes; a header announcing more than is left fails on the header alone", () => {
    const handshake = Buffer.concat([encode("nonce"), encode([{ id: "127.0.0.1:4370", incarnation: 1 }, "proof"])])
    for (const size of [1, 2, 7, handshake.length]) {
      const pass = preAuthGate(8192, 0)
      assert.isTrue(pieces(handshake, size).every(pass), `pieces of ${size}`)
    }
    // The header of a frame of 8 KiB + 1, split across two reads: refused when its last byte comes.
    const pass = preAuthGate(8192, 0)
    assert.isTrue(pass(Buffer.from([0x00, 0x00])))
    assert.isFalse(pass(Buffer.from([0x20, 0x01])))
    // A bin32 MessagePack header read as a frame length.
    assert.isFalse(preAuthGate(8192, 0)(Buffer.from([0xc6, 0x7f, 0xff, 0xff, 0xff])))
    // The lane's opening is skipped, then its frames are read the same way.
    const lane = preAuthGate(8192, 4)
    assert.isTrue(lane(Buffer.from([0xc1, 0x56, 0x4c, 0x31])))
    assert.isFalse(lane(Buffer.from([0x00, 0x01, 0x00, 0x00])))
  })

  it("preAuthGate: frames within the bound that add up to more than it fail", () => {
    const pass = preAuthGate(8192, 0)
    const frame = encode("x".repeat(1000))
    const outcomes = Array.from({ length: 10 }, () => pass(frame))
    assert.deepStrictEqual(outcomes, [true, true, true, true, true, true, true, true, false, false])
  })
})
