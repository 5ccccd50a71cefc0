// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./ERC20.sol";

/// A stablecoin for the local chain (USDC: 6 decimals), any decimals; only its owner mints.
contract CashToken is ERC20 {
    address public immutable owner;

    constructor(string memory name_, string memory symbol_, uint8 decimals_)
        ERC20(name_, symbol_, decimals_)
    {
        owner = msg.sender;
    }

    function mint(address to, uint256 value) external {
        require(msg.sender == owner, "CashToken: only the owner mints");
        _mint(to, value);
    }
}
