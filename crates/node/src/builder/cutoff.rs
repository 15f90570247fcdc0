//! When a node stops building for a slot announced by a `payload_attributes` stream.

use std::time::{Duration, Instant};

/// Longest margin kept between the end of building and the relay's deadline: the last bid
/// still has to be signed, sent and re-executed by the relay.
const MAX_MARGIN: Duration = Duration::from_millis(150);

/// When to stop building for a slot whose bids close at `deadline`, announced at `received`:
/// a fifth of the window before the deadline, at most [`MAX_MARGIN`].
pub fn cutoff(received: Instant, deadline: Instant) -> Instant {
    let window = deadline.saturating_duration_since(received);
    deadline - (window / 5).min(MAX_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cutoff_keeps_a_fifth_of_the_window_up_to_the_margin() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(cutoff(now, now + ms(500)), now + ms(400));
        assert_eq!(cutoff(now, now + ms(12_000)), now + ms(12_000) - MAX_MARGIN);
        assert_eq!(cutoff(now, now), now);
    }
}
