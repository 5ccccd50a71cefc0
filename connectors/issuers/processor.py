"""What the order-processor and firm-quote adapters share: a wallet (their own, or one shared by
the adapters that send from one key) and the issuer's OrderProcessor contract, with its stock
token, cash token and fees read once at connect (``read_processor``)."""

from __future__ import annotations

from pydantic import SecretStr
from web3.contract import AsyncContract

from bot.clock import Clock
from connectors.issuers.live import LiveIssuer
from connectors.issuers.wallet import ChainWallet, read_processor


class ProcessorIssuer(LiveIssuer):
    """A live issuer that settles through the OrderProcessor at ``processor``."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        token: str,
        *,
        rpc_url: str,
        processor: str,
        private_key: SecretStr | str,
        wallet: ChainWallet | None,
    ) -> None:
        super().__init__(name, clock, (token,))
        self.wallet = wallet or ChainWallet(rpc_url, private_key)
        self._owns_wallet = wallet is None or wallet.one_adapter
        self._processor_address = processor
        self._processor: AsyncContract | None = None
        self._stock: AsyncContract | None = None
        self._usdc: AsyncContract | None = None
        self.fee_flat = 0
        self.fee_bps = 0

    async def connect(self) -> None:
        await self.wallet.connect()
        terms = await read_processor(self.wallet, self._processor_address)
        self._processor, self._stock, self._usdc, self.fee_flat, self.fee_bps = terms

    async def close(self) -> None:
        await self.close_tasks()
        if self._owns_wallet:
            await self.wallet.close()

    @property
    def processor(self) -> AsyncContract:
        assert self._processor is not None, "connect() first"
        return self._processor
