//! Reading a request body under a size limit and a deadline.

use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the limit (answer 413).
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body did not arrive in time (answer 408).
    #[error("request body did not arrive within {0:?}")]
    Timeout(Duration),
    /// The connection failed while the body was read.
    #[error("request body could not be read")]
    Broken,
}

/// The whole of `body`, if it is at most `limit` bytes and arrives within `deadline`. Nothing
/// beyond `limit` is buffered, however the body is sent (with a length or chunked).
pub async fn read_body<B>(body: B, limit: usize, deadline: Duration) -> Result<Bytes, BodyError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::Timeout(deadline)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge { limit })
        }
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        pin::Pin,
        task::{Context, Poll},
    };

    use http_body_util::Full;
    use hyper::body::Frame;

    use super::*;

    /// A body that sends its first chunk and then nothing, for ever (a slow client).
    struct Stalled(Option<Bytes>);

    impl Body for Stalled {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.0.take() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn test_a_body_within_bounds_is_read() {
        let body = Full::new(Bytes::from_static(b"hello"));
        assert_eq!(
            read_body(body, 5, Duration::from_secs(1)).await,
            Ok(Bytes::from_static(b"hello"))
        );
    }

    #[tokio::test]
    async fn test_a_long_body_is_refused() {
        let body = Full::new(Bytes::from_static(b"hello!"));
        assert_eq!(
            read_body(body, 5, Duration::from_secs(1)).await,
            Err(BodyError::TooLarge { limit: 5 })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn test_a_body_that_never_ends_times_out() {
        let body = Stalled(Some(Bytes::from_static(b"he")));
        assert_eq!(
            read_body(body, 5, Duration::from_secs(3)).await,
            Err(BodyError::Timeout(Duration::from_secs(3)))
        );
    }
}
