//! Methods of the execution-apis specification this node does not serve, each refused with a
//! reason a client's user can act on rather than "method not found".

use jsonrpsee::{RpcModule, types::ErrorObjectOwned};

/// EIP-1474's "method not supported": the method exists, this node does not offer it.
const NOT_SUPPORTED: i32 = -32004;

const NO_KEYS: &str = "this node holds no keys: sign with your wallet and send the signed transaction with eth_sendRawTransaction";

/// Each refused method with why.
const REFUSED: &[(&str, &str)] = &[
    ("eth_sendTransaction", NO_KEYS),
    ("eth_sign", NO_KEYS),
    ("eth_signTransaction", NO_KEYS),
    (
        "eth_fillTransaction",
        "this node fills no transactions: take nonce, fees and gas from eth_getTransactionCount, eth_maxPriorityFeePerGas and eth_estimateGas",
    ),
    (
        "eth_simulateV1",
        "eth_simulateV1 is not served: use eth_call, or eth_callBundle to run several transactions in a row",
    ),
    (
        "eth_getBlockAccessList",
        "no block access lists: Amsterdam (EIP-7928) is not active on this chain",
    ),
    (
        "eth_config",
        "eth_config (EIP-7910) is not served: every fork through Osaka is active from genesis on this chain",
    ),
    (
        "eth_capabilities",
        "eth_capabilities is not served: every method this node answers is listed in its documentation",
    ),
];

/// The refused methods, to merge into the server's.
pub(crate) fn refused() -> RpcModule<()> {
    let mut module = RpcModule::new(());
    for (method, why) in REFUSED {
        module
            .register_method(method, move |_, _, _| {
                Err::<(), _>(ErrorObjectOwned::owned(NOT_SUPPORTED, *why, None::<()>))
            })
            .expect("each name is registered once");
    }
    module
}
