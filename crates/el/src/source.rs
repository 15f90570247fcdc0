//! The state after one block of an execution client, as the EVM reads it.

use std::{collections::BTreeSet, sync::Arc};

use alloy_consensus::{TxEnvelope, transaction::Recovered};
use alloy_rpc_types_eth::{AccessListResult, TransactionRequest};

use alloy_eips::BlockId;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use alloy_trie::EMPTY_ROOT_HASH;
use cobuild_chain::{AccountProof, AccountRecord, Prefetched, StateError, StateSource};
use revm::{bytecode::Bytecode, primitives::KECCAK_EMPTY, state::AccountInfo};

use crate::{ElError, client::Inner};

/// Most calls in one JSON-RPC batch: geth refuses batches of more than 1,000 by default, and
/// answers of 500 proofs stay a few MB.
pub const MAX_BATCH: usize = 500;

/// Accounts and slots a set of transactions touches (see [`RpcSource::touched_by`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Accounts.
    pub accounts: BTreeSet<Address>,
    /// Storage slots.
    pub slots: BTreeSet<(Address, U256)>,
}

/// Every read of one block's post-state, pinned by the block's hash (EIP-1898): whatever the
/// client's head does meanwhile, the answers are that block's, or an error if the client no
/// longer has it.
#[derive(Debug, Clone)]
pub struct RpcSource {
    el: Arc<Inner>,
    block: B256,
    number: u64,
}

impl RpcSource {
    pub(crate) fn new(el: Arc<Inner>, block: B256, number: u64) -> Self {
        Self { el, block, number }
    }

    /// The block whose post-state this is.
    pub const fn block(&self) -> B256 {
        self.block
    }

    /// Its number.
    pub const fn number(&self) -> u64 {
        self.number
    }

    fn at(&self) -> BlockId {
        BlockId::hash(self.block)
    }

    /// The code `code_hash` names, from what the client has read, or `address`'s code at this
    /// block (checked against the hash, then kept for good).
    fn code_of(&self, address: Address, code_hash: B256) -> Result<Bytecode, ElError> {
        if let Some(code) = self.el.code.read().get(&code_hash) {
            return Ok(code.clone());
        }
        let raw: Bytes = self.el.call(
            "eth_getCode",
            self.el.rpc.request("eth_getCode", (address, self.at())),
        )?;
        self.remember_code(address, code_hash, raw)
    }

    fn remember_code(
        &self,
        address: Address,
        code_hash: B256,
        raw: Bytes,
    ) -> Result<Bytecode, ElError> {
        if keccak256(&raw) != code_hash {
            return Err(ElError::CodeMismatch {
                address,
                expected: code_hash,
            });
        }
        let code = Bytecode::new_raw(raw);
        self.el.code.write().insert(code_hash, code.clone());
        Ok(code)
    }

    /// Calls to `method`, one per parameter set, answered in order, in batches of at most
    /// [`MAX_BATCH`]; any call's failure fails them all.
    fn batch<P, R>(&self, method: &'static str, params: &[P]) -> Result<Vec<R>, ElError>
    where
        P: alloy_json_rpc::RpcSend,
        R: alloy_json_rpc::RpcRecv,
    {
        self.batch_each(method, params)?
            .into_iter()
            .map(|answer| answer.map_err(|source| ElError::Rpc { method, source }))
            .collect()
    }

    /// Calls to `method` as [`batch`](Self::batch) makes them, each call's answer or failure
    /// on its own; `Err` only when a whole batch failed.
    fn batch_each<P, R>(
        &self,
        method: &'static str,
        params: &[P],
    ) -> Result<Vec<alloy_transport::TransportResult<R>>, ElError>
    where
        P: alloy_json_rpc::RpcSend,
        R: alloy_json_rpc::RpcRecv,
    {
        let batch_error = |source| ElError::Rpc { method, source };
        let mut answers = Vec::with_capacity(params.len());
        for chunk in params.chunks(MAX_BATCH) {
            let mut batch = self.el.rpc.new_batch();
            let calls = chunk
                .iter()
                .map(|p| batch.add_call::<_, R>(method, p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(batch_error)?;
            answers.extend(self.el.wait(async move {
                batch.send().await.map_err(batch_error)?;
                let mut answers = Vec::with_capacity(calls.len());
                for call in calls {
                    answers.push(call.await);
                }
                Ok(answers)
            })?);
        }
        Ok(answers)
    }

    /// The accounts and slots `txs` touch, each executed alone on this block by the client
    /// (`eth_createAccessList`, one batch for all), with each one's sender and recipient: what
    /// to read ahead before simulating them. A transaction the client cannot execute (a nonce
    /// gap, a dependency on an earlier one) adds its sender and recipient only; what else it
    /// reads is read when simulation gets there.
    pub fn touched_by<'a>(
        &self,
        txs: impl IntoIterator<Item = &'a Recovered<TxEnvelope>>,
    ) -> Result<Touched, ElError> {
        let at = self.at();
        let mut touched = Touched::default();
        let mut requests = Vec::new();
        for tx in txs {
            touched.accounts.insert(tx.signer());
            touched
                .accounts
                .extend(alloy_consensus::Transaction::to(tx.inner()));
            requests.push((
                TransactionRequest::from_recovered_transaction(tx.clone()),
                at,
            ));
        }
        // One transaction's failure is that transaction's: the rest still count.
        let lists = self
            .batch_each::<_, AccessListResult>("eth_createAccessList", &requests)?
            .into_iter()
            .map(Result::ok);
        for item in lists.flatten().flat_map(|l| l.access_list.0) {
            touched.accounts.insert(item.address);
            touched.slots.extend(
                item.storage_keys
                    .into_iter()
                    .map(|key| (item.address, U256::from_be_bytes(key.0))),
            );
        }
        Ok(touched)
    }

    fn prefetch_all(
        &self,
        accounts: &[Address],
        slots: &[(Address, U256)],
    ) -> Result<Prefetched, ElError> {
        // Accounts then slots, in batches of at most MAX_BATCH calls.
        let total = accounts.len() + slots.len();
        let mut proofs = Vec::with_capacity(accounts.len());
        let mut values = Vec::with_capacity(slots.len());
        for start in (0..total).step_by(MAX_BATCH) {
            let end = (start + MAX_BATCH).min(total);
            let (a, s) = (accounts.len(), start.saturating_sub(accounts.len()));
            let (p, v) = self.read_batch(
                &accounts[start.min(a)..end.min(a)],
                &slots[s..end.saturating_sub(a)],
            )?;
            proofs.extend(p);
            values.extend(v);
        }
        self.with_new_code(accounts, slots, &proofs, values)
    }

    /// One batch: the proofs of `accounts` and the values of `slots`.
    fn read_batch(
        &self,
        accounts: &[Address],
        slots: &[(Address, U256)],
    ) -> Result<(Vec<EIP1186AccountProofResponse>, Vec<U256>), ElError> {
        let batch_error = |source| ElError::Rpc {
            method: "batch",
            source,
        };
        let at = self.at();
        let mut batch = self.el.rpc.new_batch();
        let proofs = accounts
            .iter()
            .map(|a| {
                batch.add_call::<_, EIP1186AccountProofResponse>(
                    "eth_getProof",
                    &(a, Vec::<B256>::new(), at),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(batch_error)?;
        let values = slots
            .iter()
            .map(|(a, s)| batch.add_call::<_, U256>("eth_getStorageAt", &(a, s, at)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(batch_error)?;
        self.el.wait(async move {
            batch.send().await.map_err(batch_error)?;
            let mut read = (
                Vec::with_capacity(proofs.len()),
                Vec::with_capacity(values.len()),
            );
            for proof in proofs {
                read.0.push(proof.await.map_err(|source| ElError::Rpc {
                    method: "eth_getProof",
                    source,
                })?);
            }
            for value in values {
                read.1.push(value.await.map_err(|source| ElError::Rpc {
                    method: "eth_getStorageAt",
                    source,
                })?);
            }
            Ok(read)
        })
    }

    /// The accounts `proofs` describe, with their code (what is new to the client in one
    /// more batch), and the slots with their `values`.
    fn with_new_code(
        &self,
        accounts: &[Address],
        slots: &[(Address, U256)],
        proofs: &[EIP1186AccountProofResponse],
        values: Vec<U256>,
    ) -> Result<Prefetched, ElError> {
        let at = self.at();
        let mut infos: Vec<(Address, Option<AccountInfo>)> = accounts
            .iter()
            .zip(proofs)
            .map(|(a, p)| (*a, account_info(p)))
            .collect();
        // The code of contracts not seen before, in a second batch.
        let known = self.el.code.read();
        let mut missing: Vec<(Address, B256)> = infos
            .iter()
            .filter_map(|(a, info)| info.as_ref().map(|i| (*a, i.code_hash)))
            .filter(|(_, h)| *h != KECCAK_EMPTY && !known.contains_key(h))
            .collect();
        drop(known);
        missing.sort_by_key(|(_, h)| *h);
        missing.dedup_by_key(|(_, h)| *h);
        if !missing.is_empty() {
            let params: Vec<(Address, BlockId)> = missing.iter().map(|(a, _)| (*a, at)).collect();
            let codes: Vec<Bytes> = self.batch("eth_getCode", &params)?;
            for ((address, hash), raw) in missing.into_iter().zip(codes) {
                self.remember_code(address, hash, raw)?;
            }
        }
        let code = self.el.code.read();
        for (_, info) in &mut infos {
            if let Some(info) = info
                && info.code_hash != KECCAK_EMPTY
            {
                info.code = code.get(&info.code_hash).cloned();
            }
        }
        drop(code);
        Ok(Prefetched {
            accounts: infos,
            slots: slots.iter().copied().zip(values).collect(),
        })
    }
}

/// What an `eth_getProof` answer proves: the account's record (`None` where it does not exist)
/// and the nodes to it and to each slot asked for (`slots`, in the order asked).
fn account_proof(answer: EIP1186AccountProofResponse, slots: &[B256]) -> AccountProof {
    let record = account_info(&answer).map(|info| AccountRecord {
        nonce: info.nonce,
        balance: info.balance,
        code_hash: info.code_hash,
        // Clients answer an empty storage's root as the empty trie's root or as zero.
        storage_root: match answer.storage_hash {
            B256::ZERO => EMPTY_ROOT_HASH,
            root => root,
        },
    });
    let storage = slots
        .iter()
        .zip(answer.storage_proof)
        .map(|(slot, proof)| (*slot, proof.value, proof.proof))
        .collect();
    AccountProof {
        record,
        account_proof: answer.account_proof,
        storage,
    }
}

/// The account a proof describes; `None` for one that does not exist (no nonce, balance or
/// code: after EIP-161 the EVM treats such an account as absent).
fn account_info(proof: &EIP1186AccountProofResponse) -> Option<AccountInfo> {
    // Clients answer an absent account's code hash as the empty code's hash or as zero.
    let code_hash = match proof.code_hash {
        B256::ZERO => KECCAK_EMPTY,
        hash => hash,
    };
    if proof.nonce == 0 && proof.balance.is_zero() && code_hash == KECCAK_EMPTY {
        return None;
    }
    let mut info = AccountInfo::new(proof.balance, proof.nonce, code_hash, Bytecode::default());
    info.code = None;
    Some(info)
}

fn source_error(error: ElError) -> StateError {
    StateError::Source(Box::new(error))
}

impl StateSource for RpcSource {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        let proof: EIP1186AccountProofResponse = self
            .el
            .call(
                "eth_getProof",
                self.el
                    .rpc
                    .request("eth_getProof", (address, Vec::<B256>::new(), self.at())),
            )
            .map_err(source_error)?;
        let Some(mut info) = account_info(&proof) else {
            return Ok(None);
        };
        if info.code_hash != KECCAK_EMPTY {
            info.code = Some(
                self.code_of(address, info.code_hash)
                    .map_err(source_error)?,
            );
        }
        Ok(Some(info))
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.el
            .call(
                "eth_getStorageAt",
                self.el
                    .rpc
                    .request("eth_getStorageAt", (address, slot, self.at())),
            )
            .map_err(source_error)
    }

    fn code(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        // Accounts come with their code; a hash not seen is one no account here has.
        self.el
            .code
            .read()
            .get(&code_hash)
            .cloned()
            .ok_or(StateError::MissingCode(code_hash))
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        if number == self.number {
            return Ok(self.block);
        }
        let block: Option<alloy_rpc_types_eth::Block> = self
            .el
            .call(
                "eth_getBlockByNumber",
                self.el.rpc.request(
                    "eth_getBlockByNumber",
                    (alloy_eips::BlockNumberOrTag::Number(number), false),
                ),
            )
            .map_err(source_error)?;
        Ok(block.map(|b| b.header.hash).unwrap_or_default())
    }

    fn prefetch(
        &self,
        accounts: &[Address],
        slots: &[(Address, U256)],
    ) -> Result<Prefetched, StateError> {
        self.prefetch_all(accounts, slots).map_err(source_error)
    }

    fn state_root(&self) -> Result<B256, StateError> {
        Ok(self.el.header(self.block).map_err(source_error)?.state_root)
    }

    fn proofs(&self, keys: &[(Address, Vec<B256>)]) -> Result<Vec<AccountProof>, StateError> {
        let at = self.at();
        let params: Vec<(Address, Vec<B256>, BlockId)> = keys
            .iter()
            .map(|(address, slots)| (*address, slots.clone(), at))
            .collect();
        let answers: Vec<EIP1186AccountProofResponse> =
            self.batch("eth_getProof", &params).map_err(source_error)?;
        Ok(answers
            .into_iter()
            .zip(keys)
            .map(|(answer, (_, slots))| account_proof(answer, slots))
            .collect())
    }
}
