//! Alerts over HTTP, both ways: notifications out to webhooks (generic
//! JSON, Slack-compatible, ntfy), and the alerts a Prometheus fires, read
//! in so a rollout waits while something is wrong.
//!
//! Key design decision: the payloads and the parsing are pure functions
//! of plain values (tested without a network); one small HTTP(S) client
//! ([`http`], hyper with rustls and the system's roots) carries them,
//! every request bounded in time. Secrets (a webhook URL with a token in
//! it, a bearer token) are read from a file or the environment when a
//! request is made and never printed.

pub mod http;
pub mod prometheus;
pub mod webhook;
