//! Authentication by bearer token, when [`crate::Options::rbac`] is on.
//!
//! Tokens are issued by kubesim itself: a kubeconfig user's static token
//! ([`crate::KubeSim::user_token`], like the apiserver's token file), a
//! ServiceAccount's ([`crate::KubeSim::service_account_token`], like a
//! TokenRequest), or the token controller's, written into a Secret of type
//! `kubernetes.io/service-account-token` when it is created. A
//! ServiceAccount's token stops working when the ServiceAccount (or the
//! Secret holding it) is deleted, as upstream.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use base64::Engine;
use serde_json::Value;

use crate::rbac::User;

/// The Secret type the token controller fills in.
pub const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";

/// The annotation naming a token Secret's ServiceAccount.
pub const SERVICE_ACCOUNT_NAME: &str = "kubernetes.io/service-account.name";

/// Whom a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A user of a kubeconfig.
    User(User),
    /// A ServiceAccount, through a token Secret when `secret` is set.
    ServiceAccount {
        /// The ServiceAccount's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The token Secret's name, for a token the controller wrote.
        secret: Option<String>,
    },
}

/// Every token issued, and what it stands for.
#[derive(Debug)]
pub struct Tokens {
    issued: HashMap<String, Holder>,
    seed: RandomState,
    count: u64,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            issued: HashMap::new(),
            seed: RandomState::new(),
            count: 0,
        }
    }
}

impl Tokens {
    /// A new token for `holder`.
    pub fn issue(&mut self, holder: Holder) -> String {
        self.count += 1;
        let (a, b) = (
            self.seed.hash_one(("a", self.count)),
            self.seed.hash_one(("b", self.count)),
        );
        let token = format!("kubesim.{a:016x}{b:016x}");
        self.issued.insert(token.clone(), holder);
        token
    }

    /// Registers `token` for `holder` (a fixed, known token).
    pub fn insert(&mut self, token: &str, holder: Holder) {
        self.issued.insert(token.to_owned(), holder);
    }

    /// Whom `token` was issued to.
    pub fn holder(&self, token: &str) -> Option<&Holder> {
        self.issued.get(token)
    }

    /// The token controller: a Secret of type
    /// `kubernetes.io/service-account-token` naming its ServiceAccount gets
    /// `data.token` and `data.namespace` (and `data["ca.crt"]` when the
    /// server has a CA) unless it has a token already.
    pub fn fill_secret(&mut self, namespace: &str, secret: &mut Value, ca_pem: Option<&str>) {
        if secret.get("type").and_then(Value::as_str) != Some(SERVICE_ACCOUNT_TOKEN) {
            return;
        }
        let Some(account) = secret
            .pointer(&format!(
                "/metadata/annotations/{}",
                SERVICE_ACCOUNT_NAME.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        if secret.pointer("/data/token").is_some() {
            return;
        }
        let name = secret
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let token = self.issue(Holder::ServiceAccount {
            namespace: namespace.to_owned(),
            name: account,
            secret: name,
        });
        let Some(object) = secret.as_object_mut() else {
            return;
        };
        let data = object
            .entry("data")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !data.is_object() {
            *data = Value::Object(serde_json::Map::new());
        }
        let encode = |s: &str| Value::from(base64::engine::general_purpose::STANDARD.encode(s));
        data["token"] = encode(&token);
        data["namespace"] = encode(namespace);
        if let Some(ca) = ca_pem {
            data["ca.crt"] = encode(ca);
        }
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_distinct_and_name_their_holder() {
        let mut tokens = Tokens::default();
        let alice = User::new("alice", &["ops"]);
        let a = tokens.issue(Holder::User(alice.clone()));
        let b = tokens.issue(Holder::User(alice.clone()));
        assert_ne!(a, b);
        assert_eq!(tokens.holder(&a), Some(&Holder::User(alice)));
        assert_eq!(tokens.holder("kubesim.0"), None);
    }

    #[test]
    fn the_token_controller_fills_only_service_account_token_secrets() {
        let mut tokens = Tokens::default();
        let mut secret = json!({
            "type": SERVICE_ACCOUNT_TOKEN,
            "metadata": {"name": "t", "annotations": {SERVICE_ACCOUNT_NAME: "agent"}},
        });
        tokens.fill_secret("rebootguard", &mut secret, Some("CA"));
        let decode = |v: &Value| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        let token = decode(&secret["data"]["token"]);
        assert_eq!(decode(&secret["data"]["namespace"]), "rebootguard");
        assert_eq!(decode(&secret["data"]["ca.crt"]), "CA");
        assert_eq!(
            tokens.holder(&token),
            Some(&Holder::ServiceAccount {
                namespace: "rebootguard".into(),
                name: "agent".into(),
                secret: Some("t".into()),
            })
        );
        // Filled once; other Secrets untouched.
        let before = secret.clone();
        tokens.fill_secret("rebootguard", &mut secret, None);
        assert_eq!(secret, before);
        let mut opaque = json!({"type": "Opaque", "metadata": {"name": "o"}});
        tokens.fill_secret("x", &mut opaque, None);
        assert!(opaque.get("data").is_none());
        let mut unnamed = json!({"type": SERVICE_ACCOUNT_TOKEN, "metadata": {"name": "u"}});
        tokens.fill_secret("x", &mut unnamed, None);
        assert!(unnamed.get("data").is_none());
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
