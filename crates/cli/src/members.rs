//! `cobuild keys` and `cobuild registry`: a member's own keys, and the list of members.
//!
//! Kept apart from the node commands because they only touch the registry, never a chain
//! replica: an operator creates a key file once, hands its public parts to whoever keeps the
//! registry, and that person adds the member. Nothing here prints a secret; `keys show` reads a
//! key file and prints what `registry add` would list.
//!
//! The registry is either a TOML file (`--file`) or a deployed `Registry.sol` (`--rpc-url` and
//! `--contract`), whose owner signs every change with `--owner-key`. The contract numbers
//! members itself (from 0, never reusing an id), so `--id` is refused there rather than
//! silently ignored. The commands are synchronous; a contract call runs on a current-thread
//! runtime built for that one command.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use clap::Subcommand;
use cobuild_registry::{
    FileRegistry, Member, MemberId, NodeKeys, PublicKeys, Registry,
    contract::{ContractConfig, ContractError, MemberSpec, Refusal, RegistryWriter, read_members},
};
use eyre::WrapErr;

/// `cobuild keys …`
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a node key file: the ed25519 node key (transport and envelope signatures), the
    /// BLS builder key (bids) and the secp256k1 coinbase key, created with mode 0600.
    ///
    /// Prints the public parts.
    New {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing key file (its keys are lost).
        #[arg(long)]
        force: bool,
    },
    /// Print the public parts of a key file (never its secrets).
    Show {
        /// The key file.
        #[arg(long)]
        key_file: PathBuf,
    },
}

/// `cobuild registry …`
#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Add the member whose key file is given (only its public parts are written).
    Add {
        #[command(flatten)]
        source: SourceArgs,
        /// The new member's key file.
        #[arg(long)]
        key_file: PathBuf,
        /// Where the member's P2P transport listens (host:port).
        #[arg(long)]
        address: String,
        /// Its member id [default: one above the highest id listed] (--file only: the
        /// contract assigns ids itself, from 0, never reusing one).
        #[arg(long)]
        id: Option<MemberId>,
        /// Expected TEE measurement (32 bytes, hex).
        #[arg(long)]
        attestation: Option<B256>,
        #[command(flatten)]
        owner: OwnerKeyArg,
    },
    /// Remove a member.
    Remove {
        #[command(flatten)]
        source: SourceArgs,
        /// The member's id.
        #[arg(long)]
        id: MemberId,
        #[command(flatten)]
        owner: OwnerKeyArg,
    },
    /// List the members.
    List {
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Deploy a new, empty registry contract owned by the signing account, and print its
    /// address (alone on stdout, so a script can capture it).
    Deploy {
        /// JSON-RPC endpoint of the EL to deploy on (plain HTTP).
        #[arg(long, value_name = "URL")]
        rpc_url: String,
        #[command(flatten)]
        owner: RequiredOwnerKeyArg,
    },
}

/// Which registry a command works on: a file, or a contract (both `--rpc-url` and
/// `--contract`), never both.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = true)]
pub(crate) struct SourceArgs {
    /// A TOML registry file (created by `registry add` if missing).
    #[arg(long, conflicts_with_all = ["rpc_url", "contract"])]
    file: Option<PathBuf>,
    /// JSON-RPC endpoint of an EL that has the registry contract (plain HTTP).
    #[arg(long, value_name = "URL", requires = "contract")]
    rpc_url: Option<String>,
    /// Address of the deployed registry contract (`Registry.sol`).
    #[arg(long, value_name = "ADDRESS", requires = "rpc_url")]
    contract: Option<Address>,
}

/// The registry owner's key for `add` and `remove`.
#[derive(Debug, clap::Args)]
pub(crate) struct OwnerKeyArg {
    /// Secret key (hex) of the registry contract's owner, which signs the change
    /// (contract only; a file registry has no owner and ignores it).
    #[arg(
        long,
        value_name = "HEX",
        env = "COBUILD_REGISTRY_OWNER_KEY",
        hide_env_values = true
    )]
    owner_key: Option<SecretArg>,
}

/// The deploying account's key for `deploy`: it sends the deployment and becomes the owner.
#[derive(Debug, clap::Args)]
pub(crate) struct RequiredOwnerKeyArg {
    /// Secret key (hex) of the account that deploys the contract and becomes its owner.
    #[arg(
        long,
        value_name = "HEX",
        env = "COBUILD_REGISTRY_OWNER_KEY",
        hide_env_values = true
    )]
    owner_key: SecretArg,
}

/// A secret given on the command line, kept as text until it is used.
///
/// Parsed by [`SecretArg::signer`] rather than by clap, because clap's error for a bad value
/// quotes the value, which would print the secret (or most of it) to the terminal. Its `Debug`
/// never shows it either.
#[derive(Clone)]
pub(crate) struct SecretArg(String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

impl SecretArg {
    /// The signer for this key; the error never quotes the key.
    fn signer(&self) -> eyre::Result<PrivateKeySigner> {
        let bytes: B256 = self.0.trim().parse().map_err(|_| {
            eyre::eyre!("--owner-key is not a 32-byte hex secret key (value not shown)")
        })?;
        PrivateKeySigner::from_bytes(&bytes).map_err(|_| {
            eyre::eyre!("--owner-key is not a valid secp256k1 secret key (value not shown)")
        })
    }
}

/// A registry the CLI can read and edit.
enum Source {
    File(FileRegistry),
    Contract(ContractSource),
}

/// A registry contract, with the runtime its calls run on.
struct ContractSource {
    config: ContractConfig,
    runtime: tokio::runtime::Runtime,
}

impl SourceArgs {
    /// Opens the source; `create` makes an empty file registry if the file is missing.
    fn open(&self, create: bool) -> eyre::Result<Source> {
        match (&self.file, &self.rpc_url, &self.contract) {
            (Some(path), None, None) => {
                let registry = if create {
                    FileRegistry::open_or_create(path)
                } else {
                    FileRegistry::open(path)
                };
                registry
                    .map(Source::File)
                    .wrap_err_with(|| format!("opening the registry file {}", path.display()))
            }
            (None, Some(rpc_url), Some(address)) => Ok(Source::Contract(ContractSource {
                config: ContractConfig::new(rpc_url.clone(), *address),
                runtime: runtime()?,
            })),
            // clap's group and `requires`/`conflicts_with` rules make this unreachable; an
            // error rather than a panic in case they are ever loosened.
            _ => eyre::bail!(
                "give exactly one registry source: --file, or --rpc-url with --contract"
            ),
        }
    }
}

impl Source {
    fn members(&self) -> eyre::Result<Vec<Member>> {
        match self {
            Self::File(registry) => Ok(registry.members()?),
            Self::Contract(contract) => contract.members(),
        }
    }
}

impl ContractSource {
    fn members(&self) -> eyre::Result<Vec<Member>> {
        self.runtime
            .block_on(read_members(&self.config))
            .wrap_err_with(|| self.reading())
    }

    /// A writer signing with `owner`, after checking there is a registry at the address (so
    /// no transaction is ever sent to an account without the contract's code).
    fn writer(&self, owner: &OwnerKeyArg) -> eyre::Result<(RegistryWriter, Address)> {
        let signer = owner
            .owner_key
            .as_ref()
            .ok_or_else(|| {
                eyre::eyre!(
                    "changing the registry contract needs its owner's key: pass --owner-key or \
                     set COBUILD_REGISTRY_OWNER_KEY"
                )
            })?
            .signer()?;
        self.runtime.block_on(async {
            let writer = RegistryWriter::connect(&self.config.rpc_url, self.config.address, signer)
                .await
                .wrap_err_with(|| format!("connecting to {}", self.config.rpc_url))?;
            let owner = writer.owner().await.wrap_err_with(|| self.reading())?;
            Ok((writer, owner))
        })
    }

    /// Adds a member; answers the id the contract gave it.
    fn add(&self, owner: &OwnerKeyArg, spec: &MemberSpec) -> eyre::Result<MemberId> {
        let (writer, current_owner) = self.writer(owner)?;
        self.runtime
            .block_on(writer.add_member(spec))
            .map_err(|e| self.change_failed(e, current_owner))
    }

    /// Removes member `id`; answers its entry as listed just before.
    fn remove(&self, owner: &OwnerKeyArg, id: MemberId) -> eyre::Result<Option<Member>> {
        let (writer, current_owner) = self.writer(owner)?;
        // Read first so the removed entry can be shown; a missing id is left to the contract,
        // whose refusal (unknown member) is the answer.
        let listed = self.members()?.into_iter().find(|m| m.id == id);
        self.runtime
            .block_on(writer.remove_member(id))
            .map_err(|e| self.change_failed(e, current_owner))?;
        Ok(listed)
    }

    fn reading(&self) -> String {
        format!(
            "reading the registry contract {} through {}",
            self.config.address, self.config.rpc_url
        )
    }

    /// Explains a failed change: a refusal carries the contract's reason (plus who the owner
    /// is when the signer is not), anything else is a failure to talk to the EL.
    fn change_failed(&self, error: ContractError, owner: Address) -> eyre::Report {
        if !error.is_refusal() {
            return eyre::Report::new(error).wrap_err(format!(
                "sending the change to the registry contract {} through {}",
                self.config.address, self.config.rpc_url
            ));
        }
        let address = self.config.address;
        match error {
            ContractError::Refused(Refusal::NotOwner { caller }) => eyre::eyre!(
                "the registry contract {address} refused the change: {caller} is not its owner \
                 (the owner is {owner})"
            ),
            ContractError::Refused(reason) => {
                eyre::eyre!("the registry contract {address} refused the change: {reason}")
            }
            // Mined but reverted: the state changed between the estimate and inclusion.
            other => eyre::Report::new(other),
        }
    }
}

/// The runtime a contract command runs its calls on: one thread is plenty for a handful of
/// JSON-RPC requests, and the CLI itself stays synchronous.
fn runtime() -> eyre::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("starting the runtime for the registry contract calls")
}

/// Runs a `cobuild keys` command, returning what to print.
pub(crate) fn keys(command: KeysCommand) -> eyre::Result<String> {
    match command {
        KeysCommand::New { out, force } => {
            let keys = NodeKeys::generate().wrap_err("generating keys")?;
            if force {
                keys.replace(&out)
            } else {
                keys.write(&out)
            }
            .wrap_err("writing the key file")?;
            Ok(format!(
                "wrote {} (mode 0600, keep it private)\n{}",
                out.display(),
                show(&keys.public())
            ))
        }
        KeysCommand::Show { key_file } => Ok(show(&read_keys(&key_file)?.public())),
    }
}

/// Runs a `cobuild registry` command, returning what to print.
pub(crate) fn registry(command: RegistryCommand) -> eyre::Result<String> {
    match command {
        RegistryCommand::Add {
            source,
            key_file,
            address,
            id,
            attestation,
            owner,
        } => {
            let public = read_keys(&key_file)?.public();
            match source.open(true)? {
                Source::File(registry) => {
                    let id = match id {
                        Some(id) => id,
                        None => next_id(&registry.members()?)?,
                    };
                    let member = public.member(id, address, attestation);
                    registry.add(member.clone()).wrap_err_with(|| {
                        format!("adding {} as member {id}", key_file.display())
                    })?;
                    Ok(format!("added member {id}\n{}", table(&[member])))
                }
                Source::Contract(contract) => {
                    // Refused rather than ignored: the caller would otherwise believe the
                    // member got the id asked for.
                    if let Some(id) = id {
                        eyre::bail!(
                            "--id {id} cannot be used with --contract: the registry contract \
                             assigns member ids itself (from 0, in order, never reusing one) \
                             and `registry add` prints the id it gave"
                        );
                    }
                    // The id is a placeholder until the contract answers with the real one.
                    let spec = MemberSpec::from(public.member(0, address, attestation));
                    let id = contract.add(&owner, &spec).wrap_err_with(|| {
                        format!("adding {} to the registry contract", key_file.display())
                    })?;
                    let member = Member {
                        id,
                        address: spec.address,
                        node_key: spec.node_key,
                        bls_key: spec.bls_key,
                        attestation: spec.attestation,
                    };
                    Ok(format!("added member {id}\n{}", table(&[member])))
                }
            }
        }
        RegistryCommand::Remove { source, id, owner } => match source.open(false)? {
            Source::File(registry) => {
                let removed = registry
                    .remove(id)
                    .wrap_err_with(|| format!("removing member {id}"))?;
                Ok(format!("removed member {id}\n{}", table(&[removed])))
            }
            Source::Contract(contract) => {
                let removed = contract
                    .remove(&owner, id)
                    .wrap_err_with(|| format!("removing member {id}"))?;
                Ok(match removed {
                    Some(member) => format!("removed member {id}\n{}", table(&[member])),
                    // Listed by the contract yet missing from the read just before: the
                    // removal went through, there is just no entry to show.
                    None => format!("removed member {id}\n"),
                })
            }
        },
        RegistryCommand::Deploy { rpc_url, owner } => {
            let signer = owner.owner_key.signer()?;
            let owner = signer.address();
            let writer = runtime()?
                .block_on(RegistryWriter::deploy(&rpc_url, signer, owner))
                .wrap_err_with(|| format!("deploying the registry contract through {rpc_url}"))?;
            Ok(format!("{}\n", writer.address()))
        }
        RegistryCommand::List { source } => {
            let members = source.open(false)?.members()?;
            if members.is_empty() {
                Ok("no members\n".to_owned())
            } else {
                Ok(table(&members))
            }
        }
    }
}

fn read_keys(path: &Path) -> eyre::Result<NodeKeys> {
    NodeKeys::read(path).wrap_err("reading the key file")
}

fn next_id(members: &[Member]) -> eyre::Result<MemberId> {
    match members.iter().map(|m| m.id).max() {
        None => Ok(0),
        Some(max) => max
            .checked_add(1)
            .ok_or_else(|| eyre::eyre!("member ids are exhausted; pass --id")),
    }
}

fn show(public: &PublicKeys) -> String {
    format!(
        "node key   {}\nbls key    {}\ncoinbase   {}\n",
        public.node_key, public.bls_key, public.coinbase
    )
}

/// One line per member, columns aligned.
fn table(members: &[Member]) -> String {
    let rows: Vec<[String; 5]> = members
        .iter()
        .map(|m| {
            [
                m.id.to_string(),
                m.address.clone(),
                m.node_key.to_string(),
                m.bls_key.to_string(),
                m.attestation
                    .map_or_else(|| "-".to_owned(), |a| a.to_string()),
            ]
        })
        .collect();
    let header = ["ID", "ADDRESS", "NODE KEY", "BLS KEY", "ATTESTATION"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
