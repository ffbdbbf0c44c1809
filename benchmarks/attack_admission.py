"""The attacks of issue 13 on admission: connection slots, handshake replay, expensive keys.

Like benchmarks/attack_clients.py's, each is an :class:`Attack` run in a worker process of its
own, from addresses of its own.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from tlschat.protocol import ClientConnection, ConnectionConfig, IdentityKey
from tlschat.protocol.identity import fingerprint_of_spki, public_key_der, scheme_for

from .attack_clients import ROOM, Attack, AttackTarget, new_key
from .attack_link import (
    CONNECT_TIMEOUT,
    ChatLink,
    LinkFailed,
    block_of,
    open_link,
    wait_until,
)
from .servers import HOST, cpu_seconds

# ----- connection slots -----


@dataclass
class SlotPhase:
    label: str
    sources: tuple[str, ...]
    one_key: bool  # else a fresh key per connection
    hello: bool


@dataclass
class SlotFigures:
    label: str
    attempts: int
    held: int  # open at the end of the phase
    held_per_block: dict[str, int]
    held_per_key_max: int
    outcomes: dict[str, int]  # why the others did not get in


@dataclass
class NoHelloFigures:
    connections: int
    closed_by_server: int
    kept_s: list[float]  # per closed connection, from the end of its handshake
    watched_s: float


@dataclass
class SlotsFigures:
    phases: list[SlotFigures] = field(default_factory=list)
    no_hello: NoHelloFigures | None = None


def _addresses(blocks: range, hosts: range) -> tuple[str, ...]:
    return tuple(f"127.0.{block}.{host}" for block in blocks for host in hosts)


class ConnectionSlots(Attack):
    """One key from 20 addresses holds as many sessions as it can (one /24, then five), then a
    key per connection (no hello) from one /24; meanwhile a few sessions never say hello."""

    name = "slots"
    PHASES = (
        SlotPhase(
            "one key, 20 addresses in one /24", _addresses(range(7, 8), range(1, 21)), True, True
        ),
        SlotPhase(
            "one key, 20 addresses in 5 /24s", _addresses(range(7, 12), range(1, 5)), True, True
        ),
        SlotPhase(
            "a key each, no hello, one /24", _addresses(range(7, 8), range(1, 21)), False, False
        ),
    )
    PHASE_SECONDS = 8.0
    # More than the before tree's server can hold under a 1,024 open-file limit; a bound on
    # this side's sockets.
    MAX_SESSIONS = 1300
    CONCURRENCY = 32
    NO_HELLO_SOURCE = "127.0.12.1"
    NO_HELLO_CONNECTIONS = 5
    NO_HELLO_WATCH = 15.0

    @property
    def login_at(self) -> float:
        return 0.75 * self.PHASE_SECONDS * self.target.scale

    async def run(self) -> SlotsFigures:
        figures = SlotsFigures()
        no_hello = asyncio.ensure_future(self._no_hello())
        for phase in self.PHASES:
            figures.phases.append(await self._phase(phase))
        figures.no_hello = await no_hello
        return figures

    async def _phase(self, phase: SlotPhase) -> SlotFigures:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.PHASE_SECONDS * self.target.scale
        key = new_key() if phase.one_key else None
        numbers = itertools.count()
        held: list[ChatLink] = []
        outcomes: collections.Counter[str] = collections.Counter()

        async def lane() -> None:
            while (remaining := deadline - loop.time()) > 0 and len(held) < self.MAX_SESSIONS:
                number = next(numbers)
                source = phase.sources[number % len(phase.sources)]
                nick = f"slot{number}" if phase.hello else ""
                timeout = min(CONNECT_TIMEOUT, remaining)
                try:
                    held.append(
                        await open_link(self.target.port, source, key or new_key(), nick, timeout)
                    )
                except LinkFailed as error:
                    outcomes[str(error)] += 1
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(lane() for _ in range(self.CONCURRENCY)))
        await asyncio.sleep(0.5)  # byes the server sent at the end reach us
        alive = [link for link in held if link.is_open]
        per_key = collections.Counter(link.identity.fingerprint for link in alive)
        figures = SlotFigures(
            label=phase.label,
            attempts=len(held) + sum(outcomes.values()),
            held=len(alive),
            held_per_block=dict(collections.Counter(block_of(link.source) for link in alive)),
            held_per_key_max=max(per_key.values(), default=0),
            outcomes=dict(outcomes.most_common()),
        )
        for link in held:
            link.close()
        await asyncio.sleep(1.0)  # the server sees them go before the next phase
        return figures

    async def _no_hello(self) -> NoHelloFigures:
        """Sessions that finish the handshake and say nothing: how long are they kept?"""
        loop = asyncio.get_running_loop()
        key = new_key()
        links: list[ChatLink] = []
        opened: list[float] = []
        for _ in range(self.NO_HELLO_CONNECTIONS):
            links.append(await open_link(self.target.port, self.NO_HELLO_SOURCE, key))
            opened.append(loop.time())
        self.links += links
        await asyncio.wait([link.closed for link in links], timeout=self.NO_HELLO_WATCH)
        kept = [
            link.closed.result() - start
            for link, start in zip(links, opened, strict=True)
            if link.closed.done()
        ]
        return NoHelloFigures(len(links), len(kept), kept, self.NO_HELLO_WATCH)


# ----- handshake replay -----


@dataclass
class ReplayFigures:
    hello_bytes: int
    seconds: float
    connections: int
    signed: int  # the server answered with its flight: one RSA signature each
    refused: int  # an alert instead
    other: int  # closed without an answer, timed out, or a socket error
    signed_per_s: float


class ReplayProbe(asyncio.Protocol):
    """Sends the recorded ClientHello and notes the first thing the server answers."""

    HANDSHAKE = 22
    ALERT = 21

    def __init__(self, hello: bytes) -> None:
        self.hello = hello
        self.transport: asyncio.BaseTransport | None = None
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.hello)

    def data_received(self, data: bytes) -> None:
        kind = {self.HANDSHAKE: "signed", self.ALERT: "refused"}.get(data[0], "other")
        self._answer(kind)

    def connection_lost(self, exc: Exception | None) -> None:
        self._answer("other")

    def _answer(self, kind: str) -> None:
        if not self.answer.done():
            self.answer.set_result(kind)


class HandshakeReplay(Attack):
    """One recorded ClientHello replayed on new connections from 30 addresses of one /24."""

    name = "replay"
    SOURCES = _addresses(range(4, 5), range(1, 31))
    LANES = 16
    SECONDS = 10.0
    ANSWER_TIMEOUT = 5.0

    def __init__(self, target: AttackTarget) -> None:
        super().__init__(target)
        client = ClientConnection(ConnectionConfig(identity=new_key()), now=0.0)
        client.start_handshake()
        self.hello = client.data_to_send()

    async def run(self) -> ReplayFigures:
        loop = asyncio.get_running_loop()
        seconds = self.SECONDS * self.target.scale
        deadline = loop.time() + seconds
        outcomes: collections.Counter[str] = collections.Counter()
        numbers = itertools.count()

        async def lane() -> None:
            while loop.time() < deadline:
                source = self.SOURCES[next(numbers) % len(self.SOURCES)]
                outcomes[await self._replay(source)] += 1

        await asyncio.gather(*(lane() for _ in range(self.LANES)))
        return ReplayFigures(
            hello_bytes=len(self.hello),
            seconds=seconds,
            connections=sum(outcomes.values()),
            signed=outcomes["signed"],
            refused=outcomes["refused"],
            other=outcomes["other"],
            signed_per_s=outcomes["signed"] / seconds,
        )

    async def _replay(self, source: str) -> str:
        loop = asyncio.get_running_loop()
        probe = ReplayProbe(self.hello)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: probe, HOST, self.target.port, local_addr=(source, 0)
                ),
                self.ANSWER_TIMEOUT,
            )
        except (OSError, TimeoutError):
            await asyncio.sleep(0.01)
            return "other"
        try:
            return await asyncio.wait_for(asyncio.shield(probe.answer), self.ANSWER_TIMEOUT)
        except TimeoutError:
            return "other"
        finally:
            transport.close()


# ----- expensive keys -----


class BigExponentKey(IdentityKey):
    """An RSA identity whose public exponent is huge: built by hand, since tlschat's own
    IdentityKey now refuses one."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.spki_der = public_key_der(self.public_key)
        self.fingerprint = fingerprint_of_spki(self.spki_der)
        self.scheme = scheme_for(self.public_key)


def big_exponent_twin(key: rsa.RSAPrivateKey, exponent_bits: int) -> rsa.RSAPrivateKey:
    """The same primes with a random public exponent of ``exponent_bits`` bits."""
    numbers = key.private_numbers()
    p, q = numbers.p, numbers.q
    lam = math.lcm(p - 1, q - 1)
    while True:
        e = int.from_bytes(os.urandom((exponent_bits + 7) // 8)) >> (-exponent_bits % 8)
        e |= (1 << (exponent_bits - 1)) | 1
        if math.gcd(e, lam) == 1:
            break
    d = pow(e, -1, lam)
    public = rsa.RSAPublicNumbers(e, p * q)
    private = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    return private.private_key(unsafe_skip_rsa_key_validation=True)


@dataclass
class KeyFigures:
    label: str
    modulus_bits: int
    exponent_bits: int
    handshakes: int
    outcome: str  # "accepted", or the alert or bye that refused it
    server_cpu_ms_per_handshake: float
    messages: int  # signed lines sent once in
    server_cpu_ms_per_message: float | None


@dataclass
class KeysFigures:
    keys: list[KeyFigures]
    server_log: str  # the server's line about the big-exponent key, if it wrote one


class ExpensiveKey(Attack):
    """RSA-3072 identities, e = 65537 and a 3,070-bit e (same primes): handshakes, then lines."""

    name = "keys"
    MODULUS_BITS = 3072
    EXPONENT_BITS = 3070
    HANDSHAKES = 20
    MESSAGES = 10  # one burst: flood control lets them all through
    SOURCE = "127.0.8.1"

    @property
    def login_at(self) -> float:
        return 0.0

    def __init__(self, target: AttackTarget) -> None:
        super().__init__(target)
        self.keys: list[tuple[str, IdentityKey]] = []

    async def prepare(self) -> None:
        normal = rsa.generate_private_key(public_exponent=65537, key_size=self.MODULUS_BITS)
        self.keys = [
            ("e = 65537", IdentityKey(normal)),
            ("3,070-bit e", BigExponentKey(big_exponent_twin(normal, self.EXPONENT_BITS))),
        ]

    async def run(self) -> KeysFigures:
        figures = [await self._try_key(label, key) for label, key in self.keys]
        lines = self.target.log_path.read_text(errors="replace").splitlines()
        mention = next((line for line in lines if "exponent" in line), "")
        return KeysFigures(figures, mention)

    def _server_cpu(self) -> float:
        return cpu_seconds(self.target.server_pid)

    async def _try_key(self, label: str, key: IdentityKey) -> KeyFigures:
        outcomes: collections.Counter[str] = collections.Counter()
        before = self._server_cpu()
        for number in range(self.HANDSHAKES):
            try:
                link = await open_link(self.target.port, self.SOURCE, key, f"rsa{number}")
            except LinkFailed as error:
                outcomes[str(error)] += 1
                continue
            outcomes["accepted"] += 1
            link.close()
            await link.wait_closed(CONNECT_TIMEOUT)
        per_handshake = (self._server_cpu() - before) / self.HANDSHAKES * 1000
        public = key.public_key
        assert isinstance(public, rsa.RSAPublicKey)
        messages, per_message = await self._send_lines(key) if outcomes["accepted"] else (0, None)
        return KeyFigures(
            label=label,
            modulus_bits=public.key_size,
            exponent_bits=public.public_numbers().e.bit_length(),
            handshakes=self.HANDSHAKES,
            outcome=", ".join(f"{what} x{count}" for what, count in outcomes.most_common()),
            server_cpu_ms_per_handshake=per_handshake,
            messages=messages,
            server_cpu_ms_per_message=per_message,
        )

    async def _send_lines(self, key: IdentityKey) -> tuple[int, float | None]:
        """Signed lines from one session: how many were stored, and the server's CPU per line."""
        link = await open_link(self.target.port, self.SOURCE, key, "rsalines")
        before = self._server_cpu()
        link.send_frames([link.say(ROOM, f"line {n}") for n in range(self.MESSAGES)])
        await wait_until(lambda: link.counts["sent"] >= self.MESSAGES, CONNECT_TIMEOUT)
        spent = self._server_cpu() - before
        link.close()
        await link.wait_closed(CONNECT_TIMEOUT)
        stored = link.counts["sent"]
        return stored, spent / stored * 1000 if stored else None
