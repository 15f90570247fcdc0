//! Paying what this member owes: every few slots, the refunds of the slots it won that no
//! payout on chain has settled yet are sent, one transaction per recipient, from its coinbase
//! as ordinary orders of the network (raw transactions through its own RPC, so they are
//! replicated and any member's block can include them). The refund book marks them paid once
//! a payout lands; until then this member shows as owing them.
//!
//! The coinbase's nonce is also used by this member's own blocks (the proposer payment), so a
//! payout can lose its nonce before it lands; it is then signed again with a fresh one. A
//! payout already on chain is never sent again, whether or not the book has read it yet.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use alloy_consensus::{SignableTransaction as _, TxEip1559, TxEnvelope};
use alloy_eips::Encodable2718 as _;
use alloy_primitives::{Address, B256, TxKind, U256};
use alloy_provider::{Provider as _, ProviderBuilder};
use alloy_signer::SignerSync as _;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::Chain;
use cobuild_refunds::{Book, MAX_SLOTS_PER_PAYOUT, payout_input};
use revm::database_interface::DatabaseRef as _;

/// Priority fee a payout offers the member whose block includes it (wei per gas): enough that
/// including it pays for the includer's own proposer payment.
const PAYOUT_TIP: u128 = 1_000_000_000;
/// Gas of a payout to an account with code (one without needs the transfer's plus input).
const CONTRACT_PAYOUT_GAS: u64 = 100_000;

/// What this member's payer needs.
#[derive(Debug, Clone)]
pub struct PayoutConfig {
    /// This member.
    pub me: u32,
    /// Its coinbase key.
    pub coinbase: PrivateKeySigner,
    /// Its own JSON-RPC, where payouts enter as orders.
    pub rpc_url: String,
    /// Payouts are sent when the book has processed a multiple of this many slots.
    pub every_slots: u64,
}

/// A payout sent and not yet seen on chain.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    hash: B256,
    nonce: u64,
    slots: Vec<u64>,
}

/// Pays this member's refunds until the task is dropped.
pub async fn run(config: PayoutConfig, book: Arc<Book>, chain: Chain) {
    let provider = match config.rpc_url.parse() {
        Ok(url) => ProviderBuilder::new().connect_http(url),
        Err(e) => {
            tracing::error!(error = %e, url = %config.rpc_url, "refunds.payout.bad_url");
            return;
        }
    };
    let mut in_flight: BTreeMap<Address, InFlight> = BTreeMap::new();
    let mut batch = 0;
    let every = config.every_slots.max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let processed = book.processed().unwrap_or_default();
        if processed / every == batch {
            continue;
        }
        batch = processed / every;
        let (config2, book2, chain2, flights) = (
            config.clone(),
            book.clone(),
            chain.clone(),
            in_flight.clone(),
        );
        let signed =
            tokio::task::spawn_blocking(move || sign_payouts(&config2, &book2, &chain2, &flights))
                .await;
        let signed = match signed {
            Ok(Ok(signed)) => signed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "refunds.payout.failed");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "refunds.payout.panicked");
                continue;
            }
        };
        for (recipient, raw, flight) in signed {
            match provider.send_raw_transaction(&raw).await {
                Ok(_) => {
                    tracing::info!(%recipient, tx = %flight.hash, slots = ?flight.slots, "refunds.payout.sent");
                    in_flight.insert(recipient, flight);
                }
                Err(e) => tracing::warn!(%recipient, error = %e, "refunds.payout.refused"),
            }
        }
    }
}

/// The payouts to send now: per recipient owed by this member and not settled, unless one
/// already sent is on chain or can still land (its nonce unused).
pub(super) fn sign_payouts(
    config: &PayoutConfig,
    book: &Book,
    chain: &Chain,
    in_flight: &BTreeMap<Address, InFlight>,
) -> Result<Vec<(Address, Vec<u8>, InFlight)>, super::RefundsError> {
    let (head, state) = chain.head_state()?;
    let coinbase = config.coinbase.address();
    let view = chain.read()?;
    let account = state
        .basic_ref(coinbase)
        .map_err(|e| cobuild_chain::ChainError::Block(e.into()))?
        .unwrap_or_default();
    let (settled, mut balance) = (account.nonce, account.balance);
    // Payouts still able to land keep their nonces; new ones take the next.
    let mut nonce = in_flight
        .values()
        .map(|f| f.nonce + 1)
        .filter(|n| *n > settled)
        .max()
        .unwrap_or(settled);
    let mut owed: BTreeMap<Address, Vec<(u64, U256)>> = BTreeMap::new();
    for slot in book.slots(0, usize::MAX)? {
        if slot.winner != config.me || slot.coinbase != coinbase {
            continue;
        }
        let recipients: std::collections::BTreeSet<Address> =
            slot.owed.iter().map(|o| o.recipient).collect();
        for recipient in recipients {
            if book.paid(slot.slot, recipient)?.is_none() {
                owed.entry(recipient)
                    .or_default()
                    .push((slot.slot, slot.owed_to(recipient)));
            }
        }
    }
    let base_fee = u128::from(head.base_fee_per_gas.unwrap_or_default());
    let mut out = Vec::new();
    for (recipient, mut items) in owed {
        if let Some(flight) = in_flight.get(&recipient) {
            let landed = view
                .tx_location(&flight.hash)
                .map_err(cobuild_chain::ChainError::from)?
                .is_some();
            // On chain (the book will read it), or still able to land.
            if landed || flight.nonce >= settled {
                continue;
            }
        }
        items.truncate(MAX_SLOTS_PER_PAYOUT);
        let slots: Vec<u64> = items.iter().map(|(s, _)| *s).collect();
        let value = items
            .iter()
            .fold(U256::ZERO, |sum, (_, amount)| sum.saturating_add(*amount));
        let input = payout_input(&slots);
        let has_code = state
            .basic_ref(recipient)
            .map_err(|e| cobuild_chain::ChainError::Block(e.into()))?
            .is_some_and(|a| a.code_hash != revm::primitives::KECCAK_EMPTY);
        let gas_limit = if has_code {
            CONTRACT_PAYOUT_GAS
        } else {
            // EIP-7623's calldata floor, at most 40 gas a byte, bounds what the input costs.
            21_000 + 40 * input.len() as u64
        };
        let max_fee_per_gas = base_fee * 2 + PAYOUT_TIP;
        let cost = value.saturating_add(U256::from(max_fee_per_gas) * U256::from(gas_limit));
        if cost > balance {
            // It pays when its blocks have earned enough; it owes until then.
            tracing::debug!(%recipient, %value, %balance, "refunds.payout.cannot_afford");
            continue;
        }
        balance -= cost;
        let tx = TxEip1559 {
            chain_id: chain.spec().chain_id(),
            nonce,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas: PAYOUT_TIP,
            to: TxKind::Call(recipient),
            value,
            access_list: Default::default(),
            input,
        };
        let Ok(signature) = config.coinbase.sign_hash_sync(&tx.signature_hash()) else {
            continue;
        };
        let envelope: TxEnvelope = tx.into_signed(signature).into();
        let flight = InFlight {
            hash: *envelope.tx_hash(),
            nonce,
            slots,
        };
        out.push((recipient, envelope.encoded_2718(), flight));
        nonce += 1;
    }
    Ok(out)
}
