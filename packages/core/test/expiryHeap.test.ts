import { assert, describe, it } from "@effect/vitest"
import * as fc from "effect/FastCheck"
import type { HeapItem } from "../src/internal/expiryHeap.js"
import { ExpiryHeap } from "../src/internal/expiryHeap.js"

/** The entry a heap must give: the soonest expiry, of equal ones the first written. */
const soonest = (items: Iterable<HeapItem>): HeapItem | undefined => {
  let best: HeapItem | undefined
  for (const item of items) {
    if (
      best === undefined || item.expiresAt! < best.expiresAt! ||
      (item.expiresAt === best.expiresAt && item.seq < best.seq)
    ) best = item
  }
  return best
}

describe("ExpiryHeap", () => {
  it.prop(
    "peek gives the soonest entry by its current expiry, through pushes, re-timings (sooner and later) and removals",
    [
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant("push" as const), expiresAt: fc.integer({ min: 0, max: 50 }) }),
          fc.record({
            op: fc.constant("retime" as const),
            pick: fc.nat(),
            expiresAt: fc.integer({ min: 0, max: 50 })
          }),
          fc.record({ op: fc.constant("remove" as const), pick: fc.nat() }),
          fc.record({ op: fc.constant("pop" as const) })
        ),
        { minLength: 20, maxLength: 200 }
      )
    ],
    ([ops]) => {
      const heap = new ExpiryHeap<HeapItem>()
      const live = new Set<HeapItem>()
      let seq = 0
      for (const op of ops) {
        const items = Array.from(live)
        switch (op.op) {
          case "push": {
            const item = { expiresAt: op.expiresAt, seq: seq++, heapIndex: -1 }
            heap.push(item)
            live.add(item)
            break
          }
          case "retime": {
            if (items.length === 0) break
            // As the store re-writes an entry: a new expiry and a new write number.
            const item = items[op.pick % items.length]
            item.expiresAt = op.expiresAt
            item.seq = seq++
            heap.retime(item)
            break
          }
          case "remove": {
            if (items.length === 0) break
            const item = items[op.pick % items.length]
            heap.remove(item)
            live.delete(item)
            assert.strictEqual(item.heapIndex, -1)
            break
          }
          case "pop": {
            const top = heap.peek()
            if (top === undefined) break
            heap.remove(top)
            live.delete(top)
            break
          }
        }
        assert.strictEqual(heap.size, live.size)
        assert.strictEqual(heap.peek(), soonest(live))
      }
      // Drained, they come out in order.
      let previous: HeapItem | undefined
      for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
        assert.strictEqual(top, soonest(live))
        if (previous !== undefined) {
          assert.isTrue(
            previous.expiresAt! < top.expiresAt! || (previous.expiresAt === top.expiresAt && previous.seq < top.seq)
          )
        }
        heap.remove(top)
        live.delete(top)
        previous = top
      }
    }
  )
})
