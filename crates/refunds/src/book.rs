//! The refunds a member computed from final records, kept so senders can ask for them later:
//! per won slot, who is owed what and for which orders; and the refund delegations read from
//! the records so far.

use std::path::Path;

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::Identity;

const SLOTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("slots");
const DELEGATIONS: TableDefinition<'_, &[u8; 20], &[u8; 20]> = TableDefinition::new("delegations");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// `slot ++ recipient` → the payout transaction that paid it.
const PAID: TableDefinition<'_, &[u8; 28], &[u8; 32]> = TableDefinition::new("paid");
const PROCESSED: &str = "processed";

/// One order's part of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, RlpEncodable, RlpDecodable)]
pub struct OrderRefund {
    /// The bundle hash, or the transaction hash of a private transaction.
    pub hash: B256,
    /// Its part, in wei.
    pub amount: U256,
}

/// What one identity is owed for one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, RlpEncodable, RlpDecodable)]
pub struct Owed {
    /// Who earned it.
    pub identity: Identity,
    /// Who receives it (the identity, or whom it delegated to).
    pub recipient: Address,
    /// The refund, in wei.
    pub amount: U256,
    /// Its parts per order, adding up to `amount`.
    pub orders: Vec<OrderRefund>,
}

/// The refunds of one slot whose block a member won.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, RlpEncodable, RlpDecodable)]
pub struct SlotRefunds {
    /// The slot.
    pub slot: u64,
    /// Its block.
    pub block: u64,
    /// Digest of the final record the figures come from.
    pub record: B256,
    /// The member whose block won, who owes the refunds.
    pub winner: u32,
    /// Its block's fee recipient, which pays them.
    pub coinbase: Address,
    /// `v(T)` from the replay.
    pub value: U256,
    /// What the proposer was paid.
    pub payment: U256,
    /// What the rule shares out.
    pub to_split: U256,
    /// What rounding and the caps withheld (kept by the builder).
    pub remainder: U256,
    /// Every identity owed something.
    pub owed: Vec<Owed>,
}

fn paid_key(slot: u64, recipient: Address) -> [u8; 28] {
    let mut key = [0u8; 28];
    key[..8].copy_from_slice(&slot.to_be_bytes());
    key[8..].copy_from_slice(recipient.as_slice());
    key
}

impl SlotRefunds {
    /// What `recipient` is owed for this slot, over all identities that delegated to it.
    pub fn owed_to(&self, recipient: Address) -> U256 {
        self.owed
            .iter()
            .filter(|o| o.recipient == recipient)
            .fold(U256::ZERO, |sum, o| sum.saturating_add(o.amount))
    }

    /// What a slot record commits to: Keccak-256 of the RLP of every field, so two members
    /// agree on it only if they agree on every wei, recipient and order.
    pub fn digest(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }
}

/// The book could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The database failed.
    #[error("refund book: {0}")]
    Db(#[from] redb::Error),
    /// A stored entry does not decode.
    #[error("refund book entry: {0}")]
    Decode(#[from] serde_json::Error),
}

macro_rules! db_err {
    ($($ty:ty),*) => {$(
        impl From<$ty> for BookError {
            fn from(e: $ty) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The refund book of one member (`refunds.redb`).
#[derive(Debug)]
pub struct Book {
    db: redb::Database,
}

impl Book {
    /// Opens (or creates) the book at `path`.
    pub fn open(path: &Path) -> Result<Self, BookError> {
        // A batch a slot, read back rarely: redb's default cache (1 GiB, grown with the file)
        // would only hold memory.
        let db = redb::Database::builder()
            .set_cache_size(16 << 20)
            .create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(SLOTS)?;
        txn.open_table(DELEGATIONS)?;
        txn.open_table(META)?;
        txn.open_table(PAID)?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// The last slot whose record was processed (0: none).
    pub fn processed(&self) -> Result<u64, BookError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(META)?
            .get(PROCESSED)?
            .map(|v| v.value())
            .unwrap_or_default())
    }

    /// Whom `identity` delegated its refunds to (itself when it did not).
    pub fn recipient(&self, identity: Identity) -> Result<Address, BookError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(DELEGATIONS)?
            .get(&identity.0.0)?
            .map_or(identity, |v| Address::from(*v.value())))
    }

    /// Records slot `slot` as processed: its delegations (in the order they were accepted;
    /// later ones win), its refunds, if its block was won by a member, and the refunds its
    /// block paid (earlier slot, recipient, payout transaction). One transaction.
    pub fn record(
        &self,
        slot: u64,
        delegations: &[(Address, Address)],
        refunds: Option<&SlotRefunds>,
        paid: &[(u64, Address, B256)],
    ) -> Result<(), BookError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(PAID)?;
            for (earlier, recipient, tx) in paid {
                table.insert(&paid_key(*earlier, *recipient), &tx.0)?;
            }
            let mut table = txn.open_table(DELEGATIONS)?;
            for (from, to) in delegations {
                table.insert(&from.0.0, &to.0.0)?;
            }
            if let Some(refunds) = refunds {
                let bytes = serde_json::to_vec(refunds)?;
                txn.open_table(SLOTS)?.insert(slot, bytes.as_slice())?;
            }
            txn.open_table(META)?.insert(PROCESSED, slot)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The refunds of slot `slot`, if a member won it and they were computed.
    pub fn slot(&self, slot: u64) -> Result<Option<SlotRefunds>, BookError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SLOTS)?;
        let Some(bytes) = table.get(slot)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(bytes.value())?))
    }

    /// The payout transaction that paid `recipient`'s refunds of `slot`, once it is on chain.
    pub fn paid(&self, slot: u64, recipient: Address) -> Result<Option<B256>, BookError> {
        let txn = self.db.begin_read()?;
        Ok(txn
            .open_table(PAID)?
            .get(&paid_key(slot, recipient))?
            .map(|v| B256::from(*v.value())))
    }

    /// Every slot's refunds, oldest first, from slot `from` on, at most `max`.
    pub fn slots(&self, from: u64, max: usize) -> Result<Vec<SlotRefunds>, BookError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SLOTS)?;
        let mut out = Vec::new();
        for entry in table.range(from..)?.take(max) {
            let (_, bytes) = entry?;
            out.push(serde_json::from_slice(bytes.value())?);
        }
        Ok(out)
    }
}
