//! An execution client's chain as the head a node validates orders against and builds on.

use std::sync::Arc;

use alloy_consensus::{Block, Header, Sealed, TxEnvelope, transaction::Recovered};
use alloy_primitives::{Address, B256, U256};
use cobuild_chain::{
    ChainError, ExecutedBlock, HeadSource, ImportError, StateSnapshot, reexecute_on,
};
use cobuild_primitives::ChainSpec;
use parking_lot::RwLock;

use crate::{ElClient, ElError, RpcSource};

/// The block a node builds on, followed on an execution client: its header and the state
/// after it, pinned by hash. Each new parent gets one [`StateSnapshot`], shared by every
/// clone, so the pools, the RPC and every builder of a slot read each key from the client once.
/// Cheap to clone; clones share the head.
#[derive(Debug, Clone)]
pub struct ElChain {
    client: ElClient,
    spec: Arc<ChainSpec>,
    head: Arc<RwLock<Pinned>>,
}

/// The head after [`ElChain::follow`].
#[derive(Debug, Clone)]
pub struct Followed {
    /// Its header.
    pub header: Arc<Sealed<Header>>,
    /// The state after it.
    pub state: StateSnapshot,
    /// Whether the head moved (the pools must follow).
    pub moved: bool,
}

#[derive(Debug, Clone)]
struct Pinned {
    header: Arc<Sealed<Header>>,
    state: StateSnapshot,
    /// What `state` reads through, for the reads ahead it cannot name itself.
    source: Arc<RpcSource>,
}

impl ElChain {
    /// Follows `client` from its current head, under the newest fork's rules for the client's
    /// chain id (what every network cobuild can bid on runs: older forks have no builder API).
    pub fn connect(client: ElClient) -> Result<Self, ElError> {
        let spec = Arc::new(ChainSpec::devnet(client.chain_id()?));
        let head = client.head()?;
        let pinned = pin(&client, client.header(head.hash)?);
        Ok(Self {
            client,
            spec,
            head: Arc::new(RwLock::new(pinned)),
        })
    }

    /// The connection reads go through.
    pub const fn client(&self) -> &ElClient {
        &self.client
    }

    /// Moves the head to the block `hash` (a slot's parent, or the client's new head): its
    /// header is read and its state pinned. Following the head it already has reads nothing.
    pub fn follow(&self, hash: B256) -> Result<Followed, ElError> {
        let current = self.head.read().clone();
        if current.header.hash() == hash {
            return Ok(Followed {
                header: current.header,
                state: current.state,
                moved: false,
            });
        }
        let pinned = pin(&self.client, self.client.header(hash)?);
        *self.head.write() = pinned.clone();
        Ok(Followed {
            header: pinned.header,
            state: pinned.state,
            moved: true,
        })
    }

    /// Reads ahead, into the head's state, what `txs` touch (one `eth_createAccessList` batch,
    /// then one batch of proofs and values; see [`RpcSource::touched_by`]): the orders waiting
    /// in the pools, before the slot's simulation would read their keys one round trip at a
    /// time. Returns how many keys it asked for.
    pub fn read_ahead<'a>(
        &self,
        txs: impl IntoIterator<Item = &'a Recovered<TxEnvelope>>,
    ) -> Result<usize, ElError> {
        let Pinned { state, source, .. } = self.head.read().clone();
        let touched = source.touched_by(txs)?;
        let accounts: Vec<Address> = touched.accounts.into_iter().collect();
        let slots: Vec<(Address, U256)> = touched.slots.into_iter().collect();
        state
            .prefetch(&accounts, &slots)
            .map_err(|e| ElError::Prefetch(Box::new(e)))?;
        Ok(accounts.len() + slots.len())
    }

    /// Re-executes `block` on the head and returns it if every header field matches what the
    /// execution gives: how a relay beside an execution client checks a bid.
    pub fn reexecute(&self, block: Block<TxEnvelope>) -> Result<ExecutedBlock, ImportError> {
        let Pinned { header, state, .. } = self.head.read().clone();
        reexecute_on(self.spec.clone(), header, state, block)
    }
}

fn pin(client: &ElClient, header: Sealed<Header>) -> Pinned {
    let source = Arc::new(client.state_at(header.hash(), header.number));
    Pinned {
        state: StateSnapshot::from_source(source.clone(), header.number),
        source,
        header: Arc::new(header),
    }
}

impl HeadSource for ElChain {
    fn spec(&self) -> &Arc<ChainSpec> {
        &self.spec
    }

    fn head(&self) -> Arc<Sealed<Header>> {
        self.head.read().header.clone()
    }

    fn head_state(&self) -> Result<(Arc<Sealed<Header>>, StateSnapshot), ChainError> {
        let Pinned { header, state, .. } = self.head.read().clone();
        Ok((header, state))
    }
}
