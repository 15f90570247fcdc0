//! Receipts for the block executor, with each log's bloom bits from a memo of the addresses' and
//! topics' hashes.
//!
//! A receipt's bloom hashes every log's address and topics, and a block's logs repeat the same
//! few: the token contracts, the `Transfer` and `Swap` event signatures, the busy accounts. A
//! builder that commits thousands of transactions a round spent about a tenth of its time in
//! those hashes; a lookup in a small map is an order of magnitude cheaper than a Keccak
//! permutation. The receipts are the same as alloy-evm's `AlloyReceiptBuilder` makes.

use std::cell::RefCell;

use alloy_consensus::{
    Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType,
};
use alloy_evm::{
    Evm,
    eth::receipt_builder::{ReceiptBuilder, ReceiptBuilderCtx},
};
use alloy_primitives::{Address, B256, Bloom, BloomInput, Log, keccak256, map::HashMap};

/// Entries a memo holds before it starts again, so one block's distinct topics cannot grow it
/// without bound (a few MiB at most).
const MEMO_LIMIT: usize = 1 << 16;

/// Builds [`ReceiptEnvelope`]s, hashing each distinct log address and topic once per block.
#[derive(Debug, Default)]
pub(crate) struct MemoReceipts {
    memo: RefCell<Memo>,
}

#[derive(Debug, Default)]
struct Memo {
    addresses: HashMap<Address, B256>,
    topics: HashMap<B256, B256>,
}

impl Memo {
    fn bloom(&mut self, logs: &[Log]) -> Bloom {
        if self.addresses.len() + self.topics.len() > MEMO_LIMIT {
            *self = Self::default();
        }
        let mut bloom = Bloom::ZERO;
        for log in logs {
            let hash = *self
                .addresses
                .entry(log.address)
                .or_insert_with(|| keccak256(log.address));
            bloom.accrue(BloomInput::Hash(hash));
            for topic in log.topics() {
                let hash = *self
                    .topics
                    .entry(*topic)
                    .or_insert_with(|| keccak256(topic));
                bloom.accrue(BloomInput::Hash(hash));
            }
        }
        bloom
    }
}

impl ReceiptBuilder for MemoReceipts {
    type Transaction = TxEnvelope;
    type Receipt = ReceiptEnvelope;

    fn build_receipt<E: Evm>(&self, ctx: ReceiptBuilderCtx<'_, TxType, E>) -> ReceiptEnvelope {
        let receipt = Receipt {
            status: Eip658Value::Eip658(ctx.result.is_success()),
            cumulative_gas_used: ctx.cumulative_gas_used,
            logs: ctx.result.into_logs(),
        };
        let bloom = self.memo.borrow_mut().bloom(&receipt.logs);
        let receipt = ReceiptWithBloom::new(receipt, bloom);
        match ctx.tx_type {
            TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Bytes;

    use super::*;

    #[test]
    fn test_the_bloom_is_the_one_the_logs_hash_to_whether_remembered_or_not() {
        let log = |address: u8, topics: &[u8]| {
            Log::new_unchecked(
                Address::repeat_byte(address),
                topics.iter().map(|t| B256::repeat_byte(*t)).collect(),
                Bytes::new(),
            )
        };
        let blocks = [
            vec![log(1, &[7, 8]), log(2, &[7])],
            vec![log(2, &[8, 9, 1]), log(1, &[])],
            // An address and a topic with the same bytes hash differently.
            vec![
                log(3, &[]),
                Log::new_unchecked(
                    Address::ZERO,
                    vec![B256::left_padding_from(&[3; 20])],
                    Bytes::new(),
                ),
            ],
        ];
        let mut memo = Memo::default();
        for logs in &blocks {
            let want = Receipt::<Log> {
                logs: logs.clone(),
                ..Default::default()
            }
            .bloom_slow();
            assert_eq!(memo.bloom(logs), want);
            assert_eq!(memo.bloom(logs), want, "from the memo");
        }
        assert_eq!(memo.addresses.len(), 4);
        assert_eq!(memo.topics.len(), 5);
    }
}
