//! Changing the registry: deployment and owner transactions, signed locally.

use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, TxHash};
use alloy_provider::{DynProvider, Provider, ProviderBuilder, network::TransactionBuilder};
use alloy_rpc_types_eth::{TransactionReceipt, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolEvent};
use cobuild_contracts::{IRegistry, registry_deploy_code};

use super::ContractError;
use crate::{Member, MemberId};

/// A member's registered fields, without the id (the contract assigns it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// Where its P2P transport listens (`host:port`); not empty.
    pub address: String,
    /// Its ed25519 node public key; not zero, not held by another current member.
    pub node_key: B256,
    /// Its compressed BLS builder public key: 48 bytes.
    pub bls_key: Bytes,
    /// Expected TEE measurement, if the member runs attested.
    pub attestation: Option<B256>,
}

impl From<Member> for MemberSpec {
    fn from(member: Member) -> Self {
        Self {
            address: member.address,
            node_key: member.node_key,
            bls_key: member.bls_key,
            attestation: member.attestation,
        }
    }
}

/// Sends the owner's changes to a `Registry.sol` deployment: each call signs one transaction
/// with the local key, waits until it is mined and answers what it did.
///
/// A change the contract would refuse (not the owner, unknown id, duplicate node key, bad key
/// length) fails before anything is sent, with the contract's reason in
/// [`ContractError::Refused`]: the gas estimate runs it first. Nonces are read from the node
/// for every transaction, so a refused change leaves no gap.
#[derive(Debug, Clone)]
pub struct RegistryWriter {
    provider: DynProvider,
    address: Address,
    sender: Address,
    timeout: Duration,
}

impl RegistryWriter {
    /// How long a transaction may take to be mined, by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
    /// How often the receipt is polled.
    const POLL: Duration = Duration::from_millis(100);

    /// Changes the registry at `address` through `rpc_url`, signing with `signer`.
    ///
    /// Needs a tokio runtime.
    pub async fn connect(
        rpc_url: &str,
        address: Address,
        signer: PrivateKeySigner,
    ) -> Result<Self, ContractError> {
        let sender = signer.address();
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(signer)
            .connect(rpc_url);
        let provider = tokio::time::timeout(Self::DEFAULT_TIMEOUT, provider)
            .await
            .map_err(|_| ContractError::Timeout {
                what: "connect",
                after: Self::DEFAULT_TIMEOUT,
            })?
            .map_err(ContractError::Rpc)?
            .erased();
        Ok(Self {
            provider,
            address,
            sender,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Deploys a new registry owned by `owner`, sent by `signer`, and answers a writer for it.
    ///
    /// Needs a tokio runtime.
    pub async fn deploy(
        rpc_url: &str,
        signer: PrivateKeySigner,
        owner: Address,
    ) -> Result<Self, ContractError> {
        let mut writer = Self::connect(rpc_url, Address::ZERO, signer).await?;
        let request = TransactionRequest::default()
            .with_from(writer.sender)
            .with_deploy_code(registry_deploy_code(owner));
        let receipt = writer.send(request).await?;
        writer.address = receipt.contract_address.ok_or(ContractError::Receipt {
            tx_hash: receipt.transaction_hash,
            missing: "contract address",
        })?;
        tracing::info!(address = %writer.address, %owner, "registry.contract.deployed");
        Ok(writer)
    }

    /// Waits at most `timeout` for each transaction to be mined.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The registry changed.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The account that signs (it must be the owner for changes to pass).
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The registry's owner.
    pub async fn owner(&self) -> Result<Address, ContractError> {
        let output = self.call(IRegistry::ownerCall {}.abi_encode()).await?;
        Ok(IRegistry::ownerCall::abi_decode_returns(&output)?)
    }

    /// Adds a member; answers the id the contract gave it.
    pub async fn add_member(&self, spec: &MemberSpec) -> Result<MemberId, ContractError> {
        let call = IRegistry::addMemberCall {
            addr: spec.address.clone(),
            nodeKey: spec.node_key,
            blsKey: spec.bls_key.clone(),
            attestation: spec.attestation.unwrap_or_default(),
        };
        let receipt = self.transact(call.abi_encode()).await?;
        let id = receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.address)
            .find_map(|log| IRegistry::MemberAdded::decode_log_data(log.data()).ok())
            .map(|event| event.id)
            .ok_or(ContractError::Receipt {
                tx_hash: receipt.transaction_hash,
                missing: "MemberAdded event",
            })?;
        tracing::info!(registry = %self.address, id, "registry.contract.member_added");
        Ok(id)
    }

    /// Sends `value` wei from the writer's account to `to` unless `to` holds at least half of
    /// it already (a devnet tops up its builders' coinbases this way, so they can pay the gas
    /// of their refund payouts); whether it sent.
    pub async fn top_up(
        &self,
        to: Address,
        value: alloy_primitives::U256,
    ) -> Result<bool, ContractError> {
        let balance = self
            .within("balance", self.provider.get_balance(to).into_future())
            .await?
            .map_err(ContractError::Rpc)?;
        if balance >= value / alloy_primitives::U256::from(2) {
            return Ok(false);
        }
        let request = TransactionRequest::default()
            .from(self.sender)
            .to(to)
            .value(value);
        self.send(request).await?;
        Ok(true)
    }

    /// Removes the current member `id`.
    pub async fn remove_member(&self, id: MemberId) -> Result<TxHash, ContractError> {
        let receipt = self
            .transact(IRegistry::removeMemberCall { id }.abi_encode())
            .await?;
        tracing::info!(registry = %self.address, id, "registry.contract.member_removed");
        Ok(receipt.transaction_hash)
    }

    /// Replaces the fields of the current member `id`.
    pub async fn update_member(
        &self,
        id: MemberId,
        spec: &MemberSpec,
    ) -> Result<TxHash, ContractError> {
        let call = IRegistry::updateMemberCall {
            id,
            addr: spec.address.clone(),
            nodeKey: spec.node_key,
            blsKey: spec.bls_key.clone(),
            attestation: spec.attestation.unwrap_or_default(),
        };
        let receipt = self.transact(call.abi_encode()).await?;
        tracing::info!(registry = %self.address, id, "registry.contract.member_updated");
        Ok(receipt.transaction_hash)
    }

    /// Hands the registry to `new_owner`.
    pub async fn transfer_ownership(&self, new_owner: Address) -> Result<TxHash, ContractError> {
        let call = IRegistry::transferOwnershipCall {
            newOwner: new_owner,
        };
        let receipt = self.transact(call.abi_encode()).await?;
        tracing::info!(registry = %self.address, %new_owner, "registry.contract.owner_changed");
        Ok(receipt.transaction_hash)
    }

    /// `eth_call` from the sender to the registry.
    async fn call(&self, input: Vec<u8>) -> Result<Bytes, ContractError> {
        let request = TransactionRequest::default()
            .from(self.sender)
            .to(self.address)
            .input(Bytes::from(input).into());
        let output = self
            .within("eth_call", async { self.provider.call(request).await })
            .await?
            .map_err(ContractError::from_rpc)?;
        if output.is_empty() {
            return Err(ContractError::NoContract(self.address));
        }
        Ok(output)
    }

    /// Sends a call to the registry and waits for it to be mined.
    async fn transact(&self, input: Vec<u8>) -> Result<TransactionReceipt, ContractError> {
        let request = TransactionRequest::default()
            .from(self.sender)
            .to(self.address)
            .input(Bytes::from(input).into());
        self.send(request).await
    }

    /// Fills (gas estimate: a revert is refused here), signs, sends, and polls the receipt.
    async fn send(&self, request: TransactionRequest) -> Result<TransactionReceipt, ContractError> {
        let pending = self
            .within("send transaction", self.provider.send_transaction(request))
            .await?
            .map_err(ContractError::from_rpc)?;
        let tx_hash = *pending.tx_hash();
        let receipt = self
            .within("transaction receipt", async {
                loop {
                    if let Some(receipt) = self.provider.get_transaction_receipt(tx_hash).await? {
                        return Ok(receipt);
                    }
                    tokio::time::sleep(Self::POLL).await;
                }
            })
            .await?
            .map_err(ContractError::Rpc)?;
        if !receipt.status() {
            return Err(ContractError::Failed { tx_hash });
        }
        Ok(receipt)
    }

    /// Runs `fut` within the writer's timeout.
    async fn within<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = T>,
    ) -> Result<T, ContractError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ContractError::Timeout {
                what,
                after: self.timeout,
            })
    }
}
