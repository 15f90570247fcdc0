//! Reading the member list from the contract, once or continuously.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::SolCall;
use cobuild_contracts::IRegistry;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};

use super::{ContractConfig, ContractError};
use crate::{Member, Registry, RegistryError};

/// Reads the current members once: connects to `config.rpc_url` and calls `members()` on the
/// contract at `config.address`.
///
/// Needs a tokio runtime (the HTTP client runs on it).
pub async fn read_members(config: &ContractConfig) -> Result<Vec<Member>, ContractError> {
    let provider = connect_reader(config).await?;
    fetch(&provider, config).await
}

/// A read-only provider for `config.rpc_url`.
async fn connect_reader(config: &ContractConfig) -> Result<DynProvider, ContractError> {
    let provider = with_timeout(
        "connect",
        config.request_timeout,
        ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect(&config.rpc_url),
    )
    .await?
    .map_err(ContractError::Rpc)?;
    Ok(provider.erased())
}

/// Calls `members()` at the latest block and checks the answer.
async fn fetch(
    provider: &DynProvider,
    config: &ContractConfig,
) -> Result<Vec<Member>, ContractError> {
    let request = TransactionRequest::default()
        .to(config.address)
        .input(IRegistry::membersCall {}.abi_encode().into());
    let output = with_timeout("eth_call members()", config.request_timeout, async {
        provider.call(request).await
    })
    .await?
    .map_err(ContractError::from_rpc)?;
    if output.is_empty() {
        // A call to an account without code succeeds with no output.
        return Err(ContractError::NoContract(config.address));
    }
    let listed = IRegistry::membersCall::abi_decode_returns(&output)?;
    let members = to_members(listed)?;
    // The same rules as every other source: valid keys, nothing registered twice.
    crate::validate_members(&members).map_err(ContractError::Invalid)?;
    Ok(members)
}

/// Converts the contract's records in order, refusing a removed member or an id out of order
/// (the contract lists current members by increasing id).
fn to_members(listed: Vec<IRegistry::Member>) -> Result<Vec<Member>, ContractError> {
    let mut members: Vec<Member> = Vec::with_capacity(listed.len());
    for record in listed {
        let id = record.id;
        let invalid = |reason| ContractError::InvalidMember { id, reason };
        if !record.active {
            return Err(invalid("listed but not active"));
        }
        if members.last().is_some_and(|last| last.id >= id) {
            return Err(invalid("ids not strictly increasing"));
        }
        members.push(Member {
            id,
            address: record.addr,
            node_key: record.nodeKey,
            bls_key: record.blsKey,
            attestation: (record.attestation != B256::ZERO).then_some(record.attestation),
        });
    }
    Ok(members)
}

/// Runs `fut`, or fails with [`ContractError::Timeout`] after `after`.
async fn with_timeout<T>(
    what: &'static str,
    after: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, ContractError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| ContractError::Timeout { what, after })
}

/// How fresh a [`ContractRegistry`]'s list is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStatus {
    /// When the list was last read successfully.
    pub refreshed_at: Instant,
    /// Reads that failed since then.
    pub failures: u64,
    /// The last failure since then, if any.
    pub last_error: Option<String>,
}

/// The cached list and how fresh it is.
#[derive(Debug)]
struct Cache {
    members: Vec<Member>,
    status: RefreshStatus,
}

/// A request to the refresh thread.
#[derive(Debug)]
enum Command {
    /// Read now and answer with the outcome.
    Refresh(oneshot::Sender<Result<Vec<Member>, ContractError>>),
}

/// The member list of a `Registry.sol` deployment, kept fresh by a background thread.
///
/// `connect` reads the list once and starts a dedicated thread (with its own single-threaded
/// runtime, so it works the same under any caller's runtime) that re-reads `members()` every
/// [`ContractConfig::refresh_interval`].
///
/// Between refreshes, [`Registry::members`] answers the list of the last *successful* read,
/// without touching the network: it never blocks and never fails. A failed read (endpoint
/// down, timeout, bad answer) keeps the previous list, so a flaky EL does not empty the
/// network; it is logged and counted in [`ContractRegistry::status`], which callers check
/// to decide whether the list is too old to trust. Dropping the registry stops the thread
/// after its current request.
#[derive(Debug)]
pub struct ContractRegistry {
    address: Address,
    cache: Arc<RwLock<Cache>>,
    commands: mpsc::UnboundedSender<Command>,
}

impl ContractRegistry {
    /// Reads the list once and starts following the contract.
    ///
    /// Fails if the first read fails (no endpoint, no contract at the address, bad answer):
    /// a node should not start with an unknown membership. Runs on any runtime; the network
    /// work happens on the registry's own thread.
    pub async fn connect(config: ContractConfig) -> Result<Self, ContractError> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let address = config.address;
        std::thread::Builder::new()
            .name("registry-contract".into())
            .spawn(move || follow(config, commands_rx, ready_tx))
            .map_err(ContractError::Thread)?;
        let cache = ready_rx.await.map_err(|_| ContractError::Stopped)??;
        Ok(Self {
            address,
            cache,
            commands,
        })
    }

    /// The contract followed.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Reads the list now (for instance right after a change was mined) and answers it; the
    /// cache is updated as by a periodic refresh.
    pub async fn refresh(&self) -> Result<Vec<Member>, ContractError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Refresh(reply))
            .map_err(|_| ContractError::Stopped)?;
        answer.await.map_err(|_| ContractError::Stopped)?
    }

    /// When the list was last read and what failed since.
    pub fn status(&self) -> RefreshStatus {
        self.cache.read().status.clone()
    }
}

impl Registry for ContractRegistry {
    /// The list of the last successful read (see the type's docs); never fails.
    fn members(&self) -> Result<Vec<Member>, RegistryError> {
        Ok(self.cache.read().members.clone())
    }
}

/// The refresh thread: its own runtime, the first read answered on `ready`, then a read every
/// interval or on request until the registry is dropped.
fn follow(
    config: ContractConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    ready: oneshot::Sender<Result<Arc<RwLock<Cache>>, ContractError>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(ContractError::Thread(e)));
            return;
        }
    };
    runtime.block_on(async move {
        let first = async {
            let provider = connect_reader(&config).await?;
            let members = fetch(&provider, &config).await?;
            Ok::<_, ContractError>((provider, members))
        };
        let (provider, members) = match first.await {
            Ok(ok) => ok,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        tracing::info!(
            address = %config.address,
            members = members.len(),
            "registry.contract.loaded"
        );
        let cache = Arc::new(RwLock::new(Cache {
            members,
            status: RefreshStatus {
                refreshed_at: Instant::now(),
                failures: 0,
                last_error: None,
            },
        }));
        if ready.send(Ok(cache.clone())).is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(config.refresh_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.reset();
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    // Logged and counted inside; the cache keeps the last good list.
                    let _ = refresh(&provider, &config, &cache).await;
                }
                command = commands.recv() => match command {
                    Some(Command::Refresh(reply)) => {
                        let _ = reply.send(refresh(&provider, &config, &cache).await);
                        ticker.reset();
                    }
                    None => break,
                },
            }
        }
        tracing::debug!(address = %config.address, "registry.contract.stopped");
    });
}

/// One read: on success the cache takes the list, on failure it keeps the old one and counts.
async fn refresh(
    provider: &DynProvider,
    config: &ContractConfig,
    cache: &RwLock<Cache>,
) -> Result<Vec<Member>, ContractError> {
    match fetch(provider, config).await {
        Ok(members) => {
            let mut cache = cache.write();
            if cache.members != members {
                tracing::info!(
                    address = %config.address,
                    before = cache.members.len(),
                    after = members.len(),
                    "registry.contract.changed"
                );
            }
            cache.members = members.clone();
            cache.status = RefreshStatus {
                refreshed_at: Instant::now(),
                failures: 0,
                last_error: None,
            };
            Ok(members)
        }
        Err(e) => {
            tracing::warn!(address = %config.address, error = %e, "registry.contract.refresh_failed");
            let mut cache = cache.write();
            cache.status.failures += 1;
            cache.status.last_error = Some(e.to_string());
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{B256, Bytes};
    use cobuild_contracts::IRegistry;

    use super::*;

    fn record(id: u32, bls_len: usize) -> IRegistry::Member {
        IRegistry::Member {
            id,
            addr: format!("127.0.0.1:{}", 9000 + id),
            nodeKey: B256::repeat_byte(id as u8 + 1),
            blsKey: Bytes::from(vec![7; bls_len]),
            attestation: B256::ZERO,
            active: true,
        }
    }

    #[test]
    fn test_zero_attestation_is_none_and_order_is_kept() {
        let mut attested = record(3, 48);
        attested.attestation = B256::repeat_byte(9);
        let members = to_members(vec![record(0, 48), attested]).expect("valid");
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].attestation, None);
        assert_eq!(members[1].id, 3);
        assert_eq!(members[1].attestation, Some(B256::repeat_byte(9)));
        assert_eq!(members[1].address, "127.0.0.1:9003");
    }

    #[test]
    fn test_removed_or_unordered_records_are_refused() {
        let unordered = to_members(vec![record(2, 48), record(1, 48)]);
        assert!(matches!(
            unordered,
            Err(ContractError::InvalidMember { id: 1, .. })
        ));
        let mut removed = record(0, 48);
        removed.active = false;
        assert!(matches!(
            to_members(vec![removed]),
            Err(ContractError::InvalidMember { id: 0, .. })
        ));
    }
}
