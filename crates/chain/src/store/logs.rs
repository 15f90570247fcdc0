//! An index of the chain's logs: which blocks hold a log from an address, or with a topic at a
//! position, so a log query reads only the blocks that can answer it.
//!
//! One key per (field, value, block), with an empty value: `eth_getLogs` for a token's
//! `Transfer` events over a long range is a range scan per address and per topic, then the
//! receipts of the blocks every named field agrees on. The block number closes the key in
//! big-endian order, so one value's blocks are a contiguous, ordered range.

use std::collections::BTreeSet;

use alloy_consensus::ReceiptEnvelope;
use alloy_primitives::B256;
use redb::{ReadableTable, TableDefinition};

use super::StoreError;

/// (field, value, block number) → nothing.
pub(super) const LOG_INDEX: TableDefinition<'_, &[u8; 41], ()> = TableDefinition::new("log_index");

/// Where in a log an indexed value sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    /// The emitting contract (left-padded to 32 bytes).
    Address,
    /// The topic at this position (0 to 3).
    Topic(u8),
}

impl LogField {
    const fn tag(self) -> u8 {
        match self {
            Self::Address => 0,
            Self::Topic(position) => 1 + position,
        }
    }
}

fn key(field: LogField, value: &B256, block: u64) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[0] = field.tag();
    key[1..33].copy_from_slice(value.as_slice());
    key[33..].copy_from_slice(&block.to_be_bytes());
    key
}

/// Adds block `number`'s logs to the index.
pub(super) fn index_block(
    table: &mut redb::Table<'_, &'static [u8; 41], ()>,
    number: u64,
    receipts: &[ReceiptEnvelope],
) -> Result<(), StoreError> {
    let mut keys = BTreeSet::new();
    for log in receipts.iter().flat_map(|r| r.logs()) {
        keys.insert(key(LogField::Address, &log.address.into_word(), number));
        for (position, topic) in log.topics().iter().enumerate().take(4) {
            keys.insert(key(LogField::Topic(position as u8), topic, number));
        }
    }
    for key in &keys {
        table.insert(key, ())?;
    }
    Ok(())
}

/// The blocks in `from..=to` that hold a log with `value` at `field`, in order.
pub(super) fn blocks_with(
    table: &impl ReadableTable<&'static [u8; 41], ()>,
    field: LogField,
    value: &B256,
    from: u64,
    to: u64,
) -> Result<Vec<u64>, StoreError> {
    if from > to {
        return Ok(Vec::new());
    }
    let (lo, hi) = (key(field, value, from), key(field, value, to));
    let mut blocks = Vec::new();
    for entry in table.range::<&[u8; 41]>(&lo..=&hi)? {
        let (key, _) = entry?;
        let number: [u8; 8] = key.value()[33..]
            .try_into()
            .map_err(|_| StoreError::Corrupt("log index key length"))?;
        blocks.push(u64::from_be_bytes(number));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{Receipt, ReceiptWithBloom};
    use alloy_primitives::{Address, Log, LogData};

    use super::*;
    use crate::{
        state::HashedStateDiff,
        store::{Store, write_test_block},
    };

    fn receipt(logs: Vec<(Address, Vec<B256>)>) -> ReceiptEnvelope {
        let logs = logs
            .into_iter()
            .map(|(address, topics)| Log {
                address,
                data: LogData::new_unchecked(topics, Default::default()),
            })
            .collect();
        ReceiptEnvelope::Eip1559(ReceiptWithBloom::from(Receipt {
            status: true.into(),
            cumulative_gas_used: 21_000,
            logs,
        }))
    }

    fn write(store: &Store, number: u64, receipts: &[ReceiptEnvelope]) {
        write_test_block(store, number, receipts, &HashedStateDiff::default());
    }

    fn blocks(store: &Store, field: LogField, value: B256, from: u64, to: u64) -> Vec<u64> {
        store
            .read()
            .expect("view")
            .blocks_with_log(field, &value, from, to)
            .expect("index reads")
    }

    #[test]
    fn test_the_index_lists_the_blocks_of_each_address_and_topic_and_is_rebuilt_when_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chain.redb");
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let (transfer, swap) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let store = Store::open(&path).expect("opens");
        write(&store, 0, &[]);
        write(&store, 1, &[receipt(vec![(a, vec![transfer, B256::ZERO])])]);
        write(&store, 2, &[receipt(vec![(b, vec![swap])])]);
        write(
            &store,
            3,
            &[receipt(vec![]), receipt(vec![(a, vec![swap, transfer])])],
        );
        let check = |store: &Store| {
            let address = |x: Address| x.into_word();
            assert_eq!(blocks(store, LogField::Address, address(a), 0, 3), [1, 3]);
            assert_eq!(blocks(store, LogField::Address, address(b), 0, 3), [2]);
            assert_eq!(blocks(store, LogField::Topic(0), transfer, 0, 3), [1]);
            assert_eq!(blocks(store, LogField::Topic(0), swap, 0, 3), [2, 3]);
            assert_eq!(blocks(store, LogField::Topic(1), transfer, 0, 3), [3]);
            assert_eq!(blocks(store, LogField::Topic(0), swap, 3, 3), [3]);
            assert_eq!(
                blocks(store, LogField::Topic(0), swap, 0, 1),
                Vec::<u64>::new()
            );
            assert_eq!(
                blocks(store, LogField::Topic(2), transfer, 0, 3),
                Vec::<u64>::new()
            );
        };
        check(&store);

        // A store written before the index: the index and its mark gone, as in an old file.
        let txn = store.db.begin_write().expect("write");
        txn.delete_table(LOG_INDEX).expect("deleted");
        txn.open_table(super::super::META)
            .expect("meta")
            .remove(super::super::LOGS_INDEXED_KEY)
            .expect("removed");
        txn.commit().expect("committed");
        drop(store);
        // Reopened, the index is built again from the stored receipts.
        check(&Store::open(&path).expect("reopens"));
    }
}
