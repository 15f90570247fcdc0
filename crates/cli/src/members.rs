//! `cobuild keys` and `cobuild registry`: a member's own keys, and the list of members.
//!
//! Kept apart from the node commands because they only touch files: an operator creates a key
//! file once, hands its public parts to whoever keeps the registry, and that person adds the
//! member. Nothing here prints a secret; `keys show` reads a key file and prints what
//! `registry add` would list.

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use clap::Subcommand;
use cobuild_registry::{FileRegistry, Member, MemberId, NodeKeys, PublicKeys, Registry};
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
        /// Its member id [default: one above the highest id listed].
        #[arg(long)]
        id: Option<MemberId>,
        /// Expected TEE measurement (32 bytes, hex).
        #[arg(long)]
        attestation: Option<B256>,
    },
    /// Remove a member.
    Remove {
        #[command(flatten)]
        source: SourceArgs,
        /// The member's id.
        #[arg(long)]
        id: MemberId,
    },
    /// List the members.
    List {
        #[command(flatten)]
        source: SourceArgs,
    },
}

/// Which registry a command works on: exactly one source.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct SourceArgs {
    /// A TOML registry file (created by `registry add` if missing).
    #[arg(long)]
    file: Option<PathBuf>,
}

/// A registry the CLI can read and edit.
enum Source {
    File(FileRegistry),
}

impl SourceArgs {
    /// Opens the source; `create` makes an empty file registry if the file is missing.
    fn open(&self, create: bool) -> eyre::Result<Source> {
        match &self.file {
            Some(path) => {
                let registry = if create {
                    FileRegistry::open_or_create(path)
                } else {
                    FileRegistry::open(path)
                };
                registry
                    .map(Source::File)
                    .wrap_err_with(|| format!("opening the registry file {}", path.display()))
            }
            None => eyre::bail!("no registry source given (use --file)"),
        }
    }
}

impl Source {
    fn members(&self) -> eyre::Result<Vec<Member>> {
        match self {
            Self::File(registry) => Ok(registry.members()?),
        }
    }

    fn add(&self, member: Member) -> eyre::Result<()> {
        match self {
            Self::File(registry) => Ok(registry.add(member)?),
        }
    }

    fn remove(&self, id: MemberId) -> eyre::Result<Member> {
        match self {
            Self::File(registry) => Ok(registry.remove(id)?),
        }
    }
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
        } => {
            let public = read_keys(&key_file)?.public();
            let registry = source.open(true)?;
            let id = match id {
                Some(id) => id,
                None => next_id(&registry.members()?)?,
            };
            let member = public.member(id, address, attestation);
            registry
                .add(member.clone())
                .wrap_err_with(|| format!("adding {} as member {id}", key_file.display()))?;
            Ok(format!("added member {id}\n{}", table(&[member])))
        }
        RegistryCommand::Remove { source, id } => {
            let removed = source
                .open(false)?
                .remove(id)
                .wrap_err_with(|| format!("removing member {id}"))?;
            Ok(format!("removed member {id}\n{}", table(&[removed])))
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
