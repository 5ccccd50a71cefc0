// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./ERC20.sol";

/// A tokenized stock as the issuers run them (DOMAIN.md): 18 decimals; one token is worth the
/// underlying share times `multiplier()` (scaled 1e18), raised for reinvested dividends by a
/// schedule announced ahead of its activation time; only the issuer mints and burns; the admin
/// pauses every balance change (a split pauses the token).
contract StockToken is ERC20 {
    uint256 public constant MULTIPLIER_ONE = 1e18;

    address public immutable admin;
    address public issuer;
    bool public paused;

    uint256 private _activeMultiplier = MULTIPLIER_ONE;
    /// The announced multiplier and when it takes effect (0: none announced).
    uint256 public scheduledMultiplier;
    uint256 public scheduledActivation;

    event MultiplierScheduled(uint256 multiplier, uint256 activatesAt);
    event MultiplierUpdated(uint256 multiplier);
    event IssuerChanged(address issuer);
    event Paused();
    event Unpaused();

    modifier onlyAdmin() {
        require(msg.sender == admin, "StockToken: only the admin");
        _;
    }

    modifier onlyIssuer() {
        require(msg.sender == issuer, "StockToken: only the issuer");
        _;
    }

    constructor(string memory name_, string memory symbol_, address issuer_)
        ERC20(name_, symbol_, 18)
    {
        admin = msg.sender;
        issuer = issuer_;
        emit IssuerChanged(issuer_);
    }

    /// The multiplier in force now: the scheduled one from its activation time on, even before
    /// anyone stores it with `activateMultiplier`.
    function multiplier() public view returns (uint256) {
        if (scheduledActivation != 0 && block.timestamp >= scheduledActivation) {
            return scheduledMultiplier;
        }
        return _activeMultiplier;
    }

    /// Announce `newMultiplier` from `activatesAt` on. A schedule that has not activated yet is
    /// replaced (a correction); one that has is stored first.
    function scheduleMultiplier(uint256 newMultiplier, uint256 activatesAt) external onlyAdmin {
        require(newMultiplier > 0, "StockToken: multiplier is zero");
        require(activatesAt > block.timestamp, "StockToken: activation not in the future");
        _storeDueMultiplier();
        scheduledMultiplier = newMultiplier;
        scheduledActivation = activatesAt;
        emit MultiplierScheduled(newMultiplier, activatesAt);
    }

    /// Store a scheduled multiplier whose time has come (anyone may call it).
    function activateMultiplier() external {
        require(_storeDueMultiplier(), "StockToken: no multiplier due");
    }

    function setIssuer(address issuer_) external onlyAdmin {
        issuer = issuer_;
        emit IssuerChanged(issuer_);
    }

    function pause() external onlyAdmin {
        paused = true;
        emit Paused();
    }

    function unpause() external onlyAdmin {
        paused = false;
        emit Unpaused();
    }

    function mint(address to, uint256 value) external onlyIssuer {
        _mint(to, value);
    }

    /// Burn from the issuer's own balance (redeemed tokens are sent to the issuer first).
    function burn(uint256 value) external onlyIssuer {
        _burn(msg.sender, value);
    }

    function _beforeMove() internal view override {
        require(!paused, "StockToken: paused");
    }

    function _storeDueMultiplier() private returns (bool) {
        if (scheduledActivation == 0 || block.timestamp < scheduledActivation) {
            return false;
        }
        _activeMultiplier = scheduledMultiplier;
        scheduledMultiplier = 0;
        scheduledActivation = 0;
        emit MultiplierUpdated(_activeMultiplier);
        return true;
    }
}
