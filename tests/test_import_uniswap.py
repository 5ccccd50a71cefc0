"""The Uniswap v3 importer on the real pool days: decoded tables and raw logs give the same feed,
the log decoder reads the ABI words right, and bad input fails with one line."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bot.amm.v3_events import (
    BURN_TOPIC,
    COLLECT_TOPIC,
    MINT_TOPIC,
    SWAP_TOPIC,
    LiquidityLog,
    SwapLog,
    decode_log,
)
from bot.errors import InputError
from bot.feeds.importers import uniswap
from bot.feeds.io import FeedReader
from bot.feeds.schema import EventKind

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
DECODED_005 = REAL / "univ3_eth_usdc_weth_005_0x88e6_2024-01-05.tick.csv.gz"
RAW_005 = REAL / "univ3_eth_usdc_weth_005_0x88e6_2024-01-05.raw_logs.csv.gz"
DECODED_03 = REAL / "univ3_eth_usdc_weth_03_0x8ad5_2024-01-05.pool_tick.csv"
RAW_03 = REAL / "univ3_eth_usdc_weth_03_0x8ad5_2024-01-05.raw_logs.csv"
ADDRESS_005 = "0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"

# The first log of the 0.05 % day, as the raw file holds it.
FIRST_SWAP_DATA = (
    "0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffea5d662"
    "000000000000000000000000000000000000000000000000002386f26fc10000"
    "00000000000000000000000000000000000051fdf2fd9b2526872a9b723450f2"
    "000000000000000000000000000000000000000000000000acd43e0e7cf808c5"
    "0000000000000000000000000000000000000000000000000000000000030985"
)
ADDRESS_TOPIC = "0x0000000000000000000000003fc91a3afd70395cd496c647d5a6cc9d4b2b7fad"


def word(value: int) -> str:
    """One ABI word, two's complement for negatives."""
    return f"{value % (1 << 256):064x}"


def feed_rows(path: Path) -> list[dict[str, Any]]:
    """The feed's rows with float nulls (read back as nan, which never equals itself) as None."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in FeedReader(path).iter_rows()
    ]


# ---- decoding --------------------------------------------------------------------------------


def test_topic_hashes_are_the_ones_on_chain() -> None:
    assert SWAP_TOPIC == "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
    assert MINT_TOPIC == "0x7a53080ba414158be7ec69b987b5fb7d07dee101fe85488f0853ae16239d0bde"
    assert BURN_TOPIC == "0x0c396cd989a39f4459b5fa1aed6a9a8dcdbc45908acfd67e028cd568da98982c"
    assert COLLECT_TOPIC == "0x70935338e69775456a85ddef226c395fb668b63fa0115f5f20610b388e6ca9c0"


def test_swap_words_decode_to_the_decoded_tables_values() -> None:
    log = decode_log([SWAP_TOPIC, ADDRESS_TOPIC, ADDRESS_TOPIC], FIRST_SWAP_DATA)
    # the .tick.csv row of the same transaction
    assert log == SwapLog(
        amount0=-22686110,
        amount1=10000000000000000,
        sqrt_price_x96=1662995104975155420368771254341874,
        liquidity=12453647101533358277,
        tick=199045,
    )


def test_mint_and_burn_decode_negative_ticks_from_topics() -> None:
    lower, upper = word(-887220), word(-60)
    mint = decode_log(
        [MINT_TOPIC, ADDRESS_TOPIC, "0x" + lower, "0x" + upper],
        "0x" + word(0xABC) + word(5000) + word(7) + word(0),
    )
    assert mint == LiquidityLog(-887220, -60, 5000, 7, 0)
    burn = decode_log(
        [BURN_TOPIC, ADDRESS_TOPIC, "0x" + lower, "0x" + upper],
        "0x" + word(5000) + word(6) + word(0),
    )
    assert burn == LiquidityLog(-887220, -60, -5000, 6, 0)
    assert decode_log([COLLECT_TOPIC, ADDRESS_TOPIC, "0x" + lower, "0x" + upper], "0x") is None


def test_malformed_logs_are_rejected() -> None:
    with pytest.raises(ValueError, match="words"):
        decode_log([SWAP_TOPIC, ADDRESS_TOPIC, ADDRESS_TOPIC], FIRST_SWAP_DATA[:-64])
    with pytest.raises(ValueError, match="int24"):
        decode_log(
            [SWAP_TOPIC, ADDRESS_TOPIC, ADDRESS_TOPIC],
            FIRST_SWAP_DATA[:-64] + word(1 << 23),
        )
    with pytest.raises(ValueError, match="topics"):
        decode_log([SWAP_TOPIC], FIRST_SWAP_DATA)


# ---- pool identity ---------------------------------------------------------------------------


def test_pool_identity_comes_from_the_file_name() -> None:
    spec = uniswap.pool_spec_from_name(DECODED_005.name)
    assert (spec.address, spec.fee, spec.tick_spacing) == (ADDRESS_005, 500, 10)
    assert (spec.token0, spec.decimals0, spec.token1, spec.decimals1) == ("USDC", 6, "WETH", 18)
    assert spec.venue == f"uniswap_v3:{ADDRESS_005}"
    spec03 = uniswap.pool_spec_from_name(RAW_03.name)
    assert (spec03.address, spec03.fee, spec03.tick_spacing) == (
        "0x8ad599c3a0ff1de082011efddc58f1908eb6e6d8",
        3000,
        60,
    )
    full = uniswap.pool_spec_from_name(
        "univ3_eth_wbtc_weth_03_0xcbcdf9626bc03e24f779434178a73a0b4bad62ed_2024-01-05.tick.csv"
    )
    assert (full.decimals0, full.fee, full.tick_spacing) == (8, 3000, 60)


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("pool.csv", "cannot tell the pool"),
        ("univ3_eth_usdc_weth_02_0x88e6_2024-01-05.tick.csv", "fee code"),
        ("univ3_eth_usdc_weth_005_0x1234_2024-01-05.tick.csv", "prefix"),
        ("univ3_eth_usdc_weth_03_0x88e6_2024-01-05.tick.csv", "fee 500"),
        ("univ3_eth_usdc_pepe_03_0x88e6_2024-01-05.tick.csv", "PEPE"),
    ],
)
def test_a_file_name_that_does_not_name_a_pool_is_an_input_error(name: str, complaint: str) -> None:
    with pytest.raises(InputError, match=complaint):
        uniswap.pool_spec_from_name(name)


# ---- whole files -----------------------------------------------------------------------------


def test_decoded_day_becomes_a_state_row_then_every_swap_mint_and_burn(tmp_path: Path) -> None:
    result = uniswap.run(DECODED_005, tmp_path / "feed")
    assert result.events == 1 + 6046 + 54 + 69
    assert result.messages == [
        f"{DECODED_005.name}: USDC/WETH fee 500 pool {ADDRESS_005}: 6046 swaps, 54 mints, "
        "69 burns; skipped 65 Collect"
    ]
    rows = feed_rows(tmp_path / "feed")
    state, first = rows[0], rows[1]
    assert state["kind"] == EventKind.POOL_STATE
    assert json.loads(state["value"]) == {
        "fee": 500,
        "tick_spacing": 10,
        "token0": "USDC",
        "token1": "WETH",
        "decimals0": 6,
        "decimals1": 18,
        "address": ADDRESS_005,
        "chain": "eth",
    }
    # the earliest state the file knows: right after its first swap, which follows
    assert (state["sqrt_price_x96"], state["liquidity"], state["tick"]) == (
        first["sqrt_price_x96"],
        first["liquidity"],
        first["tick"],
    )
    assert first["ts_event"] == first["ts_recv"] == 1704412823 * 10**9  # 2024-01-05 00:00:23Z
    assert (first["kind"], first["venue"], first["instrument"]) == (
        EventKind.POOL_SWAP,
        f"uniswap_v3:{ADDRESS_005}",
        "USDC/WETH",
    )
    assert (first["amount0"], first["amount1"], first["tick"]) == (
        "-22686110",
        "10000000000000000",
        199045,
    )
    assert first["sqrt_price_x96"] == "1662995104975155420368771254341874"
    assert first["liquidity"] == "12453647101533358277"
    assert (first["tx_hash"], first["log_index"]) == (
        "0x0bb5e0dc49ae0b5a1949beabadc64522dd5615415a168650a3b592a84ae5ee05",
        169,
    )
    burn = next(r for r in rows if r["kind"] == EventKind.POOL_BURN)
    assert (burn["tick_lower"], burn["tick_upper"], burn["liquidity"]) == (
        199060,
        199070,
        "389297572651811471360",
    )
    assert [r["ts_recv"] for r in rows] == sorted(r["ts_recv"] for r in rows)


@pytest.mark.parametrize(("decoded", "raw"), [(DECODED_005, RAW_005), (DECODED_03, RAW_03)])
def test_raw_logs_and_decoded_tables_give_the_same_feed(
    tmp_path: Path, decoded: Path, raw: Path
) -> None:
    uniswap.run(decoded, tmp_path / "decoded")
    uniswap.run(raw, tmp_path / "raw")
    assert feed_rows(tmp_path / "decoded") == feed_rows(tmp_path / "raw")


def test_a_directory_imports_each_pool_day_once_in_chain_order(tmp_path: Path) -> None:
    result = uniswap.run(REAL, tmp_path / "feed")
    assert result.events == (1 + 6046 + 54 + 69) + (1 + 267 + 4 + 17)
    assert result.messages[:2] == [
        f"skipped {DECODED_005.name}: same pool and day as {RAW_005.name}",
        f"skipped {DECODED_03.name}: same pool and day as {RAW_03.name}",
    ]
    rows = feed_rows(tmp_path / "feed")
    assert [r["ts_recv"] for r in rows] == sorted(r["ts_recv"] for r in rows)
    states = [r for r in rows if r["kind"] == EventKind.POOL_STATE]
    assert [json.loads(r["value"])["fee"] for r in states] == [500, 3000]
    for state in states:  # each pool's parameters come before its first event
        first = next(r for r in rows if r["venue"] == state["venue"])
        assert first is state


def test_a_glob_picks_the_matching_files(tmp_path: Path) -> None:
    result = uniswap.run(REAL / "univ3_*_03_*", tmp_path / "feed")
    assert result.events == 1 + 267 + 4 + 17
    assert result.messages[0] == f"skipped {DECODED_03.name}: same pool and day as {RAW_03.name}"


@pytest.mark.parametrize(
    ("src", "summary"),
    [
        (
            RAW_005,
            "verify: 6046 swaps; 6025 reproduced exactly (sqrtPriceX96, tick and amounts; "
            "5372 of 5372 inside one tick-spacing range, 547 across initialized ticks, "
            "191 stopped at a price limit); 21 unchecked (crossed initialized ticks of unknown "
            "liquidityNet: 20, first swap: 1); 0 mismatched",
        ),
        (
            DECODED_03,
            "verify: 267 swaps; 266 reproduced exactly (sqrtPriceX96, tick and amounts; "
            "244 of 244 inside one tick-spacing range, 22 across initialized ticks, "
            "23 stopped at a price limit); 1 unchecked (first swap: 1); 0 mismatched",
        ),
    ],
)
def test_verify_reports_how_many_swaps_the_pool_math_reproduces(
    tmp_path: Path, src: Path, summary: str
) -> None:
    result = uniswap.run(src, tmp_path / "feed", verify=True)
    assert result.messages[1:] == [summary]


def test_the_state_row_goes_right_before_the_first_swap(tmp_path: Path) -> None:
    lines = DECODED_03.read_text(encoding="utf-8").splitlines(keepends=True)
    header, mint, swap = lines[0], lines[11], lines[12]  # a MINT, then the next SWAP
    src = write(tmp_path, header + mint + swap, DECODED_03.name)
    uniswap.run(src, tmp_path / "feed")
    rows = feed_rows(tmp_path / "feed")
    assert [r["kind"] for r in rows] == [
        EventKind.POOL_MINT,
        EventKind.POOL_STATE,
        EventKind.POOL_SWAP,
    ]
    assert (
        rows[1]["sqrt_price_x96"]
        == rows[2]["sqrt_price_x96"]
        == "1662973099637355982225733828314329"
    )
    # with no swap at all there is no state to give: parameters only
    src = write(tmp_path, header + mint, DECODED_03.name)
    uniswap.run(src, tmp_path / "feed2")
    state, minted = feed_rows(tmp_path / "feed2")
    assert (state["kind"], state["sqrt_price_x96"], state["tick"]) == (
        EventKind.POOL_STATE,
        None,
        None,
    )
    assert (minted["tick_lower"], minted["tick_upper"], minted["liquidity"]) == (
        192120,
        205980,
        "24558964680929080",
    )


# ---- bad input -------------------------------------------------------------------------------

NAME = "univ3_eth_usdc_weth_005_0x88e6_2024-01-05.tick.csv"


def write(tmp_path: Path, text: str, name: str = NAME) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_source_with_no_pool_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no univ3_"):
        uniswap.run(tmp_path / NAME, tmp_path / "feed")
    with pytest.raises(InputError, match="no univ3_"):
        uniswap.run(tmp_path, tmp_path / "feed")


def test_a_file_of_another_shape_is_an_input_error(tmp_path: Path) -> None:
    src = write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(InputError, match="neither decoded pool events"):
        uniswap.run(src, tmp_path / "feed")


def test_a_non_integer_amount_names_the_line_and_column(tmp_path: Path) -> None:
    with gzip.open(DECODED_005, "rt", encoding="utf-8") as f:
        header, first = f.readline(), f.readline()
    src = write(tmp_path, header + first.replace("-22686110", "-2268.6110"))
    with pytest.raises(InputError, match=r"line 2, column amount0: '-2268.6110'"):
        uniswap.run(src, tmp_path / "feed")


def test_a_log_listed_twice_is_an_input_error(tmp_path: Path) -> None:
    with gzip.open(DECODED_005, "rt", encoding="utf-8") as f:
        header, first = f.readline(), f.readline()
    src = write(tmp_path, header + first + first)
    with pytest.raises(InputError, match="appears twice"):
        uniswap.run(src, tmp_path / "feed")


def test_a_truncated_gzip_is_an_input_error(tmp_path: Path) -> None:
    src = tmp_path / (NAME + ".gz")
    src.write_bytes(RAW_005.read_bytes()[:5000])
    with pytest.raises(InputError, match="cannot read"):
        uniswap.run(src, tmp_path / "feed")
