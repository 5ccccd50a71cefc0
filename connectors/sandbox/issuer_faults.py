"""A test hook for the issuer sandbox: refusals and delays an issuer really answers with.

``IssuerFaults`` is held by the sandbox and consulted once per request, by model
(``IssuerModel`` values: ``broker_order`` for the order processor, ``firm_quote``,
``delayed_request``; ``None`` arms it for any model):

- ``refuse_next(reason)``: the next request is refused with ``reason``, which starts with the
  issuer's code (``MAX_LIMIT_REACHED: ...``): an order is cancelled on chain with it, a quote is
  answered 409 with it, a delayed request ends rejected with it (its deposit refunded).
- ``delay_next(seconds)``: the next request is filled, quoted or executed that much later.
- ``paused``: while set, every request is refused ``MARKET_PAUSED``.
- ``lose_next_answer(method, path)``: the next such HTTP request takes effect, then its answer is
  lost (the connection closes with nothing sent): the client cannot tell what happened.

The same switches are reachable over HTTP at ``POST /sandbox/faults`` (issuer_http.py), so a
sandbox started by ``pegbot sandbox up`` can be made to refuse too.

What this module may not do: touch the chain or the sandbox's state; it only answers what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.model import IssuerModel


@dataclass
class _Armed:
    model: IssuerModel | None
    reason: str = ""
    delay_s: float = 0.0


@dataclass
class IssuerFaults:
    paused: bool = False
    _refusals: list[_Armed] = field(default_factory=list)
    _delays: list[_Armed] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # every reason answered, in order
    _losses: list[tuple[str, str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # "METHOD path" of every answer lost

    def refuse_next(self, reason: str, model: IssuerModel | None = None) -> None:
        if ":" not in reason:
            raise ValueError("a refusal reason starts with the issuer's code: 'CODE: words'")
        self._refusals.append(_Armed(model, reason=reason))

    def delay_next(self, seconds: float, model: IssuerModel | None = None) -> None:
        if seconds < 0:
            raise ValueError("a delay is >= 0 s")
        self._delays.append(_Armed(model, delay_s=seconds))

    def lose_next_answer(self, method: str, path: str) -> None:
        self._losses.append((method.upper(), path))

    def answer_lost(self, method: str, path: str) -> bool:
        """Whether the answer to this request is to be lost (an armed loss is used up)."""
        if (method, path) not in self._losses:
            return False
        self._losses.remove((method, path))
        self.lost.append(f"{method} {path}")
        return True

    def refusal(self, model: IssuerModel) -> str:
        """The reason to refuse the request of ``model`` now ("" to take it); an armed refusal
        is used up."""
        if self.paused:
            reason = "MARKET_PAUSED: the issuer is paused"
        else:
            armed = _take(self._refusals, model)
            if armed is None:
                return ""
            reason = armed.reason
        self.refused.append(reason)
        return reason

    def delay_s(self, model: IssuerModel) -> float:
        armed = _take(self._delays, model)
        return armed.delay_s if armed is not None else 0.0


def _take(armed: list[_Armed], model: IssuerModel) -> _Armed | None:
    for entry in armed:
        if entry.model is None or entry.model is model:
            armed.remove(entry)
            return entry
    return None
