import { defineProject } from "vitest/config"
import { aliases } from "../../vitest.shared.ts"

export default defineProject({
  resolve: { alias: aliases },
  test: { include: ["test/**/*.test.ts"] }
})
