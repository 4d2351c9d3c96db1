import * as effectEslint from "@effect/eslint-plugin"
import eslint from "@eslint/js"
import globals from "globals"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["**/dist", "**/node_modules", "**/*.md", "bench/**"] },
  eslint.configs.recommended,
  tseslint.configs.recommended,
  effectEslint.configs.dprint,
  {
    languageOptions: { globals: globals.node },
    rules: {
      "no-unused-vars": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      // The rules of the Effect monorepo's own config that fit here.
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/array-type": ["error", { default: "generic", readonly: "generic" }],
      "object-shorthand": "error",
      "no-fallthrough": "error",
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }]
    }
  },
  {
    // Libraries report through Telemetry, never the console; the bench and the examples are programs.
    files: ["packages/{core,cluster,backend-redis,backend-sqlite,keyv}/src/**/*.ts"],
    rules: { "no-console": "error" }
  },
  {
    // Deep imports (effect/Effect, not the barrel): the barrel alone costs an import ~0.75 s.
    files: ["packages/{core,cluster,backend-redis,backend-sqlite,keyv}/src/**/*.ts"],
    rules: { "@effect/no-import-from-barrel-package": ["error", { packageNames: ["effect"] }] }
  }
)
