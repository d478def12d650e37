"""A Redis connection in subscriber mode, read in batches.

redis-py's PubSub parses one reply per `get_message()` call, each with its own timeout and
bookkeeping; on the receive path of every live delivery that is most of the cost. This
connection reads whatever the socket holds, lets hiredis parse every complete reply in one go,
and hands the batch on. Commands are written without waiting for their replies: in subscriber
mode every reply arrives on the same stream as the messages.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis

READ_SIZE = 1 << 18


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    # unix:///path/to/redis.sock
    path: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Address:
        u = urlparse(url)
        return cls(
            u.hostname or "127.0.0.1",
            u.port or 6379,
            unquote(u.username) if u.username else None,
            unquote(u.password) if u.password else None,
            u.scheme == "rediss",
            u.path if u.scheme == "unix" else None,
        )

    def at(self, host: str, port: int) -> Address:
        """The same credentials, another node (of a cluster)."""
        return Address(host, port, self.username, self.password, self.tls)


def encode(*args: str | bytes | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def publish_command(channel: str, message: bytes) -> bytes:
    """`encode("PUBLISH", channel, message)` in one formatting step (once per published
    message)."""
    ch = channel.encode()
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
        len(ch),
        ch,
        len(message),
        message,
    )


class RespConnection:
    def __init__(self, address: Address) -> None:
        self.address = address
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.parser = hiredis.Reader()

    async def open(self, timeout: float = 1.0) -> None:
        a = self.address
        context = ssl.create_default_context() if a.tls else None
        async with asyncio.timeout(timeout):
            if a.path is not None:
                self.reader, self.writer = await asyncio.open_unix_connection(
                    a.path, limit=READ_SIZE
                )
            else:
                self.reader, self.writer = await asyncio.open_connection(
                    a.host, a.port, ssl=context, limit=READ_SIZE
                )
            if a.password is not None:
                auth = ("AUTH", a.username, a.password) if a.username else ("AUTH", a.password)
                reply = await self.request(*auth)
                if isinstance(reply, hiredis.ReplyError):
                    raise ConnectionError(f"redis AUTH failed: {reply}")

    def send(self, *args: str | bytes | int) -> None:
        assert self.writer is not None
        self.writer.write(encode(*args))

    def write(self, data: bytes) -> None:
        """Commands already encoded (publish_command)."""
        assert self.writer is not None
        self.writer.write(data)

    async def request(self, *args: str | bytes | int) -> Any:
        """One command and its reply: only before the connection subscribes."""
        self.send(*args)
        while True:
            batch = await self.replies()
            if batch:
                return batch[0]

    async def replies(self) -> list[Any]:
        """Every complete reply the socket holds, waiting for at least some bytes."""
        assert self.reader is not None
        data = await self.reader.read(READ_SIZE)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.parser.feed(data)
        out = []
        gets = self.parser.gets
        reply = gets()
        while reply is not False:
            out.append(reply)
            reply = gets()
        return out

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                async with asyncio.timeout(1.0):
                    await self.writer.wait_closed()
            except Exception:
                pass  # closing a connection that is already dead
            self.writer = None
