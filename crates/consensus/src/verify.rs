//! Checking a run of final records as anyone can: each links to the one before, and each is
//! final by its own finalization certificate or by a later one in the run that links to it.

use std::collections::BTreeMap;

use alloy_primitives::B256;
use commonware_codec::{Copying, Decode as _, DecodeExt as _};
use commonware_cryptography::{certificate::Verifier as _, ed25519};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;

use crate::{
    Entry, Epoch, Finalization, MemberId, Scheme, VOTE_NAMESPACE, record::bridge_digest, to_b256,
};

/// Why a run of records does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A record does not follow the one before it (slot, link or epoch).
    #[error("record {slot} does not follow the record before it")]
    Broken {
        /// Its slot.
        slot: u64,
    },
    /// A certificate does not decode, names another record, or its signatures do not verify
    /// against the members' keys.
    #[error("record {slot}: the finalization certificate is not valid: {why}")]
    BadCertificate {
        /// Its slot.
        slot: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// The last records of the run carry no certificate and nothing later proves them final.
    #[error("records {from}..={to} are not proven final (no certificate at or after them)")]
    Unproven {
        /// First unproven slot.
        from: u64,
        /// Last unproven slot.
        to: u64,
    },
}

/// The members' node keys from their 32-byte encodings (as the registry lists them).
pub fn member_keys(
    keys: impl IntoIterator<Item = (MemberId, B256)>,
) -> Result<BTreeMap<MemberId, ed25519::PublicKey>, MemberId> {
    keys.into_iter()
        .map(|(id, key)| {
            ed25519::PublicKey::decode(Copying(key.as_slice()))
                .map(|key| (id, key))
                .map_err(|_| id)
        })
        .collect()
}

/// The vote-checking scheme of a member set.
pub fn verifier(members: &BTreeMap<MemberId, ed25519::PublicKey>) -> Scheme {
    Scheme::verifier(
        VOTE_NAMESPACE,
        Set::from_iter_dedup(members.values().cloned()),
    )
}

/// The entry's certificate, checked against `verifier` (`None` when it carries none). A record
/// that closes its epoch may be certified by the finalization of its bridge.
pub fn certificate(entry: &Entry, verifier: &Scheme) -> Result<Option<Finalization>, VerifyError> {
    if entry.finalization.is_empty() {
        return Ok(None);
    }
    let slot = entry.record.slot;
    let finalization = Finalization::decode_cfg(
        Copying(entry.finalization.as_ref()),
        &verifier.certificate_codec_config(),
    )
    .map_err(|_| VerifyError::BadCertificate {
        slot,
        why: "does not decode",
    })?;
    if finalization.proposal.round.epoch().get() != entry.record.epoch {
        return Err(VerifyError::BadCertificate {
            slot,
            why: "certifies a round of another epoch",
        });
    }
    let digest = to_b256(&entry.record.digest());
    let payload = to_b256(&finalization.proposal.payload);
    let bridged = !entry.record.next.is_empty() && payload == to_b256(&bridge_digest(&digest));
    if payload != digest && !bridged {
        return Err(VerifyError::BadCertificate {
            slot,
            why: "certifies another record",
        });
    }
    if !finalization.verify(&mut rand::rng(), verifier, &Sequential) {
        return Err(VerifyError::BadCertificate {
            slot,
            why: "signatures do not verify",
        });
    }
    Ok(Some(finalization))
}

/// Checks `entries`, which follow the record `(slot, digest)` and start in `epoch`: links,
/// epochs and certificates, each against the members of its record's epoch (a record that
/// closes an epoch names the next one's, and must carry its own certificate). Returns how many
/// carried their own certificate, and the epoch of the record after the run.
pub fn verify_run(
    entries: &[Entry],
    after: (u64, B256),
    epoch: &Epoch,
) -> Result<(usize, Epoch), VerifyError> {
    let mut tip = after;
    let mut epoch = epoch.clone();
    let mut unproven: Option<u64> = None;
    let mut certified = 0;
    for entry in entries {
        let record = &entry.record;
        if Some(record.slot) != tip.0.checked_add(1)
            || record.prev != tip.1
            || record.epoch != epoch.number
        {
            return Err(VerifyError::Broken { slot: record.slot });
        }
        tip = (record.slot, to_b256(&record.digest()));
        let proven = certificate(entry, &epoch.verifier)?.is_some();
        // The next members are taken only from a record its own epoch certified.
        if !record.next.is_empty() && !proven {
            return Err(VerifyError::BadCertificate {
                slot: record.slot,
                why: "a record that closes its epoch carries no certificate of its own",
            });
        }
        epoch = epoch.after(record);
        if proven {
            certified += 1;
            unproven = None;
        } else {
            unproven.get_or_insert(record.slot);
        }
    }
    match unproven {
        Some(from) => Err(VerifyError::Unproven { from, to: tip.0 }),
        None => Ok((certified, epoch)),
    }
}
