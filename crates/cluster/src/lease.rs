//! A `coordination.k8s.io/v1` Lease as a cluster-wide lock: at most one
//! holder, taken only when free or expired, renewed while held, released
//! on the way out. A holder that vanished never blocks for longer than the
//! lease's duration: after `renewTime + leaseDurationSeconds` anyone may
//! take it. (kured's lock is an annotation that a deleted node holds
//! forever; this is the lesson.)
//!
//! [`decide`] is pure (the lease as read, who we are, the time); [`Lock`]
//! carries the decision out with the lease's `resourceVersion` as the
//! precondition, so two contenders that read the same free lease cannot
//! both take it: one gets 409 Conflict, reads again and sees it held.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::node::{Error, bounded};

/// The lease as far as locking is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// `spec.holderIdentity` (empty or absent: free).
    pub holder: Option<String>,
    /// `spec.renewTime` (else `acquireTime`).
    pub renewed: Option<jiff::Timestamp>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
}

impl State {
    /// When a holder that stops renewing loses it.
    pub fn expires(&self) -> Option<jiff::Timestamp> {
        let ttl = jiff::SignedDuration::try_from(self.duration).ok()?;
        self.renewed?.checked_add(ttl).ok()
    }
}

/// What to do about the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No lease yet: create it, held by us.
    Create,
    /// Free, or its holder stopped renewing: take it.
    Take {
        /// The previous holder whose lease expired, if any.
        from: Option<String>,
    },
    /// Ours already: renew it.
    Renew,
    /// Someone else holds it.
    Busy {
        /// Who.
        holder: String,
        /// Until when, unless renewed.
        until: Option<jiff::Timestamp>,
    },
}

/// Decides from the lease as read (`None`: absent).
pub fn decide(current: Option<&State>, me: &str, now: jiff::Timestamp) -> Decision {
    let Some(lease) = current else {
        return Decision::Create;
    };
    match lease.holder.as_deref().filter(|h| !h.is_empty()) {
        None => Decision::Take { from: None },
        Some(holder) if holder == me => Decision::Renew,
        Some(holder) => match lease.expires() {
            // A lease never renewed (no time) cannot be trusted to expire:
            // treat it as expired, as client-go does with a zero renewTime.
            None => Decision::Take {
                from: Some(holder.to_owned()),
            },
            Some(until) if until <= now => Decision::Take {
                from: Some(holder.to_owned()),
            },
            Some(until) => Decision::Busy {
                holder: holder.to_owned(),
                until: Some(until),
            },
        },
    }
}

/// The lock's answer to an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// We hold it (taken, created or renewed).
    Held {
        /// The previous holder whose lease had expired, if we took it over.
        took_from: Option<String>,
    },
    /// Someone else does.
    Busy {
        /// Who.
        holder: String,
        /// Until when, unless renewed.
        until: Option<jiff::Timestamp>,
    },
}

/// One named lease used as a lock by one identity.
#[derive(Clone)]
pub struct Lock {
    api: Api<Lease>,
    name: String,
    identity: String,
    ttl: Duration,
    bound: Duration,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Lock {
    /// The lease `namespace/name`, held as `identity` for `ttl` per renewal;
    /// each API call bounded by `bound`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        ttl: Duration,
        bound: Duration,
    ) -> Lock {
        Lock {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            ttl,
            bound,
        }
    }

    /// Takes the lease when free or expired, renews it when ours.
    pub async fn acquire(&self) -> Result<Outcome, Error> {
        // One retry: a 409 means another contender wrote in between; the
        // second read sees who.
        let mut last = None;
        for _ in 0..2 {
            let current = self.read().await?;
            let now = jiff::Timestamp::now();
            let state = current.as_ref().map(state);
            let took_from = match decide(state.as_ref(), &self.identity, now) {
                Decision::Busy { holder, until } => return Ok(Outcome::Busy { holder, until }),
                Decision::Take { from } => from,
                Decision::Create | Decision::Renew => None,
            };
            let renewing = state
                .as_ref()
                .and_then(|s| s.holder.as_deref())
                .is_some_and(|h| h == self.identity);
            match self.write(current, now, renewing).await {
                Ok(()) => return Ok(Outcome::Held { took_from }),
                Err(e) if is_conflict(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::Timeout(self.bound)))
    }

    /// Gives the lease up when we hold it (the next contender need not wait
    /// for it to expire). Releasing a lease held by someone else does nothing.
    pub async fn release(&self) -> Result<(), Error> {
        let Some(mut lease) = self.read().await? else {
            return Ok(());
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.identity.as_str());
        if !ours {
            return Ok(());
        }
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = None;
            spec.acquire_time = None;
        }
        let what = format!("lease {}", self.name);
        match bounded(
            self.bound,
            what,
            self.api.replace(&self.name, &PostParams::default(), &lease),
        )
        .await
        {
            // Someone renewed or took it meanwhile: not ours to clear.
            Err(e) if is_conflict(&e) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Who holds the lease now, if anyone (and it has not expired).
    pub async fn holder(&self) -> Result<Option<String>, Error> {
        let current = self.read().await?;
        let state = current.as_ref().map(state);
        Ok(
            match decide(state.as_ref(), &self.identity, jiff::Timestamp::now()) {
                Decision::Renew => Some(self.identity.clone()),
                Decision::Busy { holder, .. } => Some(holder),
                Decision::Create | Decision::Take { .. } => None,
            },
        )
    }

    async fn read(&self) -> Result<Option<Lease>, Error> {
        bounded(
            self.bound,
            format!("lease {}", self.name),
            self.api.get_opt(&self.name),
        )
        .await
    }

    async fn write(
        &self,
        current: Option<Lease>,
        now: jiff::Timestamp,
        renewing: bool,
    ) -> Result<(), Error> {
        let seconds = i32::try_from(self.ttl.as_secs().max(1)).unwrap_or(i32::MAX);
        let what = format!("lease {}", self.name);
        match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                bounded(
                    self.bound,
                    what,
                    self.api.create(&PostParams::default(), &lease),
                )
                .await
                .map(drop)
            }
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if !renewing {
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(MicroTime(now));
                // `replace` sends the read resourceVersion: a write in
                // between makes this a 409, never a double holder.
                bounded(
                    self.bound,
                    what,
                    self.api.replace(&self.name, &PostParams::default(), &lease),
                )
                .await
                .map(drop)
            }
        }
    }
}

/// The lease as far as locking is concerned.
pub fn state(lease: &Lease) -> State {
    let spec = lease.spec.as_ref();
    State {
        holder: spec.and_then(|s| s.holder_identity.clone()),
        renewed: spec
            .and_then(|s| s.renew_time.as_ref().or(s.acquire_time.as_ref()))
            .map(|t| t.0),
        duration: Duration::from_secs(
            spec.and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
        ),
    }
}

/// A 409 (write conflict, or create of an existing object).
pub fn is_conflict(error: &Error) -> bool {
    matches!(error, Error::Api { cause: kube::Error::Api(status), .. } if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("time")
    }

    fn held(holder: &str, renewed: &str) -> State {
        State {
            holder: Some(holder.into()),
            renewed: Some(at(renewed)),
            duration: Duration::from_secs(60),
        }
    }

    #[test]
    fn free_expired_ours_and_busy() {
        let now = at("2026-01-31T07:00:30Z");
        assert_eq!(decide(None, "boromir", now), Decision::Create);
        let free = State {
            holder: None,
            renewed: None,
            duration: Duration::from_secs(60),
        };
        assert_eq!(
            decide(Some(&free), "boromir", now),
            Decision::Take { from: None }
        );
        let empty = State {
            holder: Some(String::new()),
            ..free.clone()
        };
        assert_eq!(
            decide(Some(&empty), "boromir", now),
            Decision::Take { from: None }
        );
        assert_eq!(
            decide(
                Some(&held("boromir", "2026-01-31T07:00:00Z")),
                "boromir",
                now
            ),
            Decision::Renew
        );
        assert_eq!(
            decide(
                Some(&held("theoden", "2026-01-31T07:00:00Z")),
                "boromir",
                now
            ),
            Decision::Busy {
                holder: "theoden".into(),
                until: Some(at("2026-01-31T07:01:00Z"))
            }
        );
    }

    #[test]
    fn a_vanished_holder_blocks_only_until_its_lease_expires() {
        let lease = held("theoden", "2026-01-31T07:00:00Z");
        assert!(matches!(
            decide(Some(&lease), "boromir", at("2026-01-31T07:00:59Z")),
            Decision::Busy { .. }
        ));
        assert_eq!(
            decide(Some(&lease), "boromir", at("2026-01-31T07:01:00Z")),
            Decision::Take {
                from: Some("theoden".into())
            }
        );
        let never_renewed = State {
            renewed: None,
            ..lease
        };
        assert_eq!(
            decide(Some(&never_renewed), "boromir", at("2026-01-31T07:00:01Z")),
            Decision::Take {
                from: Some("theoden".into())
            }
        );
    }
}
