//! What one sender's simulations may cost: gas per second, and a share of the threads that run
//! them.
//!
//! A bundle simulation costs CPU in proportion to the gas it burns, up to a whole block's worth
//! per call, so counting calls alone lets one sender buy seconds of CPU with a single batch.
//! Each call is charged the gas its transactions declare (bounded by the block gas limit, see
//! [`check_gas`]) against the sender's gas budget before it runs, and runs holding one of the
//! sender's thread slots and one of the node's: a sender whose calls queue waits for its own
//! slots while other senders' calls take the others.

use std::{collections::HashMap, sync::Arc};

use alloy_primitives::Address;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limit::RateLimiter;
use crate::RpcError;

/// The sender's budget of simulated gas, and the thread slots.
#[derive(Debug)]
pub(crate) struct SimBudget {
    gas: RateLimiter<Address>,
    threads: Arc<Semaphore>,
    per_sender: usize,
    senders: Mutex<HashMap<Address, Arc<Semaphore>>>,
}

/// The slots one simulation holds while it runs.
#[derive(Debug)]
pub(crate) struct SimSlot {
    _sender: OwnedSemaphorePermit,
    _node: OwnedSemaphorePermit,
}

/// How many senders' slot counters are kept before idle ones are forgotten.
const MAX_TRACKED: usize = 10_000;

impl SimBudget {
    /// `gas_rate` gas per second per sender, bursts of `gas_burst`, over `threads` slots of
    /// which one sender may hold half (at least one).
    pub(crate) fn new(gas_rate: u32, gas_burst: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            gas: RateLimiter::new(gas_rate, gas_burst),
            threads: Arc::new(Semaphore::new(threads)),
            per_sender: (threads / 2).max(1),
            senders: Mutex::default(),
        }
    }

    /// Charges `gas` to `sender`'s budget, or says it is spent.
    pub(crate) fn charge(&self, sender: Address, gas: u64) -> Result<(), RpcError> {
        self.gas.check_cost(sender, gas as f64)
    }

    /// Waits for a slot of `sender`'s own and one of the node's.
    pub(crate) async fn slot(&self, sender: Address) -> Result<SimSlot, RpcError> {
        let own = {
            let mut senders = self.senders.lock();
            if senders.len() >= MAX_TRACKED {
                // Only counters nobody holds or waits on: they are as good as new.
                senders.retain(|_, slots| Arc::strong_count(slots) > 1);
            }
            senders
                .entry(sender)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_sender)))
                .clone()
        };
        // The sender's own slot first: a sender over its share queues without holding one of
        // the node's.
        let sender_slot = own
            .acquire_owned()
            .await
            .map_err(|_| RpcError::internal("simulation slots closed"))?;
        let node_slot = self
            .threads
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RpcError::internal("simulation slots closed"))?;
        Ok(SimSlot {
            _sender: sender_slot,
            _node: node_slot,
        })
    }
}

/// An error unless the transactions' declared gas (`declared`) fits in a block of `gas_limit`,
/// and `gas_limit` itself is no more than the chain's (`chain_limit`).
pub(crate) fn check_gas(declared: u64, gas_limit: u64, chain_limit: u64) -> Result<(), RpcError> {
    if gas_limit > chain_limit {
        return Err(RpcError::InvalidParams(format!(
            "gas limit {gas_limit} is above the block gas limit {chain_limit}"
        )));
    }
    if declared > gas_limit {
        return Err(RpcError::InvalidParams(format!(
            "the bundle's transactions ask for {declared} gas, more than the block gas limit {gas_limit}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_bundle_over_the_block_is_refused() {
        assert!(check_gas(30_000_000, 30_000_000, 30_000_000).is_ok());
        assert!(matches!(
            check_gas(5 * 16_700_000, 30_000_000, 30_000_000),
            Err(RpcError::InvalidParams(m)) if m.contains("83500000 gas")
        ));
        assert!(
            check_gas(21_000, 1 << 40, 30_000_000).is_err(),
            "no larger block by override"
        );
    }

    #[test]
    fn test_gas_is_charged_per_sender() {
        let budget = SimBudget::new(1_000_000, 30_000_000, 2);
        let (alice, bob) = (Address::repeat_byte(1), Address::repeat_byte(2));
        budget.charge(alice, 30_000_000).expect("a block's worth");
        assert!(matches!(
            budget.charge(alice, 30_000_000),
            Err(RpcError::RateLimited { .. })
        ));
        budget
            .charge(bob, 30_000_000)
            .expect("bob has his own budget");
    }

    #[tokio::test]
    async fn test_one_sender_holds_at_most_its_share_of_the_threads() {
        let budget = Arc::new(SimBudget::new(u32::MAX, u32::MAX, 2));
        let (alice, bob) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let held = budget.slot(alice).await.expect("alice's one slot");
        // Alice's second call waits for her own slot ...
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.slot(alice).await.map(drop) })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // ... while Bob gets the other thread at once.
        let bobs = tokio::time::timeout(std::time::Duration::from_secs(5), budget.slot(bob))
            .await
            .expect("not queued behind alice")
            .expect("bob's slot");
        drop(bobs);
        drop(held);
        waiting.await.expect("joins").expect("alice's turn comes");
    }
}
