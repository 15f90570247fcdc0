//! The RPC layer that tells each call of a batch its position in the body.

use jsonrpsee::server::middleware::rpc::{Batch, Notification, RpcServiceT};

use crate::replicate::CallIndex;

/// Tells every call of a batch its position in the batch ([`CallIndex`]), so an order can name
/// exactly which call of the signed body it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallIndexLayer;

impl<S> tower::Layer<S> for CallIndexLayer {
    type Service = CallIndexService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallIndexService { inner }
    }
}

/// The RPC service of [`CallIndexLayer`].
#[derive(Debug, Clone)]
pub struct CallIndexService<S> {
    inner: S,
}

impl<S> RpcServiceT for CallIndexService<S>
where
    S: RpcServiceT + Send + Sync,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: jsonrpsee::types::Request<'a>,
    ) -> impl std::future::Future<Output = Self::MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl std::future::Future<Output = Self::BatchResponse> + Send + 'a {
        // Entries that are not calls keep their place too: the position is the one in the body.
        for (index, entry) in batch.iter_mut().enumerate() {
            if let Ok(entry) = entry {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                entry.extensions_mut().insert(CallIndex(index));
            }
        }
        self.inner.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl std::future::Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
