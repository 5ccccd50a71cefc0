// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./ERC20.sol";

/// What the processor needs of the stock token: it is the token's issuer (mints, and burns its
/// own balance).
interface IIssuedStock {
    function mint(address to, uint256 value) external;
    function burn(uint256 value) external;
}

/// An issuer's primary market on chain, cash-settled (DOMAIN.md), for one stock token and one
/// cash token (USDC). Two ways in:
///
/// - Orders filled by the issuer (Dinari's order processor): `requestMint` escrows the cash for
///   `qty` at a max price (plus the fee on it), `requestRedeem` escrows the tokens; the issuer's
///   operator fills the whole order at the price it got (`fillOrder`: tokens minted or cash paid,
///   unused escrow refunded; `OrderFill`) or cancels it with a reason (`cancelOrder`: escrow
///   refunded; `OrderCancelled`).
/// - Firm quotes (Ondo's attestations): `mintWithAttestation` / `redeemWithAttestation` take a
///   quote (kind, requester, qty, price, expiry, nonce) signed (EIP-712) by the issuer's quote key
///   and settle it in the same transaction (`QuoteSettled`); an expired, reused or foreign-signed
///   quote reverts.
///
/// Prices are cash-token units (USDC: 1e-6 USD) per whole token (1e18 units). A notional rounds
/// in the issuer's favour: up for a mint, down for a redeem; the fee is `feeFlat` plus `feeBps`
/// of the notional, rounded up. Revert reasons start with the issuer's code, as the adapters
/// report them (QUOTE_EXPIRED, BAD_SIGNATURE, LIMIT_PRICE, ...). Mints and redeemed cash go
/// through the treasury, which approves this contract for the cash it pays out.
contract OrderProcessor {
    uint8 public constant MINT = 0;
    uint8 public constant REDEEM = 1;
    uint8 public constant OPEN = 1;
    uint8 public constant FILLED = 2;
    uint8 public constant CANCELLED = 3;
    uint256 private constant ONE_TOKEN = 1e18;
    uint256 private constant BPS = 10_000;
    uint256 private constant HALF_ORDER =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    bytes32 public constant QUOTE_TYPEHASH = keccak256(
        "Quote(uint8 kind,address requester,uint256 qty,uint256 price,uint256 expiry,uint256 nonce)"
    );
    bytes32 public immutable DOMAIN_SEPARATOR;

    struct Order {
        address requester;
        uint8 kind;
        uint8 status;
        uint256 qty;
        uint256 limitPrice; // max for a mint, min for a redeem
        uint256 escrow; // cash units (mint) or token units (redeem)
        bytes32 clientRef;
    }

    struct Quote {
        uint8 kind;
        address requester;
        uint256 qty;
        uint256 price;
        uint256 expiry; // unix seconds, inclusive
        uint256 nonce;
    }

    ERC20 public immutable cash;
    ERC20 public immutable stock;
    address public immutable admin;
    address public operator;
    address public treasury;
    address public quoteSigner;
    uint256 public feeFlat;
    uint256 public feeBps;

    uint256 public nextOrderId = 1;
    mapping(uint256 => Order) public orders;
    /// keccak256(requester, clientRef) => order id: finds an order whose answer was lost.
    mapping(bytes32 => uint256) public orderIdByRef;
    mapping(uint256 => bool) public quoteUsed;

    event OrderCreated(
        uint256 indexed id,
        address indexed requester,
        bytes32 indexed clientRef,
        uint8 kind,
        uint256 qty,
        uint256 limitPrice,
        uint256 escrow
    );
    event OrderFill(
        uint256 indexed id,
        address indexed requester,
        uint8 kind,
        uint256 qty,
        uint256 price,
        uint256 notional,
        uint256 fee,
        uint256 refund
    );
    event OrderCancelled(uint256 indexed id, address indexed requester, uint256 refund, string reason);
    event QuoteSettled(
        uint256 indexed nonce,
        address indexed requester,
        uint8 kind,
        uint256 qty,
        uint256 price,
        uint256 notional,
        uint256 fee
    );
    event FeesSet(uint256 feeFlat, uint256 feeBps);
    event QuoteSignerSet(address signer);

    modifier onlyOperator() {
        require(msg.sender == operator, "NOT_OPERATOR: only the issuer's operator");
        _;
    }

    modifier onlyAdmin() {
        require(msg.sender == admin, "NOT_ADMIN: only the admin");
        _;
    }

    constructor(address cash_, address stock_, address operator_, address treasury_, address signer_) {
        cash = ERC20(cash_);
        stock = ERC20(stock_);
        admin = msg.sender;
        operator = operator_;
        treasury = treasury_;
        quoteSigner = signer_;
        DOMAIN_SEPARATOR = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("PegbotOrderProcessor"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
        emit QuoteSignerSet(signer_);
    }

    // ---- settings --------------------------------------------------------------------------

    function setFees(uint256 flat, uint256 bps) external onlyAdmin {
        require(bps < BPS, "BAD_FEE: fee bps must be below 10000");
        feeFlat = flat;
        feeBps = bps;
        emit FeesSet(flat, bps);
    }

    function setQuoteSigner(address signer) external onlyAdmin {
        quoteSigner = signer;
        emit QuoteSignerSet(signer);
    }

    // ---- arithmetic the adapters repeat off chain ------------------------------------------

    function notionalOf(uint256 qty, uint256 price, bool roundUp) public pure returns (uint256) {
        uint256 product = qty * price;
        return roundUp ? (product + ONE_TOKEN - 1) / ONE_TOKEN : product / ONE_TOKEN;
    }

    function feeOf(uint256 notional) public view returns (uint256) {
        return feeFlat + (notional * feeBps + BPS - 1) / BPS;
    }

    /// The cash `requestMint(qty, maxPrice, ...)` escrows: the notional at the max price and its fee.
    function mintEscrow(uint256 qty, uint256 maxPrice) public view returns (uint256) {
        uint256 notional = notionalOf(qty, maxPrice, true);
        return notional + feeOf(notional);
    }

    // ---- orders ----------------------------------------------------------------------------

    function requestMint(uint256 qty, uint256 maxPrice, bytes32 clientRef) external returns (uint256) {
        uint256 escrow = mintEscrow(qty, maxPrice);
        require(cash.transferFrom(msg.sender, address(this), escrow), "ESCROW: cash not taken");
        return _create(MINT, qty, maxPrice, escrow, clientRef);
    }

    function requestRedeem(uint256 qty, uint256 minPrice, bytes32 clientRef) external returns (uint256) {
        require(stock.transferFrom(msg.sender, address(this), qty), "ESCROW: tokens not taken");
        return _create(REDEEM, qty, minPrice, qty, clientRef);
    }

    function _create(uint8 kind, uint256 qty, uint256 limitPrice, uint256 escrow, bytes32 clientRef)
        private
        returns (uint256 id)
    {
        require(qty > 0, "INVALID_QTY: quantity is zero");
        bytes32 key = keccak256(abi.encode(msg.sender, clientRef));
        require(orderIdByRef[key] == 0, "DUPLICATE: client reference already used");
        id = nextOrderId++;
        orders[id] = Order(msg.sender, kind, OPEN, qty, limitPrice, escrow, clientRef);
        orderIdByRef[key] = id;
        emit OrderCreated(id, msg.sender, clientRef, kind, qty, limitPrice, escrow);
    }

    function orderIdFor(address requester, bytes32 clientRef) external view returns (uint256) {
        return orderIdByRef[keccak256(abi.encode(requester, clientRef))];
    }

    /// Fill the whole order at `price`.
    function fillOrder(uint256 id, uint256 price) external onlyOperator {
        Order storage order = orders[id];
        require(order.status == OPEN, "NOT_OPEN: order is not open");
        order.status = FILLED;
        uint256 notional;
        uint256 fee;
        uint256 refund;
        if (order.kind == MINT) {
            require(price <= order.limitPrice, "LIMIT_PRICE: above the order's max price");
            notional = notionalOf(order.qty, price, true);
            fee = feeOf(notional);
            refund = order.escrow - (notional + fee);
            require(cash.transfer(treasury, notional + fee), "PAY: cash not paid");
            if (refund > 0) {
                require(cash.transfer(order.requester, refund), "REFUND: cash not refunded");
            }
            IIssuedStock(address(stock)).mint(order.requester, order.qty);
        } else {
            require(price >= order.limitPrice, "LIMIT_PRICE: below the order's min price");
            notional = notionalOf(order.qty, price, false);
            fee = feeOf(notional);
            require(notional >= fee, "MIN_NOTIONAL: notional below the fee");
            IIssuedStock(address(stock)).burn(order.qty);
            require(cash.transferFrom(treasury, order.requester, notional - fee), "PAY: cash not paid");
        }
        emit OrderFill(id, order.requester, order.kind, order.qty, price, notional, fee, refund);
    }

    /// Cancel an open order, refunding its escrow; `reason` starts with the issuer's code.
    function cancelOrder(uint256 id, string calldata reason) external onlyOperator {
        Order storage order = orders[id];
        require(order.status == OPEN, "NOT_OPEN: order is not open");
        order.status = CANCELLED;
        ERC20 refunded = order.kind == MINT ? cash : stock;
        require(refunded.transfer(order.requester, order.escrow), "REFUND: escrow not refunded");
        emit OrderCancelled(id, order.requester, order.escrow, reason);
    }

    /// Mint to `to` outside an order (the issuer's delayed requests, settled off this contract).
    function issue(address to, uint256 qty) external onlyOperator {
        IIssuedStock(address(stock)).mint(to, qty);
    }

    // ---- firm quotes -----------------------------------------------------------------------

    function quoteDigest(Quote calldata q) public view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(QUOTE_TYPEHASH, q.kind, q.requester, q.qty, q.price, q.expiry, q.nonce));
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR, structHash));
    }

    function mintWithAttestation(Quote calldata q, bytes calldata signature) external {
        require(q.kind == MINT, "WRONG_KIND: not a mint quote");
        _checkQuote(q, signature);
        uint256 notional = notionalOf(q.qty, q.price, true);
        uint256 fee = feeOf(notional);
        require(cash.transferFrom(msg.sender, treasury, notional + fee), "PAY: cash not taken");
        IIssuedStock(address(stock)).mint(msg.sender, q.qty);
        emit QuoteSettled(q.nonce, msg.sender, MINT, q.qty, q.price, notional, fee);
    }

    function redeemWithAttestation(Quote calldata q, bytes calldata signature) external {
        require(q.kind == REDEEM, "WRONG_KIND: not a redeem quote");
        _checkQuote(q, signature);
        uint256 notional = notionalOf(q.qty, q.price, false);
        uint256 fee = feeOf(notional);
        require(notional >= fee, "MIN_NOTIONAL: notional below the fee");
        require(stock.transferFrom(msg.sender, address(this), q.qty), "ESCROW: tokens not taken");
        IIssuedStock(address(stock)).burn(q.qty);
        require(cash.transferFrom(treasury, msg.sender, notional - fee), "PAY: cash not paid");
        emit QuoteSettled(q.nonce, msg.sender, REDEEM, q.qty, q.price, notional, fee);
    }

    function _checkQuote(Quote calldata q, bytes calldata signature) private {
        require(q.requester == msg.sender, "NOT_REQUESTER: quote is for another account");
        require(block.timestamp <= q.expiry, "QUOTE_EXPIRED: quote expired");
        require(!quoteUsed[q.nonce], "QUOTE_USED: quote already settled");
        require(q.qty > 0, "INVALID_QTY: quantity is zero");
        require(_signer(quoteDigest(q), signature) == quoteSigner, "BAD_SIGNATURE: not the issuer's quote");
        quoteUsed[q.nonce] = true;
    }

    function _signer(bytes32 digest, bytes calldata signature) private pure returns (address) {
        require(signature.length == 65, "BAD_SIGNATURE: length is not 65");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        require(uint256(s) <= HALF_ORDER, "BAD_SIGNATURE: malleable s");
        require(v == 27 || v == 28, "BAD_SIGNATURE: bad v");
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "BAD_SIGNATURE: no signer");
        return signer;
    }
}
