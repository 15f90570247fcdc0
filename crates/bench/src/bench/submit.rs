//! What a bid costs the builder's side: the sealed block turned into a signed submission (payload
//! conversion and the BLS signature) and posted by the relay client to a relay on loopback that
//! takes every bid without checking it. A real relay's own checks and the network come on top;
//! what is left is the part of a bid's latency the builder controls, per encoding.

use std::{convert::Infallible, net::SocketAddr, num::NonZeroU32, time::Instant};

use alloy_primitives::{Address, B256};
use cobuild_chain::ExecutedBlock;
use cobuild_relay::{
    BlsPublicKey, BuilderKey, RelayClient,
    bid::{BidParams, build_submission},
    client::{Config, Encoding, SubmitOutcome},
};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Bytes, body::Incoming};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use super::measure::Latency;
use crate::BenchError;

/// Submitting one block, per encoding.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitFigure {
    /// JSON, uncompressed: what every relay takes.
    pub json: Latency,
    /// SSZ, gzip-compressed: the smallest body.
    pub ssz_gzip: Latency,
}

/// Submits `block` `reps` times per encoding, each as a bid of a new slot (so none waits on the
/// improvement rule), timing the signing and the post together.
pub(crate) fn measure(block: &ExecutedBlock, reps: usize) -> Result<SubmitFigure, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    runtime.block_on(async {
        let addr = sink().await?;
        let key = BuilderKey::from_seed(b"cobuild bench submit");
        let mut figures = Vec::new();
        for (encoding, gzip) in [(Encoding::Json, false), (Encoding::Ssz, true)] {
            let client = RelayClient::new(Config {
                encoding,
                gzip,
                max_submissions_per_second: NonZeroU32::MAX,
                ..Config::new(format!("http://{addr}"))
            })
            .map_err(|e| BenchError::Relay(e.to_string()))?;
            let mut samples = Vec::with_capacity(reps);
            // One untimed submission opens the connection, as a bidder's is open all slot.
            for slot in 0..=reps as u64 {
                let params = BidParams {
                    slot,
                    proposer_pubkey: BlsPublicKey::ZERO,
                    proposer_fee_recipient: Address::ZERO,
                    domain: B256::ZERO,
                };
                let start = Instant::now();
                let request = build_submission(block, &params, &key)
                    .map_err(|e| BenchError::Relay(e.to_string()))?;
                let outcome = client
                    .submit(&request)
                    .await
                    .map_err(|e| BenchError::Relay(e.to_string()))?;
                if outcome != SubmitOutcome::Sent {
                    return Err(BenchError::Relay(format!("bid not sent: {outcome:?}")));
                }
                if slot > 0 {
                    samples.push(start.elapsed());
                }
            }
            figures.push(Latency::from_samples(samples));
        }
        let ssz_gzip = figures.pop().expect("two encodings measured");
        let json = figures.pop().expect("two encodings measured");
        Ok(SubmitFigure { json, ssz_gzip })
    })
}

/// A relay that reads each body and answers an empty 200, on a loopback port.
async fn sink() -> Result<SocketAddr, BenchError> {
    let io = |e: std::io::Error| BenchError::Relay(format!("sink relay: {e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    // Read to the end, as a relay must before it answers.
                    let _ = request.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
