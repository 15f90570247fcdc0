//! Request budgets for the signed (orderflow) methods, per sender and per peer IP: one spammer
//! is answered with an error at once (never queued), and others are unaffected.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    time::{Duration, Instant},
};

use alloy_primitives::Address;
use parking_lot::Mutex;

use crate::RpcError;

/// How many keys are tracked before idle (full) buckets are forgotten.
const MAX_TRACKED: usize = 100_000;

/// Token buckets keyed by `K`: a sender, a peer IP.
#[derive(Debug)]
pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// Budgets keyed by the sender proven by `X-Flashbots-Signature`.
pub type SenderLimiter = RateLimiter<Address>;

/// Budgets keyed by the IP address of the connection a request came on.
pub type IpLimiter = RateLimiter<IpAddr>;

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// Allows `per_second` requests per key on average, and bursts of up to `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s budget, or says it is spent.
    pub fn check(&self, key: K) -> Result<(), RpcError> {
        self.check_at(key, Instant::now(), 1.0)
    }

    /// Takes `cost` units (gas, say) from `key`'s budget, or says it is spent. A cost above the
    /// burst is never affordable.
    pub fn check_cost(&self, key: K, cost: f64) -> Result<(), RpcError> {
        self.check_at(key, Instant::now(), cost)
    }

    fn check_at(&self, sender: K, now: Instant, cost: f64) -> Result<(), RpcError> {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&sender) {
            // Forget senders whose bucket has refilled: they lose nothing by being forgotten.
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + rate * now.duration_since(*at).as_secs_f64() < burst
            });
        }
        let (tokens, at) = buckets.entry(sender).or_insert((self.burst, now));
        let refilled =
            (*tokens + self.per_second * now.duration_since(*at).as_secs_f64()).min(self.burst);
        if refilled < cost {
            let wait =
                Duration::from_secs_f64((cost - refilled) / self.per_second.max(f64::MIN_POSITIVE));
            return Err(RpcError::RateLimited {
                retry_after_ms: wait.as_millis() as u64,
            });
        }
        *tokens = refilled - cost;
        *at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_burst_then_refill_per_sender() {
        let limiter: SenderLimiter = RateLimiter::new(2, 3);
        let (alice, bob) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(alice, t0, 1.0).expect("within the burst");
        }
        assert!(matches!(
            limiter.check_at(alice, t0, 1.0),
            Err(RpcError::RateLimited { .. })
        ));
        // Another sender has its own budget.
        limiter
            .check_at(bob, t0, 1.0)
            .expect("bob is not limited by alice");
        // Half a second at 2/s refills one request.
        let later = t0 + Duration::from_millis(500);
        limiter.check_at(alice, later, 1.0).expect("refilled");
        assert!(limiter.check_at(alice, later, 1.0).is_err());
    }
}
