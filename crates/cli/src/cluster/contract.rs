//! The devnet's registry contract: `Registry.sol` deployed on the hub's own chain, listing the
//! same members as `registry.toml`, which the nodes follow. Its address is kept in
//! `<data-dir>/registry.contract`, so a restarted devnet reuses it (the chain persists too).
//!
//! The owner is development account 8, so `cobuild registry add/remove --contract` can change
//! the member set of a running devnet with that key.

use std::path::Path;

use alloy_primitives::Address;
use alloy_signer_local::PrivateKeySigner;
use cobuild_chain::dev_signers;
use cobuild_registry::contract::{ContractConfig, MemberSpec, RegistryWriter, read_members};
use eyre::WrapErr;

use super::layout::NodePlan;

/// The file that holds the contract's address.
pub(crate) const CONTRACT_FILE: &str = "registry.contract";

/// The development account that owns the devnet's registry.
pub(crate) const OWNER_ACCOUNT: usize = 8;

/// The owner's key.
pub(crate) fn owner() -> PrivateKeySigner {
    dev_signers()[OWNER_ACCOUNT].clone()
}

/// What each devnet builder's coinbase is given to pay the gas of its refund payouts (1 ether).
const COINBASE_FLOAT: alloy_primitives::U256 =
    alloy_primitives::U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

/// Deploys the registry on the hub's chain (or reuses the one recorded in `data_dir`) and makes
/// it list exactly the `plans`' members, each at its id.
pub(crate) async fn ensure(
    hub_rpc: &str,
    data_dir: &Path,
    plans: &[NodePlan],
    host: std::net::IpAddr,
) -> eyre::Result<Address> {
    let file = data_dir.join(CONTRACT_FILE);
    let recorded = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| text.trim().parse::<Address>().ok());
    let owner = owner();
    // A recorded contract is reused only if it still answers (same chain, not reset).
    let existing = match recorded {
        Some(address) => read_members(&ContractConfig::new(hub_rpc, address))
            .await
            .ok()
            .map(|members| (address, members)),
        None => None,
    };
    let (writer, listed) = match existing {
        Some((address, members)) => (
            RegistryWriter::connect(hub_rpc, address, owner)
                .await
                .wrap_err("connecting to the registry contract")?,
            members,
        ),
        None => {
            let writer = RegistryWriter::deploy(hub_rpc, owner.clone(), owner.address())
                .await
                .wrap_err("deploying the registry contract on the hub's chain")?;
            std::fs::write(&file, format!("{}\n", writer.address()))
                .wrap_err_with(|| format!("writing {}", file.display()))?;
            (writer, Vec::new())
        }
    };
    for plan in plans {
        let member = plan
            .public
            .member(plan.id, format!("{host}:{}", plan.p2p_port), None);
        match listed.iter().find(|m| m.id == plan.id) {
            Some(current) if *current == member => {}
            Some(_) => {
                writer
                    .update_member(plan.id, &MemberSpec::from(member))
                    .await
                    .wrap_err_with(|| format!("updating member {} in the contract", plan.id))?;
            }
            None => {
                let id = writer
                    .add_member(&MemberSpec::from(member))
                    .await
                    .wrap_err_with(|| format!("adding member {} to the contract", plan.id))?;
                // The contract numbers members itself and never reuses an id.
                eyre::ensure!(
                    id == plan.id,
                    "the registry contract gave node {} the id {id} (ids are never reused: start \
                     the devnet in a fresh --data-dir)",
                    plan.id
                );
            }
        }
    }
    // Each builder pays its refunds from its coinbase, gas included: a float to start with.
    for plan in plans {
        writer
            .top_up(plan.public.coinbase, COINBASE_FLOAT)
            .await
            .wrap_err_with(|| format!("funding node {}'s coinbase", plan.id))?;
    }
    let count = plans.len() as u32;
    for member in listed.iter().filter(|m| m.id >= count) {
        writer
            .remove_member(member.id)
            .await
            .wrap_err_with(|| format!("removing member {} from the contract", member.id))?;
    }
    Ok(writer.address())
}
