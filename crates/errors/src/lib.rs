//! One way to print an error with its causes, on one line, shared by every
//! crate that reports errors to a person (journal lines, `error:` messages,
//! Node Events).
//!
//! A top-level error alone often says little ("failed to connect"); its
//! `source()` chain says why. Many errors also repeat their source in their
//! own message (`... : {source}`): a cause already at the end of the text
//! so far is not printed twice.
//!
//! [`Failure`] carries an error across a crate boundary as data: the pure
//! state machines take what an adapter saw (a refused request, a verify run
//! that could not start) as input, and need it cloneable and comparable
//! without losing its causes or whether trying again can help.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// `error` and its causes, `a: b: c`.
pub fn chain(error: &dyn Error) -> String {
    Chain(error).to_string()
}

/// Displays an error and its causes, `a: b: c`, for `format!` and tracing
/// fields without an intermediate `String`.
pub struct Chain<'a>(pub &'a dyn Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let said = cause.to_string();
            if !said.is_empty() && !text.ends_with(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}

/// An error as a state machine's input: cloneable, compared by what it
/// says, its causes kept (its [`Error::source`] is the error's own), and
/// whether a retry can help.
#[derive(Clone)]
pub struct Failure {
    error: Arc<dyn Error + Send + Sync + 'static>,
    retryable: bool,
}

impl Failure {
    /// `error`, and whether trying again can succeed.
    pub fn new(error: impl Error + Send + Sync + 'static, retryable: bool) -> Failure {
        Failure {
            error: Arc::new(error),
            retryable,
        }
    }

    /// `error`, retryable as `is_retryable` judges it
    /// (`Failure::judged(e, Error::is_retryable)`).
    pub fn judged<E: Error + Send + Sync + 'static>(
        error: E,
        is_retryable: impl FnOnce(&E) -> bool,
    ) -> Failure {
        let retryable = is_retryable(&error);
        Failure::new(error, retryable)
    }

    /// A failure that is a verdict in words, with no error value behind it
    /// (a check that failed, a node verify did not reach).
    pub fn said(text: impl Into<String>, retryable: bool) -> Failure {
        Failure::new(Said(text.into()), retryable)
    }

    /// Whether trying again can succeed: `false` for a refusal on principle
    /// (RBAC, a rejected request, a wrong setup).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("error", &chain(self))
            .field("retryable", &self.retryable)
            .finish()
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

/// Equal when they say the same (causes included) and agree on retrying.
impl PartialEq for Failure {
    fn eq(&self, other: &Failure) -> bool {
        self.retryable == other.retryable && chain(self) == chain(other)
    }
}

impl Eq for Failure {}

#[derive(Debug)]
struct Said(String);

impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Said {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn causes_follow_on_one_line() {
        let e = E(
            "cannot read the Node",
            Some(Box::new(E(
                "client error (Connect)",
                Some(Box::new(E("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            chain(&e),
            "cannot read the Node: client error (Connect): Connection refused (os error 111)"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = E(
            "failed to write subnet.env: Read-only file system (os error 30)",
            Some(Box::new(E(
                "Read-only file system (os error 30)",
                Some(Box::new(E("", None))),
            ))),
        );
        assert_eq!(
            chain(&e),
            "failed to write subnet.env: Read-only file system (os error 30)"
        );
    }

    #[test]
    fn a_lone_error_is_its_message() {
        assert_eq!(chain(&E("timed out", None)), "timed out");
        assert_eq!(format!("{}", Chain(&E("x", None))), "x");
    }

    #[test]
    fn a_failure_keeps_the_causes_once_and_compares_by_them() {
        let inner = E(
            "cannot list pods",
            Some(Box::new(E("connection refused", None))),
        );
        let failure = Failure::new(inner, true);
        assert_eq!(failure.to_string(), "cannot list pods");
        assert_eq!(chain(&failure), "cannot list pods: connection refused");
        assert!(failure.is_retryable());
        let copy = failure.clone();
        assert_eq!(copy, failure);
        assert_ne!(
            Failure::said("cannot list pods: connection refused", false),
            failure,
            "a retry's hope is part of a failure"
        );
        assert_eq!(
            Failure::said("cannot list pods: connection refused", true),
            failure
        );
        assert!(format!("{failure:?}").contains("connection refused"));
        let refused = Failure::judged(E("forbidden", None), |e| e.0 != "forbidden");
        assert!(!refused.is_retryable());
    }
}
