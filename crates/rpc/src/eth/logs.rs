//! `eth_getLogs`: a filter's blocks resolved against the head, narrowed by the chain's log
//! index to those every named address and topic set agrees on, and the matching logs of those
//! blocks, within the node's limits.

use std::collections::BTreeSet;

use alloy_eips::BlockNumberOrTag;
use alloy_primitives::B256;
use alloy_rpc_types_eth::{Filter, FilterBlockOption, Log};
use cobuild_chain::{LogField, ReadView};

use super::convert;
use crate::RpcError;

/// Bounds on one log query: the answer of a node that reads past them would be slow, large,
/// or both. The defaults are reth's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Most blocks one query may span.
    pub max_blocks: u64,
    /// Most logs one answer may carry.
    pub max_logs: usize,
}

impl LogLimits {
    /// reth's bounds: 100,000 blocks, 20,000 logs.
    pub const DEFAULT: Self = Self {
        max_blocks: 100_000,
        max_logs: 20_000,
    };
}

impl Default for LogLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The inclusive block range `filter` asks for with the chain's head at `head`; `None` when it
/// lies past the head (nothing there yet).
pub(super) fn range(
    view: &ReadView,
    head: u64,
    filter: &Filter,
) -> Result<Option<(u64, u64)>, RpcError> {
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let number = hash_number(view, &hash)?;
            (number, number)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let resolve = |tag: Option<BlockNumberOrTag>| match tag.unwrap_or_default() {
                BlockNumberOrTag::Number(n) => n,
                BlockNumberOrTag::Earliest => 0,
                // Latest, pending, safe and finalized are all the head on this chain.
                _ => head,
            };
            (resolve(from_block), resolve(to_block))
        }
    };
    if from > to {
        return Err(RpcError::InvalidParams(format!(
            "invalid block range params: fromBlock {from} is after toBlock {to}"
        )));
    }
    Ok((from <= head).then_some((from, to.min(head))))
}

/// The numeric bounds an installed filter keeps to while it is polled: a block number bounds it,
/// a tag does not (a filter from `latest` reports every block sealed after it was installed).
pub(super) fn watched(view: &ReadView, filter: &Filter) -> Result<(u64, u64), RpcError> {
    match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let number = hash_number(view, &hash)?;
            Ok((number, number))
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let bound = |tag: Option<BlockNumberOrTag>, open: u64| match tag {
                Some(BlockNumberOrTag::Number(n)) => n,
                Some(BlockNumberOrTag::Earliest) => 0,
                _ => open,
            };
            Ok((bound(from_block, 0), bound(to_block, u64::MAX)))
        }
    }
}

/// The number of the block with `hash`; "header not found" if the chain has none.
fn hash_number(view: &ReadView, hash: &B256) -> Result<u64, RpcError> {
    view.block_number(hash)
        .map_err(RpcError::internal)?
        .ok_or(RpcError::UnknownBlock)
}

/// The logs of blocks `from..=to` that `filter` matches, in chain order.
pub(super) fn logs(
    view: &ReadView,
    filter: &Filter,
    (from, to): (u64, u64),
    limits: LogLimits,
) -> Result<Vec<Log>, RpcError> {
    if to - from >= limits.max_blocks {
        return Err(RpcError::LimitExceeded(format!(
            "query exceeds max block range {}",
            limits.max_blocks
        )));
    }
    let blocks: Box<dyn Iterator<Item = u64>> = match candidates(view, filter, from, to)? {
        Some(blocks) => Box::new(blocks.into_iter()),
        None => Box::new(from..=to),
    };
    let mut found = Vec::new();
    let mut last_whole = None;
    for number in blocks {
        let stored = view
            .block(number)
            .map_err(RpcError::internal)?
            .ok_or(RpcError::UnknownBlock)?;
        let receipts = view
            .receipts(number)
            .map_err(RpcError::internal)?
            .unwrap_or_default();
        found.extend(
            convert::block_logs(&stored, &receipts).filter(|log| filter.matches(&log.inner)),
        );
        if found.len() > limits.max_logs {
            let retry = last_whole.map_or_else(
                || format!("narrow the filter: block {number} alone holds more"),
                |last| format!("retry with the range {from}-{last}"),
            );
            return Err(RpcError::LimitExceeded(format!(
                "query exceeds max results {}, {retry}",
                limits.max_logs
            )));
        }
        last_whole = Some(number);
    }
    Ok(found)
}

/// The blocks in `from..=to` that may hold a matching log, from the index: for each field the
/// filter restricts, the blocks holding any of its values; across fields, the blocks all
/// agree on. `None` when the filter restricts no field (any block may match).
fn candidates(
    view: &ReadView,
    filter: &Filter,
    from: u64,
    to: u64,
) -> Result<Option<BTreeSet<u64>>, RpcError> {
    let addresses = filter.address.iter().map(|a| a.into_word()).collect();
    let topics = filter.topics.iter().enumerate().map(|(position, set)| {
        (
            LogField::Topic(position as u8),
            set.iter().copied().collect(),
        )
    });
    let mut candidates: Option<BTreeSet<u64>> = None;
    for (field, values) in std::iter::once((LogField::Address, addresses)).chain(topics) {
        let values: Vec<B256> = values;
        if values.is_empty() {
            continue;
        }
        let mut blocks = BTreeSet::new();
        for value in &values {
            let found = view
                .blocks_with_log(field, value, from, to)
                .map_err(RpcError::internal)?;
            blocks.extend(found);
        }
        candidates = Some(match candidates {
            Some(earlier) => earlier.intersection(&blocks).copied().collect(),
            None => blocks,
        });
    }
    Ok(candidates)
}
