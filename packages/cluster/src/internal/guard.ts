/**
 * Guards compiled from a Schema's AST, for the data lane's hot path. A compiled guard accepts what
 * `Schema.is` of the same Schema accepts (required fields present, optional ones absent or valid,
 * other fields ignored, no tuple element beyond the Schema's), without the parser's `Either` and
 * output copy per field: `Schema.is` of a batch costs 10–20 times as much (0.4–0.7 µs an operation
 * on the idle bench machine, 2–4 µs under load; a remote get's whole budget is a few tens of µs). There is no second description of
 * a message: the guard is derived from the Schema, once. Only the AST nodes the lane's messages use
 * compile; any other throws when the guard is built, so a Schema that gains a refinement or a
 * transformation fails as the module loads, never passes unchecked.
 */
import type * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

type Guard = (u: unknown) => boolean

/** The guard of `schema`'s type side, built once. */
export const compile = <A, I>(schema: Schema.Schema<A, I, never>): (u: unknown) => u is A =>
  go(AST.typeAST(schema.ast)) as (u: unknown) => u is A

const isRecord = (u: unknown): u is Record<PropertyKey, unknown> => typeof u === "object" && u !== null

const unsupported = (ast: AST.AST): never => {
  throw new Error(`internal/guard.ts cannot compile ${ast._tag} (${String(ast)}); use Schema.is for it`)
}

const go = (ast: AST.AST): Guard => {
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => typeof u === "string"
    case "NumberKeyword":
      return (u) => typeof u === "number"
    case "BooleanKeyword":
      return (u) => typeof u === "boolean"
    case "UndefinedKeyword":
      return (u) => u === undefined
    case "Literal": {
      const literal = ast.literal
      return (u) => u === literal
    }
    case "TupleType":
      return tuple(ast)
    case "TypeLiteral":
      return struct(ast)
    case "Union":
      return union(ast)
    default:
      return unsupported(ast)
  }
}

const tuple = (ast: AST.TupleType): Guard => {
  if (ast.rest.length > 1 || ast.elements.some((element) => element.isOptional)) return unsupported(ast)
  const elements = ast.elements.map((element) => go(element.type))
  const rest = ast.rest.length === 1 ? go(ast.rest[0].type) : undefined
  return (u) => {
    if (!Array.isArray(u) || (rest === undefined ? u.length !== elements.length : u.length < elements.length)) {
      return false
    }
    for (let i = 0; i < elements.length; i++) if (!elements[i](u[i])) return false
    for (let i = elements.length; i < u.length; i++) if (!rest!(u[i])) return false
    return true
  }
}

const struct = (ast: AST.TypeLiteral): Guard => {
  if (ast.indexSignatures.length > 0) return unsupported(ast)
  const names = ast.propertySignatures.map((field) => field.name)
  const optional = ast.propertySignatures.map((field) => field.isOptional)
  const guards = ast.propertySignatures.map((field) => go(field.type))
  return (u) => {
    if (!isRecord(u)) return false
    for (let i = 0; i < names.length; i++) {
      const value = u[names[i]]
      if (value === undefined && !Object.hasOwn(u, names[i])) {
        if (optional[i]) continue
        return false
      }
      if (!guards[i](value)) return false
    }
    return true
  }
}

/** The literal `_tag` of a struct, when it has one. */
const tagOf = (ast: AST.AST): AST.LiteralValue | undefined => {
  if (ast._tag !== "TypeLiteral") return undefined
  const tag = ast.propertySignatures.find((field) => field.name === "_tag" && !field.isOptional)
  return tag?.type._tag === "Literal" ? tag.type.literal : undefined
}

/** A union of tagged structs looks its member up by `_tag`; any other tries each member. */
const union = (ast: AST.Union): Guard => {
  const members = ast.types.map(go)
  const tags = ast.types.map(tagOf)
  if (tags.every((tag) => tag !== undefined) && new Set(tags).size === tags.length) {
    const byTag = new Map(tags.map((tag, i) => [tag, members[i]]))
    return (u) => {
      if (!isRecord(u)) return false
      const member = byTag.get(u._tag as AST.LiteralValue)
      return member !== undefined && member(u)
    }
  }
  return (u) => {
    for (let i = 0; i < members.length; i++) if (members[i](u)) return true
    return false
  }
}
