//! One way to print an error with its causes, on one line, shared by every
//! crate that reports errors to a person (journal lines, `error:` messages,
//! Node Events).
//!
//! A top-level error alone often says little ("failed to connect"); its
//! `source()` chain says why. Many errors also repeat their source in their
//! own message (`... : {source}`): a cause already at the end of the text
//! so far is not printed twice.

use std::error::Error;
use std::fmt;

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
}
