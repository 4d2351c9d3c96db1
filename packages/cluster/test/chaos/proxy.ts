/**
 * The chaos rig's network: a TCP proxy in front of each node's port. Nodes advertise their proxy's
 * address (`ADVERTISE` in their environment), so every connection between two nodes crosses the
 * proxy of the node it dials. The proxy tells which node opened a connection from its source port
 * (the socket's inode in `/proc/net/tcp`, found among the descriptors of this process's children:
 * Linux only), and stops forwarding between two nodes while they are partitioned. A partition leaves the connections open and silent,
 * as a lost route does; healing resumes them, so what was sent meanwhile arrives late.
 */
import * as Fs from "node:fs"
import * as Net from "node:net"

export interface Network {
  /**
   * Starts the proxy of node `name` on a free port, forwarding to `target`; resolves with its port.
   * The node's process must have `ADVERTISE=127.0.0.1:<that port>` in its environment.
   */
  readonly proxy: (name: string, target: number) => Promise<number>
  readonly partition: (a: string, b: string) => void
  readonly heal: (a: string, b: string) => void
  /** Connections whose opening process was not found (they are never blocked). */
  readonly unidentified: () => number
  readonly close: () => Promise<void>
}

interface Link {
  readonly from: string | undefined
  readonly to: string
  readonly client: Net.Socket
  readonly upstream: Net.Socket
}

const pairOf = (a: string, b: string) => a < b ? `${a}|${b}` : `${b}|${a}`

export const make = (): Network => {
  const servers: Array<Net.Server> = []
  /** The node of each proxy address, and of each child process seen. */
  const names = new Map<string, string>()
  const pids = new Map<number, string | undefined>()
  const blocked = new Set<string>()
  const links = new Set<Link>()
  let unidentified = 0

  const isBlocked = (link: Link) => link.from !== undefined && blocked.has(pairOf(link.from, link.to))

  /** The node whose process holds the socket connected from 127.0.0.1:`port` to 127.0.0.1:`to`. */
  const openerOf = (port: number, to: number): string | undefined => {
    const hex = (n: number) => `0100007F:${n.toString(16).toUpperCase().padStart(4, "0")}`
    let inode: string | undefined
    try {
      for (const line of Fs.readFileSync("/proc/net/tcp", "utf8").split("\n")) {
        const fields = line.trim().split(/\s+/)
        if (fields[1] === hex(port) && fields[2] === hex(to)) inode = fields[9]
      }
      if (inode === undefined) return undefined
      const socket = `socket:[${inode}]`
      for (const pid of children()) {
        const name = nameOf(pid)
        if (name === undefined) continue
        for (const fd of Fs.readdirSync(`/proc/${pid}/fd`)) {
          try {
            if (Fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === socket) return name
          } catch {
            // closed meanwhile
          }
        }
      }
    } catch {
      // a process gone meanwhile
    }
    return undefined
  }

  const children = () =>
    Fs.readdirSync("/proc/self/task").flatMap((task) =>
      Fs.readFileSync(`/proc/self/task/${task}/children`, "utf8").split(" ").filter((pid) => pid !== "").map(Number)
    )

  /** The node a child process runs, by the address it advertises. */
  const nameOf = (pid: number) => {
    if (!pids.has(pid)) {
      const advertise = Fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
        .find((entry) => entry.startsWith("ADVERTISE="))
      pids.set(pid, advertise === undefined ? undefined : names.get(advertise.slice("ADVERTISE=".length)))
    }
    return pids.get(pid)
  }

  /** Copies `src` to `dst` while the link is not blocked, pausing `src` while `dst` is full. */
  const forward = (link: Link, src: Net.Socket, dst: Net.Socket) => {
    src.on("data", (chunk) => {
      if (!dst.write(chunk)) src.pause()
    })
    dst.on("drain", () => {
      if (!isBlocked(link)) src.resume()
    })
  }

  const proxy = (name: string, target: number) =>
    new Promise<number>((resolve, reject) => {
      const server = Net.createServer({ pauseOnConnect: true }, (client) => {
        const port = (server.address() as Net.AddressInfo).port
        const from = openerOf(client.remotePort ?? 0, port)
        if (from === undefined) unidentified++
        const upstream = Net.connect({ host: "127.0.0.1", port: target })
        // Explicitly paused, so the listeners below do not start the flow before the upstream is up.
        client.pause()
        upstream.pause()
        const link: Link = { from, to: name, client, upstream }
        links.add(link)
        const close = () => {
          links.delete(link)
          client.destroy()
          upstream.destroy()
        }
        for (const socket of [client, upstream]) {
          socket.on("error", close)
          socket.on("close", close)
        }
        forward(link, client, upstream)
        forward(link, upstream, client)
        upstream.on("connect", () => {
          if (isBlocked(link)) return
          client.resume()
          upstream.resume()
        })
      })
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as Net.AddressInfo).port
        names.set(`127.0.0.1:${port}`, name)
        resolve(port)
      })
      servers.push(server)
    })

  const between = (a: string, b: string) =>
    Array.from(links).filter((link) => link.from !== undefined && pairOf(link.from, link.to) === pairOf(a, b))

  return {
    proxy,
    partition: (a, b) => {
      blocked.add(pairOf(a, b))
      for (const link of between(a, b)) {
        link.client.pause()
        link.upstream.pause()
      }
    },
    heal: (a, b) => {
      blocked.delete(pairOf(a, b))
      for (const link of between(a, b)) {
        if (link.upstream.connecting) continue
        link.client.resume()
        link.upstream.resume()
      }
    },
    unidentified: () => unidentified,
    close: () =>
      Promise.all(servers.map((server) =>
        new Promise<void>((resolve) => {
          for (const link of links) {
            link.client.destroy()
            link.upstream.destroy()
          }
          server.close(() => resolve())
        })
      )).then(() => undefined)
  }
}
