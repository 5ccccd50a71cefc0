// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface IUniswapV3PoolMint {
    function token0() external view returns (address);
    function token1() external view returns (address);
    function mint(
        address recipient,
        int24 tickLower,
        int24 tickUpper,
        uint128 amount,
        bytes calldata data
    ) external returns (uint256 amount0, uint256 amount1);
}

interface IERC20TransferFrom {
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// Adds an exact amount of liquidity to Uniswap v3 pools in given tick ranges, owned by the
/// caller, who pays from its approved balances in the pool's mint callback. The position manager
/// takes token amounts and works the liquidity out from them; tests and the sandbox need the
/// liquidity itself.
contract LiquidityAdder {
    address private _poolMinting;

    /// One `pool.mint` per range; returns what each range cost in token0 and token1.
    function addLiquidity(
        address pool,
        int24[] calldata ticksLower,
        int24[] calldata ticksUpper,
        uint128[] calldata amounts
    ) external returns (uint256[] memory paid0, uint256[] memory paid1) {
        uint256 n = amounts.length;
        require(ticksLower.length == n && ticksUpper.length == n, "LiquidityAdder: lengths differ");
        paid0 = new uint256[](n);
        paid1 = new uint256[](n);
        _poolMinting = pool;
        for (uint256 i = 0; i < n; i++) {
            (paid0[i], paid1[i]) = IUniswapV3PoolMint(pool).mint(
                msg.sender, ticksLower[i], ticksUpper[i], amounts[i], abi.encode(msg.sender)
            );
        }
        _poolMinting = address(0);
    }

    function uniswapV3MintCallback(uint256 owed0, uint256 owed1, bytes calldata data) external {
        require(msg.sender == _poolMinting, "LiquidityAdder: not the pool being minted");
        address payer = abi.decode(data, (address));
        IUniswapV3PoolMint pool = IUniswapV3PoolMint(msg.sender);
        if (owed0 > 0) {
            require(IERC20TransferFrom(pool.token0()).transferFrom(payer, msg.sender, owed0));
        }
        if (owed1 > 0) {
            require(IERC20TransferFrom(pool.token1()).transferFrom(payer, msg.sender, owed1));
        }
    }
}
