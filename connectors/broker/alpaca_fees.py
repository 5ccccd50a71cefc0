"""Alpaca's SEC and TAF fees on sales, booked: they are not on the fills but charged as account
activities (``FEE``, read by ``AccountReads.fees``), so the ledger's cash would drift from the
account's by every sale's fees.

``FeeFollower`` reads the activities at connect and takes the ones listed then as already in the
opening balance (the run's ledger opens from the account's cash); later reads list them from the
day before the last one it knew (by Alpaca's own dates), so they do not grow with the account's
history. Every new activity is reported once, as a ``VenueFee`` (``fee_id`` the activity's id), through ``report``: read
shortly after each sale (``sold``), every ``poll_s`` in any case (Alpaca may book a sale's fees
later than the fill), and once more at close, so the run's closing book has them.

A read that fails (Alpaca unreachable, a refusal) is logged and tried at the next occasion:
nothing is reported twice, and nothing is lost while the run lasts.

What this module may not do: report a fee from before connect, or one twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.logging import get_logger
from bot.model import VenueFee

if TYPE_CHECKING:
    from connectors.broker.alpaca_checks import AccountReads

log = get_logger("pegbot.alpaca")

POLL_S = 300.0
AFTER_SALE_S = 1.0  # a sale's fees are booked by its fill or soon after: read once a moment later


class FeeFollower:
    """The fee activities of broker ``venue`` since connect, each reported once (module doc)."""

    def __init__(
        self,
        venue: str,
        reads: AccountReads,
        clock: Clock,
        report: Callable[[VenueFee], None],
        *,
        poll_s: float = POLL_S,
        after_sale_s: float = AFTER_SALE_S,
    ) -> None:
        self.venue = venue
        self._reads = reads
        self._clock = clock
        self._report = report
        self._poll_s = poll_s
        self._after_sale_s = after_sale_s
        self._seen: set[str] = set()
        self._after: datetime | None = None  # activities are listed from a day before connect
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._soon: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take the fees listed now as the opening balance's; then follow (the caller's loop).
        Raises what the read raises: a broker whose activities cannot be read is not
        connected."""
        listed = await self._reads.fees()
        self._seen.update(fee.id for fee in listed)
        if listed:  # later reads list from the day before the last one known (Alpaca's dates)
            last = max(fee.day for fee in listed)
            self._after = datetime.combine(last - timedelta(days=1), time(0), UTC)
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    def sold(self) -> None:
        """A sale filled: read the fees in a moment (once, however many sales meanwhile)."""
        if self._poller is None or (self._soon is not None and not self._soon.done()):
            return
        self._soon = asyncio.get_running_loop().create_task(self._read_later())

    async def close(self, timeout_s: float = 10.0) -> None:
        """Stop following, after a last read (the run's last sales) of at most ``timeout_s``
        (Alpaca may be rate limiting: the run must still end)."""
        tasks = [t for t in (self._poller, self._soon) if t is not None]
        if not tasks:
            return
        self._poller = self._soon = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self.read(), timeout_s)
        except TimeoutError:
            log.warning("fees_not_read", venue=self.venue, error=f"no answer in {timeout_s:g} s")

    async def read(self) -> int:
        """Report every fee not reported yet; how many were new (0 when the read failed)."""
        async with self._lock:
            try:
                fees = await self._reads.fees(self._after)
            except Exception as error:  # Refused, OutcomeUnknown: tried again next time
                log.warning("fees_not_read", venue=self.venue, error=str(error)[:200])
                return 0
            new = [fee for fee in fees if fee.id not in self._seen]
            now = self._clock.now_ns()
            for fee in new:
                self._seen.add(fee.id)
                detail = f"{fee.sub_type} {fee.symbol} {fee.qty} on {fee.day}"
                self._report(VenueFee(self.venue, fee.id, fee.amount_usd, now, detail))
            return len(new)

    async def _read_later(self) -> None:
        await asyncio.sleep(self._after_sale_s)
        await self.read()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            await self.read()
