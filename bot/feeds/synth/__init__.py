"""Seeded synthetic feeds for one tokenized stock (``pegbot synth``): see docs/synth.md.

``generate(scenario, days, seed, out)`` writes a feed directory (schema v1) with the underlying's
broker quotes on the real NYSE calendar, the token's exchange top of book, an exact Uniswap v3
pool and the issuer's events. Same arguments, same bytes. Nothing here reads the wall clock.
"""

from bot.feeds.synth.generate import SynthResult, generate
from bot.feeds.synth.scenarios import SCENARIOS, Scenario, scenario_by_name

__all__ = ["SCENARIOS", "Scenario", "SynthResult", "generate", "scenario_by_name"]
