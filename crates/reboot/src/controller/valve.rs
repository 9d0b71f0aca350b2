//! A valve on the client's HTTP stack, so the controller can stop a
//! rollout between two API calls rather than in the middle of one: once
//! closed, requests already sent finish (their answers are read), new ones
//! are held back forever, and [`Valve::idle`] says when nothing is in
//! flight. The rollout is then dropped; whatever it wrote last is on the
//! cluster whole, its progress annotation included, and the next leader
//! resumes from there.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::Notify;

/// The valve; clones share it. A [`tower_layer::Layer`] for
/// `kube::client::ClientBuilder::with_layer`.
#[derive(Debug, Clone, Default)]
pub struct Valve {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    closed: AtomicBool,
    in_flight: AtomicUsize,
    settled: Notify,
}

impl Valve {
    /// Holds every request not yet sent.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }

    /// Lets requests through again.
    pub fn open(&self) {
        self.inner.closed.store(false, Ordering::SeqCst);
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves once no request is in flight.
    pub async fn idle(&self) {
        loop {
            let settled = self.inner.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            settled.await;
        }
    }
}

/// Counts one request in flight while it lives.
struct Flight(Arc<Inner>);

impl Flight {
    fn start(inner: &Arc<Inner>) -> Flight {
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        Flight(inner.clone())
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.settled.notify_waiters();
    }
}

impl<S> tower_layer::Layer<S> for Valve {
    type Service = Valved<S>;

    fn layer(&self, inner: S) -> Valved<S> {
        Valved {
            inner,
            valve: self.clone(),
        }
    }
}

/// A service behind a [`Valve`].
#[derive(Debug, Clone)]
pub struct Valved<S> {
    inner: S,
    valve: Valve,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, R> tower_service::Service<R> for Valved<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Answer<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        if self.valve.inner.closed.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        let flight = Flight::start(&self.valve.inner);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            drop(flight);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tower_layer::Layer;
    use tower_service::Service;

    /// Answers after `delay`.
    #[derive(Clone)]
    struct Slow(Duration);

    impl Service<u32> for Slow {
        type Response = u32;
        type Error = std::convert::Infallible;
        type Future = Answer<u32, std::convert::Infallible>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, n: u32) -> Self::Future {
            let delay = self.0;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(n)
            })
        }
    }

    #[tokio::test]
    async fn a_closed_valve_lets_the_call_in_flight_finish_and_holds_the_next() {
        let valve = Valve::default();
        let mut service = valve.layer(Slow(Duration::from_millis(50)));
        let first = tokio::spawn(service.call(1));
        tokio::task::yield_now().await;
        assert_eq!(valve.in_flight(), 1);
        valve.close();
        let held = service.call(2);
        tokio::time::timeout(Duration::from_secs(5), valve.idle())
            .await
            .expect("the call in flight settles");
        assert_eq!(first.await.expect("joined"), Ok(1));
        assert!(
            tokio::time::timeout(Duration::from_millis(200), held)
                .await
                .is_err(),
            "a call after closing is held back"
        );
        assert_eq!(valve.in_flight(), 0);
        valve.open();
        assert_eq!(service.call(3).await, Ok(3));
    }

    #[tokio::test]
    async fn a_dropped_call_is_no_longer_in_flight() {
        let valve = Valve::default();
        let mut service = valve.layer(Slow(Duration::from_secs(60)));
        let call = service.call(1);
        assert_eq!(valve.in_flight(), 1);
        drop(call);
        assert_eq!(valve.in_flight(), 0);
        tokio::time::timeout(Duration::from_secs(1), valve.idle())
            .await
            .expect("idle at once");
    }
}
