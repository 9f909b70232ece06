// js-libp2p peer for mote's interop tests; started by interop/js.go from a
// cache directory where `npm ci` installed the pinned packages of
// package-lock.json.
//
// Serve mode (no arguments):
//
//	node peer.mjs
//
// listens on /ip4/127.0.0.1/tcp/0 only (TCP; noise and TLS; yamux; identify,
// identify push and ping; no discovery, bootstrap, DHT, AutoNAT or UPnP, so it
// talks to nobody who does not dial it) and prints one JSON line on stdout:
//
//	{"id": "<peer id>", "addrs": ["/ip4/127.0.0.1/tcp/N/p2p/<peer id>"], "version": "<js-libp2p version>", "agent": "<identify agent>", "protocols": [...]}
//
// It serves two echo protocols, which send every byte back until the remote
// closes its write side, then close theirs:
//
//   - /echo/1.0.0 reads the stream through its events and state, so it sees
//     the remote's FIN whenever that arrived (see readStream);
//   - /echo-stock/1.0.0 is js-libp2p's own echo helper (@libp2p/utils echo),
//     which reads with `for await (const chunk of stream)` like most
//     js-libp2p handlers, and never ends if the FIN came before its loop
//     started (see stockEchoHandler).
//
// It runs until stdin closes or it gets SIGTERM/SIGINT, then stops the node
// and exits 0. Diagnostics go to stderr.
//
// Dial mode:
//
//	node peer.mjs dial <multiaddr with /p2p/> <protocol> <streams> <bytes> [stream timeout ms]
//
// connects, waits for identify of the remote, opens <streams> concurrent
// streams for <protocol>, writes <bytes> random bytes on each, closes the
// write side, reads until the remote closes its write side and checks the
// echo. It prints one JSON line and exits 0:
//
//	{"ok": n, "failed": m, "errors": ["..."], "ms": elapsed, "identifyError": "", "remoteAgent": "...", "remoteProtocols": [...], "fatal": ""}
//
// "fatal" is set when no stream could be tried at all (bad address, connect
// failure). Every stream has its own timeout, so a hung stream is a reported
// failure and never a hung process. Usage errors exit 2. js-libp2p 3.3.11
// always negotiates outbound streams in full (multistream-select's select
// ignores the documented negotiateFully option), so waiting for identify
// does not make the dialer optimistic; it only makes sure both sides are
// fully up before the streams start.
//
// Streams are read through their events ('message', 'remoteCloseWrite',
// 'end', 'close') and remoteWriteStatus rather than with `for await (const
// chunk of stream)`: in js-libp2p 3.3.x the stream's async iterator ends
// only on a 'remoteCloseWrite' or 'close' event that fires after the loop
// starts, so a FIN that arrived earlier (with the protocol proposal, during
// multistream-select, or between negotiation and the handler) leaves it
// waiting forever.
//
// Also of note when driving this peer: js-libp2p queues streams that arrive
// before its side of an inbound connection is set up and aborts the whole
// connection (MaxEarlyStreamsError) beyond 10 of them, so a dialer that
// opens many streams the moment its handshake completes can lose the
// connection; waiting for identify avoids that.

import { randomBytes } from 'node:crypto'
import process from 'node:process'

// js-libp2p 3.3.x and its dependencies (it-queue, mortice, yamux, utils...)
// call Promise.withResolvers, which Node has only from v22 on, while none
// of them declares an engine that would say so. Provide it (as specified in
// ES2024) before any of them is loaded, hence the dynamic imports below.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    value: function withResolvers () {
      let resolve, reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
    writable: true,
    configurable: true
  })
}

const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify, identifyPush } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { tcp } = await import('@libp2p/tcp')
const { tls } = await import('@libp2p/tls')
const { multiaddr } = await import('@multiformats/multiaddr')
const { echo: stockEcho } = await import('@libp2p/utils')
const { createLibp2p } = await import('libp2p')
const { userAgent } = await import('libp2p/user-agent')
const { version: libp2pVersion } = await import('libp2p/version')

const ECHO = '/echo/1.0.0'
const ECHO_STOCK = '/echo-stock/1.0.0'
const MAX_STREAMS = 1024 // per connection and protocol (js default: 32 in, 64 out)
const DIAL_TIMEOUT_MS = 20_000
const IDENTIFY_TIMEOUT_MS = 10_000
const DEFAULT_STREAM_TIMEOUT_MS = 20_000
const SERVE_STREAM_TIMEOUT_MS = 120_000 // inbound echo streams
const STOP_TIMEOUT_MS = 5_000
const CHUNK = 64 << 10

function log (...args) {
  process.stderr.write(`peer.mjs: ${args.join(' ')}\n`)
}

function errText (err) {
  if (err == null) return 'unknown error'
  const name = err.name != null && err.name !== 'Error' ? `${err.name}: ` : ''
  return `${name}${err.message ?? String(err)}`
}

// Keep running (and say so on stderr) if some part of js-libp2p drops a
// rejected promise; a crash would take every test using this peer with it.
process.on('unhandledRejection', (err) => { log('unhandled rejection:', errText(err)) })
process.on('uncaughtException', (err) => { log('uncaught exception:', err?.stack ?? errText(err)) })

async function newNode (listen) {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise(), tls()],
    streamMuxers: [yamux()],
    // Nothing else: no peerDiscovery (bootstrap, mDNS), no peerRouters or
    // contentRouters (DHT, delegated routing), no AutoNAT, UPnP, relay or
    // DCUtR. The connection monitor (pings over open connections) stays on,
    // as in a default js-libp2p node.
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping()
    }
  })
}

// readStream calls onChunk for every chunk the remote sends and resolves once
// the remote has closed its write side and everything before the FIN was
// delivered; it rejects when the stream is reset or aborted, or signal fires.
// When onChunk returns a promise (back pressure), reading pauses until it
// settles.
function readStream (stream, onChunk, signal) {
  return new Promise((resolve, reject) => {
    let done = false
    let waiting = false
    const finish = (err) => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('remoteCloseWrite', check)
      stream.removeEventListener('end', check)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err == null) resolve()
      else reject(err)
    }
    // Run after the current event dispatch: the stream updates readStatus
    // and its buffer after its listeners return.
    const check = () => queueMicrotask(() => {
      if (!done && !waiting && stream.remoteWriteStatus !== 'writable' && stream.readBufferLength === 0) {
        finish()
      }
    })
    const onMessage = (evt) => {
      let r
      try {
        r = onChunk(evt.data)
      } catch (err) {
        finish(err)
        return
      }
      if (r != null && typeof r.then === 'function') {
        waiting = true
        if (stream.readStatus === 'readable') stream.pause()
        r.then(() => {
          waiting = false
          if (done) return
          if (stream.readStatus === 'paused') stream.resume()
          check()
        }, finish)
        return
      }
      check()
    }
    const onClose = (evt) => {
      if (evt.error != null) finish(evt.error)
      else check()
    }
    const onAbort = () => finish(signal.reason ?? new Error('aborted'))
    if (signal?.aborted) {
      onAbort()
      return
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    stream.addEventListener('close', onClose)
    stream.addEventListener('remoteCloseWrite', check)
    stream.addEventListener('end', check)
    // Adding a 'message' listener makes the stream emit what it buffered
    // (e.g. bytes multistream-select read ahead) in a microtask.
    stream.addEventListener('message', onMessage)
    check() // the FIN may already have arrived
  })
}

// send writes data, waiting for the stream to drain when it asks to.
async function send (stream, data, signal) {
  if (!stream.send(data)) {
    await stream.onDrain({ signal })
  }
}

async function echoHandler (stream, connection) {
  const signal = AbortSignal.timeout(SERVE_STREAM_TIMEOUT_MS)
  let n = 0
  try {
    await readStream(stream, (buf) => {
      n += buf.byteLength
      if (!stream.send(buf)) return stream.onDrain({ signal })
    }, signal)
    await stream.close({ signal })
  } catch (err) {
    log(`echo stream ${stream.id} from ${connection.remotePeer} failed after ${n} bytes:`, errText(err))
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

// inboundSeen records, for every inbound stream, whether the remote's FIN
// came before js sent its first bytes on it (the multistream answer):
// the one thing about the stock echo's hang that the dialer controls.
const inboundSeen = new WeakMap()

// watchInboundStreams sees every inbound stream as its muxer creates it,
// before multistream-select reads from it (connection.muxer is internal
// to js-libp2p 3.x; without it stockEchoHandler says hooked=false).
function watchInboundStreams (node) {
  node.addEventListener('connection:open', (evt) => {
    const muxer = evt.detail.muxer
    if (muxer == null) return
    muxer.addEventListener('stream', (e) => {
      const stream = e.detail
      const seen = { answered: false, finBeforeAnswer: false }
      inboundSeen.set(stream, seen)
      const send = stream.send.bind(stream)
      stream.send = (data) => {
        seen.answered = true
        return send(data)
      }
      // Not 'message': a message listener would take the bytes that
      // multistream-select has yet to read.
      stream.addEventListener('remoteCloseWrite', () => {
        if (!seen.answered) seen.finBeforeAnswer = true
      })
    })
  })
}

// stockEchoHandler serves ECHO_STOCK with js-libp2p's echo helper and logs
// one line per stream for the test to check:
//
//	echo-stock stream <id>: hooked=<bool> finBeforeAnswer=<bool> finBeforeHandler=<bool>
//
// A FIN that came after the answer but before this handler ran (js-libp2p
// awaits its peer store between the two) would hang the helper, whose
// async iterator misses a remoteCloseWrite that came before it: js's own
// race, which no dialer can avoid, so such a stream is echoed by
// echoHandler instead and only logged.
function stockEchoHandler (stream, connection) {
  const seen = inboundSeen.get(stream)
  const early = stream.remoteWriteStatus === 'closed'
  log(`echo-stock stream ${stream.id}: hooked=${seen != null} finBeforeAnswer=${seen?.finBeforeAnswer === true} finBeforeHandler=${early}`)
  if (early && seen?.finBeforeAnswer !== true) return echoHandler(stream, connection)
  return stockEcho(stream)
}

async function stopNode (node) {
  const timer = setTimeout(() => {
    log(`stop took over ${STOP_TIMEOUT_MS} ms, exiting`)
    process.exit(1)
  }, STOP_TIMEOUT_MS)
  try {
    await node.stop()
  } catch (err) {
    log('stop:', errText(err))
  }
  clearTimeout(timer)
}

async function serve () {
  const node = await newNode(['/ip4/127.0.0.1/tcp/0'])
  const limits = { maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS }
  await node.handle(ECHO, echoHandler, limits)
  // js-libp2p's own echo helper, which reads with `for await`: the way
  // most js-libp2p handlers read, and blind to a FIN that arrived before
  // its loop started.
  watchInboundStreams(node)
  await node.handle(ECHO_STOCK, stockEchoHandler, limits)
  let stopping = false
  const stop = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    await stopNode(node)
    process.exit(0)
  }
  process.on('SIGTERM', () => { void stop('SIGTERM') })
  process.on('SIGINT', () => { void stop('SIGINT') })
  process.stdin.on('end', () => { void stop('stdin closed') })
  process.stdin.on('error', () => { void stop('stdin error') })
  process.stdin.resume()

  const id = node.peerId.toString()
  const addrs = node.getMultiaddrs().map(a => a.toString())
  process.stdout.write(JSON.stringify({
    id,
    addrs,
    version: libp2pVersion,
    agent: userAgent(),
    protocols: node.getProtocols()
  }) + '\n')
}

// identifyWaiter's promise resolves with the first identify result for the
// peer with ID peer (a string), or rejects after ms.
function identifyWaiter (node, peer, ms) {
  let cleanup = () => {}
  const promise = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`identify of ${peer} did not finish within ${ms} ms`))
    }, ms)
    const onIdentify = (evt) => {
      if (evt.detail.peerId.toString() === peer) {
        cleanup()
        resolve(evt.detail)
      }
    }
    cleanup = () => {
      clearTimeout(timer)
      node.removeEventListener('peer:identify', onIdentify)
    }
    node.addEventListener('peer:identify', onIdentify)
  })
  return { promise, cancel: () => cleanup() }
}

async function dialStream (conn, proto, size, timeoutMs, maxOut) {
  const signal = AbortSignal.timeout(timeoutMs)
  let stream
  try {
    stream = await conn.newStream(proto, { signal, maxOutboundStreams: maxOut })
    const sent = randomBytes(size)
    const got = []
    let gotLen = 0
    // Listen before writing: the echo may come back, FIN included, before
    // we finish writing.
    const reading = readStream(stream, (buf) => {
      const b = buf.subarray()
      got.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
      gotLen += b.byteLength
      if (gotLen > size) throw new Error(`echo longer than the ${size} bytes sent`)
    }, signal)
    reading.catch(() => {}) // awaited below; do not report it as unhandled meanwhile
    for (let off = 0; off < size; off += CHUNK) {
      await send(stream, sent.subarray(off, Math.min(size, off + CHUNK)), signal)
    }
    await stream.close({ signal })
    await reading
    const echo = Buffer.concat(got, gotLen)
    if (echo.length !== size) throw new Error(`echoed ${echo.length} of ${size} bytes`)
    if (!echo.equals(sent)) {
      let i = 0
      while (echo[i] === sent[i]) i++
      throw new Error(`echo differs from what was sent at byte ${i}`)
    }
  } catch (err) {
    const what = signal.aborted ? `timed out after ${timeoutMs} ms: ` : ''
    const where = stream == null
      ? 'opening the stream'
      : `stream ${stream.id}: status ${stream.status}, write ${stream.writeStatus}, remote write ${stream.remoteWriteStatus}, ${stream.readBufferLength} bytes unread`
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    throw new Error(`${what}${errText(err)} (${where})`)
  }
}

function usage (msg) {
  process.stderr.write(`peer.mjs: ${msg}\nusage: node peer.mjs [dial <multiaddr-with-p2p> <protocol> <streams> <bytes> [stream-timeout-ms]]\n`)
  process.exit(2)
}

function intArg (s, name, min) {
  if (!/^\d+$/.test(s ?? '')) usage(`${name} must be a non-negative integer, got ${JSON.stringify(s)}`)
  const n = Number(s)
  if (!Number.isSafeInteger(n) || n < min) usage(`${name} must be an integer >= ${min}, got ${s}`)
  return n
}

async function dial (args) {
  if (args.length < 4 || args.length > 5) usage('dial needs 4 or 5 arguments')
  const [addrStr, proto] = args
  const streams = intArg(args[2], 'streams', 1)
  const size = intArg(args[3], 'bytes', 0)
  const timeoutMs = args.length > 4 ? intArg(args[4], 'stream-timeout-ms', 1) : DEFAULT_STREAM_TIMEOUT_MS
  const result = { ok: 0, failed: 0, errors: [], ms: 0, identifyError: '', remoteAgent: '', remoteProtocols: [], fatal: '' }
  let node
  try {
    let addr
    try {
      addr = multiaddr(addrStr)
    } catch (err) {
      usage(`bad multiaddr ${JSON.stringify(addrStr)}: ${errText(err)}`)
    }
    const peerStr = addr.getComponents().findLast(c => c.name === 'p2p')?.value
    if (peerStr == null) usage(`multiaddr ${addrStr} has no /p2p/<peer id>`)
    node = await newNode([])
    // Identify runs on its own when the connection opens, so listen before
    // dialing.
    const identified = identifyWaiter(node, peerStr, IDENTIFY_TIMEOUT_MS)
    identified.promise.catch(() => {}) // awaited below
    const start = performance.now()
    let conn
    try {
      conn = await node.dial(addr, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    } catch (err) {
      identified.cancel()
      result.failed = streams
      result.fatal = `connect to ${addrStr}: ${errText(err)}`
      return result
    }
    if (conn.remotePeer.toString() !== peerStr) {
      identified.cancel()
      result.failed = streams
      result.fatal = `connected to ${conn.remotePeer}, want ${peerStr}`
      return result
    }
    try {
      const res = await identified.promise
      result.remoteAgent = res.agentVersion ?? ''
      result.remoteProtocols = res.protocols ?? []
    } catch (err) {
      result.identifyError = errText(err)
    }
    const settled = await Promise.allSettled(
      Array.from({ length: streams }, () => dialStream(conn, proto, size, timeoutMs, streams + 16)))
    for (const [i, s] of settled.entries()) {
      if (s.status === 'fulfilled') {
        result.ok++
      } else {
        result.failed++
        result.errors.push(`stream ${i}: ${errText(s.reason)}`)
      }
    }
    result.ms = Math.round(performance.now() - start)
    return result
  } finally {
    if (node != null) await stopNode(node)
  }
}

const argv = process.argv.slice(2)
if (argv.length === 0) {
  serve().catch((err) => {
    log('start failed:', err?.stack ?? errText(err))
    process.exit(1)
  })
} else if (argv[0] === 'dial') {
  dial(argv.slice(1)).then((res) => {
    process.stdout.write(JSON.stringify(res) + '\n', () => process.exit(0))
  }, (err) => {
    log('dial failed:', err?.stack ?? errText(err))
    process.exit(1)
  })
} else {
  usage(`unknown mode ${JSON.stringify(argv[0])}`)
}
