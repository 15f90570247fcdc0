// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

interface IERC20 {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

/// @title Pool: a constant-product AMM (x * y = k) with a 0.3 % swap fee.
/// @notice Liquidity is tracked as shares; swaps take an exact input and a minimum output.
contract Pool {
    address public immutable token0;
    address public immutable token1;
    uint256 public reserve0;
    uint256 public reserve1;
    uint256 public totalShares;
    mapping(address => uint256) public shares;

    uint256 public constant FEE_BPS = 30;

    event Mint(address indexed provider, uint256 amount0, uint256 amount1, uint256 shares);
    event Swap(address indexed trader, address indexed tokenIn, uint256 amountIn, uint256 amountOut);

    constructor(address token0_, address token1_) {
        require(token0_ != token1_, "identical tokens");
        token0 = token0_;
        token1 = token1_;
    }

    function getReserves() external view returns (uint256, uint256) {
        return (reserve0, reserve1);
    }

    /// @notice Adds liquidity in any ratio at first, then at the pool's ratio (excess is kept
    /// by the pool, as in Uniswap v2).
    function addLiquidity(uint256 amount0, uint256 amount1) external returns (uint256 minted) {
        require(amount0 > 0 && amount1 > 0, "zero amount");
        require(IERC20(token0).transferFrom(msg.sender, address(this), amount0), "transfer0");
        require(IERC20(token1).transferFrom(msg.sender, address(this), amount1), "transfer1");
        if (totalShares == 0) {
            minted = _sqrt(amount0 * amount1);
        } else {
            uint256 a = (amount0 * totalShares) / reserve0;
            uint256 b = (amount1 * totalShares) / reserve1;
            minted = a < b ? a : b;
        }
        require(minted > 0, "no shares");
        shares[msg.sender] += minted;
        totalShares += minted;
        reserve0 += amount0;
        reserve1 += amount1;
        emit Mint(msg.sender, amount0, amount1, minted);
    }

    /// @notice The output of swapping `amountIn` of `tokenIn` at the current reserves.
    function quote(address tokenIn, uint256 amountIn) public view returns (uint256) {
        (uint256 rIn, uint256 rOut) = tokenIn == token0 ? (reserve0, reserve1) : (reserve1, reserve0);
        uint256 inWithFee = amountIn * (10_000 - FEE_BPS);
        return (inWithFee * rOut) / (rIn * 10_000 + inWithFee);
    }

    function swap(address tokenIn, uint256 amountIn, uint256 minAmountOut) external returns (uint256 amountOut) {
        require(tokenIn == token0 || tokenIn == token1, "unknown token");
        require(amountIn > 0, "zero amount");
        amountOut = quote(tokenIn, amountIn);
        require(amountOut >= minAmountOut, "slippage");
        require(amountOut > 0, "insufficient liquidity");
        address tokenOut = tokenIn == token0 ? token1 : token0;
        require(IERC20(tokenIn).transferFrom(msg.sender, address(this), amountIn), "transfer in");
        require(IERC20(tokenOut).transfer(msg.sender, amountOut), "transfer out");
        if (tokenIn == token0) {
            reserve0 += amountIn;
            reserve1 -= amountOut;
        } else {
            reserve1 += amountIn;
            reserve0 -= amountOut;
        }
        emit Swap(msg.sender, tokenIn, amountIn, amountOut);
    }

    function _sqrt(uint256 y) internal pure returns (uint256 z) {
        if (y > 3) {
            z = y;
            uint256 x = y / 2 + 1;
            while (x < z) {
                z = x;
                x = (y / x + x) / 2;
            }
        } else if (y != 0) {
            z = 1;
        }
    }
}
