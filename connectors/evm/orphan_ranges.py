"""Ranges left by an earlier run (a crash: kill -9, power loss), withdrawn before the book opens.

A range order rests as a position of the NonfungiblePositionManager owned by the wallet (ADR 0021,
``connectors.evm.range_orders``). A normal shutdown withdraws it; a crash leaves it on chain,
still converting, and the wallet's token and USDC balances, which the next run's ledger opens
from, do not hold what it holds. So ``UniswapV3Venue.connect`` calls ``withdraw_orphans`` once
the chain, the pool and the nonce are checked, before anything reads the balances:

* **Find.** At one block: the manager's ``factory()`` must be the pool's (else the configured
  ``position_manager`` mints in other pools: ``PoolCheckError``); the wallet's positions
  (``balanceOf``, ``tokenOfOwnerByIndex``, ``positions``); an orphan is one of the pool's pair
  and fee tier with liquidity, or with tokens owed. Positions of other pools, and withdrawn ones
  (empty: the venue never burns its NFTs), are left alone.
* **Withdraw.** One transaction per orphan, as ``RangeOrders`` withdraws: a ``multicall`` of
  ``decreaseLiquidity`` of all its liquidity (none when it has none: the manager refuses 0) and
  ``collect`` of everything to the wallet, waited for. Each is logged on one line,
  ``orphan_range_withdrawn``: the token id, the ticks, the liquidity, what came back (``back``:
  token and quote, principal and fees) and of it the fees (``fees``), the gas, the hash.
* **A withdrawal that fails** (refused at the estimate, reverted) is logged
  (``orphan_range_not_withdrawn``), the others are still withdrawn, then ``OrphanRangeError``
  (one line naming each token id) stops the start: trading on a book that misses what a
  position holds breaks "the ledger equals the venues" (the exposure the strategy hedges
  would be wrong by it). There is no flag to start anyway: the way out is on chain (withdraw it
  by hand, or move the NFT out of the wallet), after which the book and the wallet agree again.

What this module may not do: touch a position of another pool, withdraw to anyone but the
wallet, or let the start go on with an orphan not withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.logging import get_logger
from bot.money import from_base_units
from connectors.evm.jsonrpc import RpcError, RpcUnavailable
from connectors.evm.pool_reader import (
    BALANCE_OF,
    PoolCheckError,
    address_argument,
    address_word,
    int_argument,
    selector,
    word,
)
from connectors.evm.range_orders import (
    collect_log,
    decrease_log,
    positions_calldata,
    withdrawal_calldata,
)
from connectors.evm.tx_manager import TxError

if TYPE_CHECKING:
    from connectors.evm.pool_venue import UniswapV3Venue

log = get_logger("pegbot.evm")

FACTORY = selector("factory()")
TOKEN_OF_OWNER_BY_INDEX = selector("tokenOfOwnerByIndex(address,uint256)")
TAG = "orphan"  # the withdrawals' transaction tag: "orphan/<token id>"


class OrphanRangeError(PoolCheckError):
    """A range left by an earlier run could not be withdrawn (one line naming it)."""


@dataclass(frozen=True, slots=True)
class Position:
    """One position of the manager, as ``positions(tokenId)`` answers it."""

    token_id: int
    token0: str
    token1: str
    fee: int
    tick_lower: int
    tick_upper: int
    liquidity: int
    owed0: int
    owed1: int


def decode_position(token_id: int, data: bytes) -> Position:
    """``positions`` answers nonce, operator, token0, token1, fee, tickLower, tickUpper,
    liquidity, the two fee growths and tokensOwed0/1: twelve words."""
    if len(data) != 12 * 32:
        raise PoolCheckError(f"positions({token_id}) answered {len(data)} bytes, not 384")
    return Position(
        token_id,
        address_word(data[64:96]),
        address_word(data[96:128]),
        word(data, 4),
        word(data, 5, signed=True),
        word(data, 6, signed=True),
        word(data, 7),
        word(data, 10),
        word(data, 11),
    )


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """An orphan withdrawn: what its Collect log paid (token0, token1 base units), of it the
    principal (its DecreaseLiquidity log), and the transaction's gas."""

    position: Position
    tx_hash: str
    paid: tuple[int, int]
    principal: tuple[int, int]
    gas_wei: int


async def find_orphans(venue: UniswapV3Venue, npm: str) -> list[Position]:
    """The wallet's positions in the venue's pool with liquidity or tokens owed, at one block
    (``PoolCheckError``: the chain cannot be read, or ``npm`` serves another factory)."""
    rpc, facts, owner = venue.rpc, venue.facts, venue.txm.address
    not_one = f"{venue.name}: {npm} (position_manager) is no NonfungiblePositionManager"
    try:
        block = int(await rpc.call("eth_blockNumber"), 16)
        at = hex(block)
        try:
            answers = await rpc.batch(
                [
                    ("eth_call", [{"to": npm, "data": FACTORY}, at]),
                    ("eth_call", [{"to": venue.pool_address, "data": FACTORY}, at]),
                    ("eth_call", [{"to": npm, "data": BALANCE_OF + address_argument(owner)}, at]),
                ]
            )
        except RpcUnavailable:
            raise
        except RpcError as exc:  # the node answered: a call reverted
            raise PoolCheckError(f"{not_one} (factory() or balanceOf(address): {exc})") from None
        npm_factory, pool_factory, count = (bytes.fromhex(a[2:]) for a in answers)
        if len(npm_factory) != 32 or len(count) != 32:
            raise PoolCheckError(f"{not_one} (no factory() or balanceOf(address))")
        if address_word(npm_factory) != address_word(pool_factory):
            raise PoolCheckError(
                f"{venue.name}: position manager {npm} serves factory "
                f"{address_word(npm_factory)}, the pool's is {address_word(pool_factory)}"
            )
        index_calls = [
            TOKEN_OF_OWNER_BY_INDEX + address_argument(owner) + int_argument(i)
            for i in range(word(count, 0))
        ]
        token_ids = [word(a, 0) for a in await rpc.eth_calls(npm, index_calls, block)]
        answers_by_id = await rpc.eth_calls(npm, [positions_calldata(t) for t in token_ids], block)
    except RpcError as exc:
        raise PoolCheckError(f"{venue.name}: cannot read the wallet's positions: {exc}") from None
    pair = (facts.token0.lower(), facts.token1.lower(), facts.fee)
    found = []
    for token_id, data in zip(token_ids, answers_by_id, strict=True):
        p = decode_position(token_id, data)
        if (p.token0.lower(), p.token1.lower(), p.fee) != pair:
            continue  # another pool's
        if p.liquidity or p.owed0 or p.owed1:
            found.append(p)
    return found


async def withdraw_orphans(venue: UniswapV3Venue, npm: str) -> list[Withdrawn]:
    """Withdraw every orphan of the venue's pool to the wallet (module docstring); what came
    back, in the order found. ``OrphanRangeError`` once all were tried if any failed."""
    orphans = await find_orphans(venue, npm)
    if not orphans:
        return []
    log.warning(
        "orphan_ranges_found",
        venue=venue.name,
        token_ids=[p.token_id for p in orphans],
        why="left by an earlier run: withdrawn before the book opens",
    )
    done, failed = [], []
    for position in orphans:
        try:
            done.append(await _withdraw(venue, npm, position))
        except _Failed as exc:
            failed.append((position, str(exc)))
            log.error(
                "orphan_range_not_withdrawn",
                venue=venue.name,
                token_id=position.token_id,
                tick_lower=position.tick_lower,
                tick_upper=position.tick_upper,
                liquidity=position.liquidity,
                reason=str(exc),
            )
    if failed:
        named = "; ".join(
            f"position {p.token_id} (ticks [{p.tick_lower}, {p.tick_upper}), liquidity "
            f"{p.liquidity}): {why}"
            for p, why in failed
        )
        raise OrphanRangeError(
            f"{venue.name}: a range left by an earlier run could not be withdrawn, so the book "
            f"would miss what it holds; nothing is traded (withdraw it by hand, or move it out "
            f"of the wallet, and start again): {named}"
        )
    return done


class _Failed(Exception):
    """One orphan's withdrawal failed (one line)."""


async def _withdraw(venue: UniswapV3Venue, npm: str, position: Position) -> Withdrawn:
    txm = venue.txm
    deadline_s = venue.now_s() + int(venue.settings.default_deadline_s)
    data = withdrawal_calldata(position.token_id, position.liquidity, txm.address, deadline_s)
    try:
        pending = await txm.send(npm, data, tag=f"{TAG}/{position.token_id}")
    except TxError as exc:
        raise _Failed(f"refused: {exc}") from None
    outcome = await txm.wait(pending)
    if not outcome.succeeded:
        why = await venue.ranges.revert_reason(data, outcome)
        gas = venue.gas_usd(outcome.cost_wei)
        raise _Failed(f"withdrawal reverted: {why}, gas {gas} USD spent")
    paid = collect_log(outcome.logs, npm, position.token_id)
    principal = decrease_log(outcome.logs, npm, position.token_id)
    withdrawn = Withdrawn(position, outcome.tx_hash, paid, principal, outcome.cost_wei)
    token_dec, quote_dec = venue.decimals()
    token, quote = venue.orient(*paid)
    fee_token, fee_quote = venue.orient(paid[0] - principal[0], paid[1] - principal[1])
    log.info(
        "orphan_range_withdrawn",
        venue=venue.name,
        token_id=position.token_id,
        tick_lower=position.tick_lower,
        tick_upper=position.tick_upper,
        liquidity=position.liquidity,
        back={
            venue.token: str(from_base_units(token, token_dec)),
            venue.quote: str(from_base_units(quote, quote_dec)),
        },
        fees={
            venue.token: str(from_base_units(fee_token, token_dec)),
            venue.quote: str(from_base_units(fee_quote, quote_dec)),
        },
        gas_wei=outcome.cost_wei,
        gas_usd=str(venue.gas_usd(outcome.cost_wei)),
        tx_hash=outcome.tx_hash,
    )
    return withdrawn
