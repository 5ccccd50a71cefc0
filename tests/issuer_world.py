"""What the issuer tests share (tests/test_issuer_*.py): the issuer's contract deployed on the
session anvil (tests/evm_chain.py, reverted after each test), a funded wallet for the bot with its
own key, the broker sandbox with a quote that stays where the test puts it, and the issuer
sandbox in-process on the test's event loop, on the clock the test gives it.

Money: fees are $0.20 + 25 bps; the broker quotes AAPL 189.90 x 190.10; the multiplier is 1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from eth_account import Account
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.contract import Contract

from bot.clock import Clock
from bot.model import MintRedeemRequest, RequestKind, RequestState, RequestUpdate
from connectors.evm.deploy import deploy_order_processor, send
from connectors.sandbox.broker import BrokerSandbox, BrokerSandboxConfig
from connectors.sandbox.issuer import IssuerSandbox, IssuerSandboxConfig

if TYPE_CHECKING:
    from tests.evm_chain import LocalChain

FEE_FLAT, FEE_BPS = 200_000, 25  # $0.20 + 25 bps
BID, ASK = Decimal("189.90"), Decimal("190.10")
WALLET_USDC = 1_000_000 * 10**6
WALLET_TOKENS = 100 * 10**18
TREASURY_USDC = 10**9 * 10**6


@dataclass
class Deployed:
    chain: LocalChain
    processor: Contract
    quote_key: str
    wallet: str
    wallet_key: str

    def balances(self) -> tuple[int, int]:
        """The wallet's (USDC units, token units)."""
        market = self.chain.market
        return (
            market.usdc.functions.balanceOf(self.wallet).call(),
            market.stock.functions.balanceOf(self.wallet).call(),
        )

    def treasury_balances(self) -> tuple[int, int]:
        market = self.chain.market
        treasury = market.issuer
        return (
            market.usdc.functions.balanceOf(treasury).call(),
            market.stock.functions.balanceOf(treasury).call(),
        )


def deploy(chain: LocalChain) -> Deployed:
    """The processor as the stock token's issuer (operator and treasury: anvil's account 1), a
    fresh quote key, and a fresh wallet with 1,000,000 USDC and 100 tokens."""
    market = chain.market
    quote = Account.create()
    processor = deploy_order_processor(
        chain.w3,
        market.usdc,
        market.stock,
        admin=market.deployer,
        operator=market.issuer,
        treasury=market.issuer,
        quote_signer=quote.address,
        fee_flat=FEE_FLAT,
        fee_bps=FEE_BPS,
    )
    wallet = Account.create()
    chain.anvil.rpc("anvil_setBalance", [wallet.address, hex(10**20)])
    send(chain.w3, market.usdc.functions.mint(market.issuer, TREASURY_USDC), market.deployer)
    send(chain.w3, market.usdc.functions.mint(wallet.address, WALLET_USDC), market.deployer)
    send(chain.w3, processor.functions.issue(wallet.address, WALLET_TOKENS), market.issuer)
    return Deployed(chain, processor, quote.key.to_0x_hex(), wallet.address, wallet.key.to_0x_hex())


@dataclass
class World:
    deployed: Deployed
    broker: BrokerSandbox
    issuer: IssuerSandbox

    @property
    def api_key(self) -> str:
        return self.issuer.config.api_key


@asynccontextmanager
async def running(deployed: Deployed, clock: Clock, **config: Any) -> AsyncIterator[World]:
    """The broker and issuer sandboxes on ``clock``; ``config`` overrides the issuer's (short
    latencies and sessions "always" by default)."""
    key, secret = f"PK{secrets.token_hex(8)}", secrets.token_urlsafe(20)
    broker = BrokerSandbox(
        BrokerSandboxConfig(
            api_key=key, secret_key=secret, quote_interval_s=None, calendar_days=30
        ),
        clock,
    )
    await broker.start()
    broker.set_quote("AAPL", BID, ASK, 100, 100)
    market = deployed.chain.market
    base = IssuerSandboxConfig(
        chain_url=deployed.chain.anvil.url,
        processor=deployed.processor.address,
        operator=market.issuer,
        treasury=market.issuer,
        quote_key=deployed.quote_key,
        broker_url=broker.url,
        broker_key=key,
        broker_secret=secret,
        api_key=secrets.token_urlsafe(16),
        accept_sessions="always",
        execute_sessions="always",
        fill_latency_s=0.1,
        quote_latency_s=0.0,
        request_latency_s=0.1,
        settle_s=0.1,
        poll_s=0.05,
    )
    issuer = IssuerSandbox(replace(base, **config), clock, calendar=broker.calendar)
    await issuer.start()
    try:
        yield World(deployed, broker, issuer)
    finally:
        await issuer.stop()
        await broker.stop()


def request(
    request_id: str, kind: RequestKind, qty: str, issuer: str = "issuer"
) -> MintRedeemRequest:
    return MintRedeemRequest(
        request_id=request_id,
        issuer=issuer,
        token="AAPLx",
        kind=kind,
        qty=Decimal(qty),
        requested_ns=0,
    )


class Answers:
    """The events an adapter is bound to: keeps every request update."""

    def __init__(self) -> None:
        self.updates: list[RequestUpdate] = []

    def on_request_update(self, update: RequestUpdate) -> None:
        self.updates.append(update)

    def states(self, request_id: str) -> list[str]:
        return [u.state.value for u in self.updates if u.request_id == request_id]

    def last(self, request_id: str) -> RequestUpdate:
        return [u for u in self.updates if u.request_id == request_id][-1]

    def on_order_update(self, update: object) -> None:
        raise AssertionError("an issuer sent an order update")

    def on_fill(self, fill: object) -> None:
        raise AssertionError("an issuer sent a fill")

    def on_transfer_update(self, update: object) -> None:
        raise AssertionError("an issuer sent a transfer update")


def ended(answers: Answers, request_id: str) -> bool:
    """The request's last answer is a terminal state."""
    states = answers.states(request_id)
    return bool(states) and RequestState(states[-1]).is_terminal


@asynccontextmanager
async def connected(venue: Any) -> AsyncIterator[Answers]:
    """``venue`` bound to a fresh ``Answers`` and connected; closed after the block."""
    answers = Answers()
    venue.bind(answers)
    await venue.connect()
    try:
        yield answers
    finally:
        await venue.close()


async def until(condition: Any, timeout_s: float = 10.0) -> None:
    """Wait (on the loop) until ``condition()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


class LossyNode:
    """A JSON-RPC proxy in front of anvil that loses what a network loses: the answer to the
    ``lose_send``-th ``eth_sendRawTransaction`` (the node has taken it), and then, for
    ``hide_s``, that transaction's receipt (answered null, as for one not mined yet). aiohttp
    sends a request again on a connection closed under it, so the node also answers the same
    transaction a second time ("nonce too low"), as it would on a real network."""

    def __init__(self, upstream: str, *, lose_send: int, hide_s: float) -> None:
        self._upstream = upstream
        self._lose_send = lose_send
        self._hide_s = hide_s
        self._sends = 0
        self._hidden = ""
        self._hide_until = 0.0
        self.lost: list[str] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._session.close()
        await self._runner.cleanup()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        call = json.loads(body)
        method = call.get("method") if isinstance(call, dict) else None
        now = asyncio.get_running_loop().time()
        hidden = method == "eth_getTransactionReceipt" and call["params"][0] == self._hidden
        if hidden and now < self._hide_until:
            return web.json_response({"jsonrpc": "2.0", "id": call["id"], "result": None})
        headers = {"Content-Type": "application/json"}
        async with self._session.post(self._upstream, data=body, headers=headers) as answer:
            relayed = await answer.read()
        if method == "eth_sendRawTransaction":
            self._sends += 1
            if self._sends == self._lose_send:
                raw = HexBytes(call["params"][0])
                self._hidden = HexBytes(keccak(raw)).to_0x_hex()
                self._hide_until = now + self._hide_s
                self.lost.append(self._hidden)
                if request.transport is not None:
                    request.transport.close()
                return web.Response()
        return web.Response(body=relayed, content_type="application/json")
