#!/usr/bin/python3
# tests/ws_peer.py: the python3-websockets peer of tests/ws.
#
#   ws_peer.py client PORT   talk to an echo server (examples/ws_echo) on
#                            127.0.0.1:PORT; print "ok" and exit 0 when
#                            every exchange went as expected
#   ws_peer.py server PORT   serve on 127.0.0.1:PORT until killed (see
#                            handler for what it answers)
#
# Both sides send keepalive pings every 50 ms and give up on a connection
# whose pongs take more than 1 s, so a peer that does not answer pings is
# found out within the test.
import asyncio
import sys

import websockets

PING_INTERVAL = 0.05
PING_TIMEOUT = 1.0


def fail(what):
    print("FAIL: " + what)
    sys.exit(1)


def expect(got, want, what):
    if got != want:
        fail("%s: got %r, expected %r" % (what, got, want))


async def fragments_with_ping(ws, parts):
    """A fragmented message with a ping between its fragments."""
    for i, part in enumerate(parts):
        if i == 1:
            await ws.ping(b"between fragments")
        yield part


async def client(port):
    uri = "ws://127.0.0.1:%d/echo?x=1" % port
    async with websockets.connect(uri, ping_interval=PING_INTERVAL,
                                  ping_timeout=PING_TIMEOUT,
                                  max_size=2 ** 20) as ws:
        await ws.send("hello")
        expect(await ws.recv(), "hello", "text")
        await ws.send(b"\x00\x01\x02binary\xff")
        expect(await ws.recv(), b"\x00\x01\x02binary\xff", "binary")
        await ws.send("")
        expect(await ws.recv(), "", "empty text")
        big = bytes((i * 7 + (i >> 8)) & 0xff for i in range(80 * 1024))
        await ws.send(big)
        expect(await ws.recv(), big, "80 kB binary")
        text = "".join(chr(0x41 + i % 26) for i in range(70000))
        await ws.send(text)
        expect(await ws.recv(), text, "70 kB text")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 2)
        await ws.send(["frag", "mented", " text"])
        expect(await ws.recv(), "fragmented text", "fragmented text")
        await ws.send(fragments_with_ping(ws, [b"ab", b"cd", b"ef"]))
        expect(await ws.recv(), b"abcdef", "fragments around a ping")
        # Idle for several keepalive intervals: the server's ws_recv must
        # answer the pings, or the connection dies of a ping timeout.
        await asyncio.sleep(6 * PING_INTERVAL)
        await ws.send("still here")
        expect(await ws.recv(), "still here", "after keepalives")
        await ws.close(code=4001, reason="bye now")
        expect(ws.close_code, 4001, "close code sent back")
        expect(ws.close_reason, "bye now", "close reason sent back")
    print("ok")


async def handler(ws, path):
    """Echo, with a few commands: "fragments" gets a fragmented message
    with a ping inside, "ping" a ping before the answer, "later N" the
    answer after N seconds (during which keepalive pings go out), "close"
    a close frame with status 4002, "path" the request path, "host" the
    Host field."""
    try:
        await serve_one(ws, path)
    except websockets.ConnectionClosed:
        pass
    print("closed with", ws.close_code, repr(ws.close_reason), flush=True)


async def serve_one(ws, path):
    async for msg in ws:
        if msg == "fragments":
            await ws.send(fragments_with_ping(ws, ["one ", "two ", "three"]))
        elif msg == "ping":
            await ws.ping(b"ping payload")
            await ws.send("pinged")
        elif isinstance(msg, str) and msg.startswith("later "):
            await asyncio.sleep(float(msg[6:]))
            await ws.send("later")
        elif msg == "close":
            await ws.close(code=4002, reason="server says bye")
        elif msg == "path":
            await ws.send(path)
        elif msg == "host":
            await ws.send(ws.request_headers.get("Host", ""))
        else:
            await ws.send(msg)


async def server(port):
    async with websockets.serve(handler, "127.0.0.1", port,
                                ping_interval=PING_INTERVAL,
                                ping_timeout=PING_TIMEOUT,
                                max_size=2 ** 20):
        await asyncio.Future()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("client", "server"):
        fail("usage: ws_peer.py client|server PORT")
    port = int(sys.argv[2])
    if sys.argv[1] == "client":
        asyncio.run(client(port))
    else:
        asyncio.run(server(port))
