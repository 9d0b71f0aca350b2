//! Fault injection and request accounting: per-route latency, failing the
//! next N requests, forcing 410 on watches, and counting requests per user
//! agent, verb and resource so tests can measure the load each client puts
//! on the API.
//!
//! Pure bookkeeping: the server asks [`Faults::admit`] what to do with each
//! request and does the sleeping and answering itself.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::Status;

/// Which requests a rule applies to. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Resource as counted: `pods`, `nodes/status`, `leases.coordination.k8s.io`,
    /// or a non-resource path such as `/version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Route {
    /// Every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Requests with this verb.
    pub fn verb(verb: &str) -> Self {
        Self {
            verb: Some(verb.to_owned()),
            resource: None,
        }
    }

    /// Requests for this resource (any verb).
    pub fn resource(resource: &str) -> Self {
        Self {
            verb: None,
            resource: Some(resource.to_owned()),
        }
    }

    /// Requests with this verb for this resource.
    pub fn new(verb: &str, resource: &str) -> Self {
        Self {
            verb: Some(verb.to_owned()),
            resource: Some(resource.to_owned()),
        }
    }

    fn matches(&self, verb: &str, resource: &str) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

/// How an injected failure answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Failure {
    /// 429 with `Retry-After: <seconds>`.
    TooManyRequests {
        /// Seconds in the `Retry-After` header.
        retry_after: u32,
    },
    /// 500 InternalError.
    Internal,
    /// 503 ServiceUnavailable.
    Unavailable,
    /// No answer: the connection is closed once the request is read, as
    /// a load balancer or a dying apiserver does.
    Cut,
}

impl Failure {
    /// The answer, or `None` for no answer at all.
    fn status(self) -> Option<Status> {
        match self {
            Self::TooManyRequests { retry_after } => Some(Status::too_many_requests(
                "kubesim: injected 429, the server is throttling",
                Some(retry_after),
                None,
            )),
            Self::Internal => Some(Status::internal("kubesim: injected 500")),
            Self::Unavailable => Some(Status::unavailable("kubesim: injected 503")),
            Self::Cut => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    route: Route,
    failure: Failure,
    remaining: u32,
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer with this error instead of serving the request.
    pub fail: Option<Status>,
    /// Close the connection without answering.
    pub cut: bool,
    /// Open this watch with a single 410 ERROR event, as the apiserver
    /// does for a resourceVersion it no longer has.
    pub expire_watch: bool,
}

/// Requests counted per `(verb, resource)`, summed over user agents.
pub type Counts = BTreeMap<(String, String), u64>;

/// Requests counted per `(user agent, verb, resource)`. A request without a
/// `User-Agent` header counts under the empty string.
pub type AgentCounts = BTreeMap<(String, String, String), u64>;

/// The fault and accounting state.
#[derive(Debug, Default)]
pub struct Faults {
    latency: Vec<(Route, Duration)>,
    failures: VecDeque<Pending>,
    expire_watches: u32,
    counts: AgentCounts,
}

impl Faults {
    /// Adds `delay` to every request matching `route` (delays add up).
    pub fn add_latency(&mut self, route: Route, delay: Duration) {
        self.latency.push((route, delay));
    }

    /// Fails the next `count` requests matching `route` with `failure`.
    pub fn fail_next(&mut self, route: Route, count: u32, failure: Failure) {
        if count > 0 {
            self.failures.push_back(Pending {
                route,
                failure,
                remaining: count,
            });
        }
    }

    /// Answers the next `count` watch requests with 410 Gone.
    pub fn expire_next_watches(&mut self, count: u32) {
        self.expire_watches += count;
    }

    /// Removes every latency and failure rule (counts stay).
    pub fn clear(&mut self) {
        self.latency.clear();
        self.failures.clear();
        self.expire_watches = 0;
    }

    /// Counts a request from `user_agent` (empty when the client sent none)
    /// and decides its fate.
    pub fn admit(&mut self, user_agent: &str, verb: &str, resource: &str) -> Decision {
        *self
            .counts
            .entry((user_agent.to_owned(), verb.to_owned(), resource.to_owned()))
            .or_insert(0) += 1;
        let delay = self
            .latency
            .iter()
            .filter(|(r, _)| r.matches(verb, resource))
            .map(|(_, d)| *d)
            .sum();
        let mut fail = None;
        let mut cut = false;
        let mut expire_watch = false;
        if let Some(i) = self
            .failures
            .iter()
            .position(|p| p.route.matches(verb, resource))
        {
            let p = &mut self.failures[i];
            fail = p.failure.status();
            cut = fail.is_none();
            p.remaining -= 1;
            if p.remaining == 0 {
                self.failures.remove(i);
            }
        } else if verb == "watch" && self.expire_watches > 0 {
            self.expire_watches -= 1;
            expire_watch = true;
        }
        Decision {
            delay,
            fail,
            cut,
            expire_watch,
        }
    }

    /// Requests counted so far per `(verb, resource)`, summed over user agents.
    pub fn counts(&self) -> Counts {
        let mut out = Counts::new();
        for ((_, verb, resource), n) in &self.counts {
            *out.entry((verb.clone(), resource.clone())).or_insert(0) += n;
        }
        out
    }

    /// Requests counted so far per `(user agent, verb, resource)`.
    pub fn counts_by_agent(&self) -> &AgentCounts {
        &self.counts
    }

    /// Forgets the counts.
    pub fn reset_counts(&mut self) {
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_consumed_in_order_and_counted() {
        let mut f = Faults::default();
        f.fail_next(Route::resource("nodes"), 2, Failure::Unavailable);
        f.fail_next(Route::any(), 1, Failure::TooManyRequests { retry_after: 3 });
        assert_eq!(f.admit("a", "get", "nodes").fail.unwrap().code, 503);
        let t = f.admit("a", "list", "pods").fail.unwrap();
        assert_eq!((t.code, t.retry_after), (429, Some(3)));
        assert_eq!(f.admit("b", "get", "nodes").fail.unwrap().code, 503);
        assert_eq!(f.admit("", "get", "nodes").fail, None);
        assert_eq!(f.counts()[&("get".to_owned(), "nodes".to_owned())], 3);
        let key = |a: &str| (a.to_owned(), "get".to_owned(), "nodes".to_owned());
        let by = f.counts_by_agent();
        assert_eq!((by[&key("a")], by[&key("b")], by[&key("")]), (1, 1, 1));
        f.reset_counts();
        assert!(f.counts().is_empty() && f.counts_by_agent().is_empty());
    }

    #[test]
    fn latency_adds_up_per_route() {
        let mut f = Faults::default();
        f.add_latency(Route::new("get", "nodes"), Duration::from_millis(100));
        f.add_latency(Route::any(), Duration::from_millis(5));
        assert_eq!(
            f.admit("", "get", "nodes").delay,
            Duration::from_millis(105)
        );
        assert_eq!(f.admit("", "list", "nodes").delay, Duration::from_millis(5));
        f.clear();
        assert_eq!(f.admit("", "get", "nodes").delay, Duration::ZERO);
    }

    #[test]
    fn watch_expiry_only_hits_watches() {
        let mut f = Faults::default();
        f.expire_next_watches(1);
        assert!(!f.admit("", "list", "pods").expire_watch);
        assert!(f.admit("", "watch", "pods").expire_watch);
        assert!(!f.admit("", "watch", "pods").expire_watch);
    }
}
