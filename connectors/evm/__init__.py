"""The local chain: anvil, our Solidity contracts and Uniswap v3, deployed with web3.py.

``anvil`` starts and stops an anvil node on 127.0.0.1 (the binary from the npm package
``@foundry-rs/anvil``); ``solidity`` compiles ``contracts/`` with the npm ``solc`` (solc-js);
``deploy`` deploys Uniswap v3 from the npm artifacts of ``@uniswap/v3-core`` and
``@uniswap/v3-periphery`` together with our tokens, creates pools and adds liquidity;
``v3_state`` reads a deployed pool into the kernel's ``V3Pool``. The npm packages are installed by
``make setup`` from the committed package-lock.json (``node_packages`` finds them). Nothing here
reaches beyond 127.0.0.1. ADR 0014 says what is deployed and why there is no fork.
"""
