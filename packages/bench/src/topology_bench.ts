/**
 * topology_bench: the Local topology against Partitioned over 3 cluster nodes. Not measured yet: see
 * the note it returns.
 */
import type { SuiteResult } from "./internal/report.js"
import { progress } from "./internal/report.js"

export const run = async (): Promise<SuiteResult> => {
  progress("topology: not measured yet")
  return {
    name: "topology",
    title: "topology_bench: Local vs Partitioned (3 nodes)",
    description: "Not measured yet.",
    tables: [],
    charts: [],
    notes: ["topology_bench: not measured yet (Local vs Partitioned over 3 nodes of @vela/cluster)."],
    data: null
  }
}
