//! `X-Flashbots-Signature`: who sent a request, proven over its raw body.
//!
//! The header is `<address>:<0x 65-byte signature>`, an EIP-191 `personal_sign` by that
//! address over the 66 ASCII characters `0x` + lowercase hex of `keccak256(body)` (what ethers'
//! `signMessage(id(body))` and web3-flashbots produce). It is checked on the exact bytes
//! received, before any JSON parsing, so re-serialisation can never change what was signed.

use alloy_primitives::{Address, Signature, hex, keccak256};

/// Name of the header (HTTP header names are case-insensitive).
pub const FLASHBOTS_SIGNATURE_HEADER: &str = "x-flashbots-signature";

/// Why a request's sender could not be established.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request carries no signature header.
    #[error("missing X-Flashbots-Signature header")]
    Missing,
    /// The header is not `<address>:<0x signature>`.
    #[error(
        "malformed X-Flashbots-Signature header: expected <address>:<0x-prefixed 65-byte signature>"
    )]
    Malformed,
    /// The signature bytes are not a valid secp256k1 signature.
    #[error("invalid X-Flashbots-Signature: bad signature")]
    BadSignature,
    /// The signature is valid but was made by another key (or over another body).
    #[error("invalid X-Flashbots-Signature: signer {recovered} is not {claimed}")]
    Mismatch {
        /// The address the header names.
        claimed: Address,
        /// The address that signed.
        recovered: Address,
    },
}

/// Verifies `header` against the raw request `body` and returns the sender.
pub fn verify_flashbots_signature(header: &str, body: &[u8]) -> Result<Address, AuthError> {
    let (address, signature) = header.trim().split_once(':').ok_or(AuthError::Malformed)?;
    let claimed: Address = address.trim().parse().map_err(|_| AuthError::Malformed)?;
    let signature = signature.trim();
    if !signature.starts_with("0x") {
        return Err(AuthError::Malformed);
    }
    let bytes = hex::decode(signature).map_err(|_| AuthError::Malformed)?;
    if bytes.len() != 65 {
        return Err(AuthError::Malformed);
    }
    let signature = Signature::try_from(bytes.as_slice()).map_err(|_| AuthError::BadSignature)?;
    let message = format!("{:#x}", keccak256(body));
    let recovered = signature
        .recover_address_from_msg(message.as_bytes())
        .map_err(|_| AuthError::BadSignature)?;
    if recovered != claimed {
        return Err(AuthError::Mismatch { claimed, recovered });
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    /// Real requests from ethers-provider-bundle, mev-share-client and web3-flashbots.
    fn fixtures() -> Vec<(String, String, String)> {
        cobuild_test_utils::flashbots_fixtures()
    }

    const SENDER: Address = address!("0x4a62316623ad457F02cDC5D997deD67a383EC569");

    #[test]
    fn test_every_real_client_signature_verifies() {
        let fixtures = fixtures();
        assert!(fixtures.len() >= 10);
        for (method, header, body) in fixtures {
            assert_eq!(
                verify_flashbots_signature(&header, body.as_bytes()),
                Ok(SENDER),
                "{method}"
            );
        }
    }

    #[test]
    fn test_one_changed_byte_fails() {
        for (method, header, body) in fixtures() {
            let mut tampered = body.into_bytes();
            let last = tampered.len() - 2;
            tampered[last] ^= 1;
            assert!(
                matches!(
                    verify_flashbots_signature(&header, &tampered),
                    Err(AuthError::Mismatch { .. })
                ),
                "{method}"
            );
        }
    }

    #[test]
    fn test_malformed_headers_are_refused() {
        let (_, header, body) = fixtures().remove(0);
        let (addr, sig) = header.split_once(':').expect("fixture header");
        for bad in [
            "",
            "nocolon",
            &format!("{addr}:"),
            &format!("0x1234:{sig}"),
            &format!("{addr}:{}", &sig[2..]),
            &format!("{addr}:{}", &sig[..sig.len() - 2]),
        ] {
            assert_eq!(
                verify_flashbots_signature(bad, body.as_bytes()),
                Err(AuthError::Malformed),
                "{bad:?}"
            );
        }
        let other = "0x0000000000000000000000000000000000000001";
        assert!(matches!(
            verify_flashbots_signature(&format!("{other}:{sig}"), body.as_bytes()),
            Err(AuthError::Mismatch {
                recovered: SENDER,
                ..
            })
        ));
    }
}
