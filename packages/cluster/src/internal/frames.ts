/**
 * Framing of every connection between nodes, on the data lane and under `@effect/rpc` alike: a
 * frame is a u32 big-endian length and that many bytes of MessagePack. The length comes first so
 * that a reader can refuse a frame from its header alone, and buffer a frame's pieces once, not
 * re-parse a growing prefix on every read (what MessagePack's own self-delimiting framing costs).
 */
import { RpcSerialization } from "@effect/rpc"
import * as Data from "effect/Data"
import { Packr, Unpackr } from "msgpackr"

const packr = new Packr({ useRecords: true })
const unpackr = new Unpackr({ useRecords: true })

export const encode = (message: unknown): Buffer => {
  const body = packr.pack(message)
  const frame = Buffer.allocUnsafe(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, 4)
  return frame
}

/**
 * Cuts a byte stream into decoded frames. `onFrame` gets each; a frame over `maxFrameBytes` (told
 * by its header, before its body is buffered) or one that does not decode calls `onError` once,
 * after which the reader ignores everything. The pieces of a frame that arrives in several reads
 * are joined once, when the last one arrives: the cost is linear in the bytes received.
 */
export const reader = (
  maxFrameBytes: number,
  onFrame: (message: unknown) => void,
  onError: (reason: string) => void
) => {
  const pieces: Array<Buffer> = []
  let buffered = 0
  /** The length of the whole frame being read (header included), once its header is in. */
  let wanted = 0
  let failed = false
  const fail = (reason: string) => {
    failed = true
    pieces.length = 0
    onError(reason)
  }
  return (chunk: Buffer) => {
    if (failed) return
    pieces.push(chunk)
    buffered += chunk.length
    if (buffered < 4 || buffered < wanted) return
    let buffer = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, buffered)
    pieces.length = 0
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0)
      if (length > maxFrameBytes) return fail(`a frame of ${length} bytes is over the bound of ${maxFrameBytes}`)
      wanted = 4 + length
      if (buffer.length < wanted) break
      let message: unknown
      try {
        message = unpackr.unpack(buffer.subarray(4, wanted))
      } catch (error) {
        return fail(`a frame that is not MessagePack: ${error instanceof Error ? error.message : String(error)}`)
      }
      buffer = buffer.subarray(wanted)
      wanted = 0
      onFrame(message)
      if (failed) return
    }
    buffered = buffer.length
    if (buffered > 0) pieces.push(buffer)
  }
}

/**
 * A bad frame on an RPC connection. Tagged as `@effect/rpc`'s own serialization error, which is
 * what makes its server close the connection rather than answer with a defect and read on.
 */
class BadFrame extends Data.TaggedError("RpcSerializationError")<{ readonly message: string }> {}

/** `@effect/rpc` over these frames, each at most `maxFrameBytes`. */
export const serialization = (maxFrameBytes: number): RpcSerialization.RpcSerialization["Type"] =>
  RpcSerialization.RpcSerialization.of({
    contentType: "application/x-vela-frames",
    includesFraming: true,
    unsafeMake: () => {
      let decoded: Array<unknown> = []
      const read = reader(maxFrameBytes, (message) => decoded.push(message), (reason) => {
        throw new BadFrame({ message: reason })
      })
      return {
        decode: (bytes) => {
          read(
            typeof bytes === "string" ? Buffer.from(bytes) : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
          )
          const messages = decoded
          decoded = []
          return messages
        },
        encode
      }
    }
  })

/**
 * Watches what a connection sends before it proves the secret, without keeping any of it: at most
 * `budget` bytes in all, and no frame whose header announces more than what is left of the budget,
 * so a large frame is refused from its header alone. `skip`: bytes before the first frame header.
 * Returns whether the connection may go on.
 */
export const preAuthGate = (budget: number, skip: number) => {
  let left = budget
  /** Bytes of the current frame body (or of the opening) still to come. */
  let body = skip
  let header = 0
  let headerBytes = 0
  return (chunk: Uint8Array): boolean => {
    left -= chunk.length
    if (left < 0) return false
    let at = 0
    while (at < chunk.length) {
      if (body > 0) {
        const n = Math.min(body, chunk.length - at)
        body -= n
        at += n
        continue
      }
      header = header * 256 + chunk[at++]
      if (++headerBytes < 4) continue
      if (header > left + chunk.length - at) return false
      body = header
      header = 0
      headerBytes = 0
    }
    return true
  }
}
