"""anvil from the npm package: it listens on 127.0.0.1 at a port the kernel picked, answers with
the chain id it was given, and ``stop`` ends exactly the process that ``start`` started."""

from __future__ import annotations

import os

import pytest

from connectors.evm.anvil import Anvil, AnvilError


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_anvil_listens_on_loopback_and_answers_with_its_chain_id() -> None:
    with Anvil(chain_id=4242) as node:
        assert node.url.startswith("http://127.0.0.1:")
        assert node.rpc("eth_chainId") == hex(4242)
        assert node.rpc("eth_blockNumber") == "0x0"  # no fork: an empty chain
        assert len(node.rpc("eth_accounts")) == 10


def test_stop_ends_only_the_process_it_started() -> None:
    first, second = Anvil().start(), Anvil().start()
    try:
        assert first.port != second.port
        first_pid = first.pid
        assert first_pid is not None and running(first_pid)
        first.stop()
        assert not running(first_pid)
        assert first.pid is None
        first.stop()  # a second stop does nothing
        assert second.rpc("eth_chainId") == hex(31337)
    finally:
        second.stop()


def test_an_anvil_that_cannot_start_says_why() -> None:
    with pytest.raises(AnvilError, match=r"anvil exited \d+ before listen: .*chain-id"):
        Anvil(chain_id=2**64).start()  # more than a u64: anvil refuses the argument
