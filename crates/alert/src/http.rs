//! The HTTP(S) client alerts go through: hyper's pooled client over
//! rustls with the system's root certificates, plain `http://` allowed
//! (a Prometheus or an ntfy inside the cluster).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The client.
pub type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for `http://` and `https://` URLs (fails only when the
/// system has no root certificates at all).
pub fn client() -> std::io::Result<Client> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}

/// Parses `url` as an `http(s)` URI.
pub fn uri(url: &str) -> Option<hyper::Uri> {
    let uri: hyper::Uri = url.parse().ok()?;
    matches!(uri.scheme_str(), Some("http" | "https"))
        .then_some(uri)
        .filter(|u| u.host().is_some())
}

/// Why there is no answer. Every case may pass: a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be sent (DNS, connection refused, TLS).
    #[error("the request could not be sent")]
    Send(#[source] hyper_util::client::legacy::Error),
    /// The answer broke off.
    #[error("the answer could not be read")]
    Read(#[source] hyper::Error),
    /// Nothing came back in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Sends `request` and reads the whole answer within `timeout`: its
/// status and body, or why there is none.
pub async fn exchange(
    client: &Client,
    request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(hyper::StatusCode, Bytes), Error> {
    let work = async {
        let response = client.request(request).await.map_err(Error::Send)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(Error::Read)?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout(timeout))?
}
