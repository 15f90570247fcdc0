//! The genesis state and block.

use std::collections::BTreeMap;

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::{
    eip2935::{HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE},
    eip4788::{BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CODE},
    eip7002::{WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS, WITHDRAWAL_REQUEST_PREDEPLOY_CODE},
    eip7251::{CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS, CONSOLIDATION_REQUEST_PREDEPLOY_CODE},
    eip7685::EMPTY_REQUESTS_HASH,
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use alloy_trie::EMPTY_ROOT_HASH;
use revm::{
    bytecode::Bytecode,
    database::states::{PlainStorageChangeset, StateChangeset},
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};

/// The mnemonic of the standard development accounts (anvil's, hardhat's).
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// How many development accounts the devnet funds.
pub const DEV_ACCOUNT_COUNT: u32 = 10;

/// Balance of each development account: 10,000 ETH.
pub const DEV_BALANCE: U256 = U256::from_limbs([0x19e0_c9ba_b240_0000, 0x21e, 0, 0]);

/// One account of the genesis state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenesisAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Contract code, if any.
    pub code: Option<Bytes>,
    /// Storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// The genesis block's parameters and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Timestamp of the genesis block. Fixed, so the genesis hash is the same on every run.
    pub timestamp: u64,
    /// Gas limit of the genesis block.
    pub gas_limit: u64,
    /// Base fee of the genesis block.
    pub base_fee: u64,
    /// Header extra data.
    pub extra_data: Bytes,
    /// The initial state.
    pub accounts: BTreeMap<Address, GenesisAccount>,
}

/// The development signers, derived from [`DEV_MNEMONIC`] at `m/44'/60'/0'/0/i`.
pub fn dev_signers() -> Vec<PrivateKeySigner> {
    (0..DEV_ACCOUNT_COUNT)
        .map(|i| {
            MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(i)
                .and_then(|b| b.build())
                .expect("the standard mnemonic and index derive a key")
        })
        .collect()
}

impl Genesis {
    /// The devnet genesis: the ten development accounts with 10,000 ETH each and the system
    /// contracts the active forks call (EIP-2935, EIP-4788, EIP-7002, EIP-7251).
    pub fn devnet(gas_limit: u64, base_fee: u64) -> Self {
        let mut accounts = BTreeMap::new();
        for signer in dev_signers() {
            accounts.insert(
                signer.address(),
                GenesisAccount {
                    balance: DEV_BALANCE,
                    ..Default::default()
                },
            );
        }
        for (address, code) in [
            (HISTORY_STORAGE_ADDRESS, &HISTORY_STORAGE_CODE),
            (BEACON_ROOTS_ADDRESS, &BEACON_ROOTS_CODE),
            (
                WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
                &WITHDRAWAL_REQUEST_PREDEPLOY_CODE,
            ),
            (
                CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
                &CONSOLIDATION_REQUEST_PREDEPLOY_CODE,
            ),
        ] {
            // EIP-161: a contract account starts with nonce 1.
            accounts.insert(
                address,
                GenesisAccount {
                    nonce: 1,
                    code: Some(code.clone()),
                    ..Default::default()
                },
            );
        }
        Self {
            timestamp: 0,
            gas_limit,
            base_fee,
            extra_data: Bytes::new(),
            accounts,
        }
    }

    /// The genesis state as a state change from nothing.
    pub(crate) fn changeset(&self) -> StateChangeset {
        let mut changes = StateChangeset::default();
        for (address, account) in &self.accounts {
            let (code_hash, code) = match &account.code {
                Some(code) if !code.is_empty() => {
                    let bytecode = Bytecode::new_raw(code.clone());
                    (keccak256(code), Some(bytecode))
                }
                _ => (KECCAK_EMPTY, None),
            };
            if let Some(code) = &code {
                changes.contracts.push((code_hash, code.clone()));
            }
            changes.accounts.push((
                *address,
                Some(AccountInfo::new(
                    account.balance,
                    account.nonce,
                    code_hash,
                    code.unwrap_or_default(),
                )),
            ));
            changes.storage.push(PlainStorageChangeset {
                address: *address,
                wipe_storage: false,
                storage: account.storage.iter().map(|(k, v)| (*k, *v)).collect(),
            });
        }
        changes
    }

    /// The genesis header for a state with root `state_root`.
    pub(crate) fn header(&self, state_root: B256) -> Header {
        Header {
            parent_hash: B256::ZERO,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: Address::ZERO,
            state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            logs_bloom: Default::default(),
            difficulty: U256::ZERO,
            number: 0,
            gas_limit: self.gas_limit,
            gas_used: 0,
            timestamp: self.timestamp,
            extra_data: self.extra_data.clone(),
            mix_hash: B256::ZERO,
            nonce: Default::default(),
            base_fee_per_gas: Some(self.base_fee),
            withdrawals_root: Some(EMPTY_ROOT_HASH),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            requests_hash: Some(EMPTY_REQUESTS_HASH),
            block_access_list_hash: None,
            slot_number: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    #[test]
    fn test_dev_accounts_match_anvil() {
        let signers = dev_signers();
        assert_eq!(
            signers[0].address(),
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            signers[9].address(),
            address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
        );
        assert_eq!(
            DEV_BALANCE,
            U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18))
        );
    }
}
