//! Names from the cluster, made safe to show and to paste.
//!
//! A snapshot is outside input: a node, pod or event message can hold an
//! escape sequence that moves the cursor or recolours the screen, a newline
//! that forges a report line, or shell metacharacters that turn a suggested
//! command into another one. [`terminal`] makes text inert on a terminal;
//! [`shell`] makes a word one shell word.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character a terminal would act on written as a visible
/// escape: C0 and C1 controls (ESC, CR, newline, backspace, ...), DEL, and
/// the bidirectional overrides that reorder what is shown. Tabs are kept.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_active) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !is_active(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

fn is_active(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `word` as one POSIX shell word: as it is when it holds only characters
/// no shell treats specially (every valid Kubernetes name does), else in
/// single quotes, a quote inside written `'\''`.
pub fn shell(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:/=@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_and_unchanged() {
        for text in [
            "node-1",
            "Back-off restarting failed container\tx",
            "ünïcode ✓",
        ] {
            assert!(matches!(terminal(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_become_visible() {
        assert_eq!(terminal("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(terminal("n1\nforged: healthy\r"), "n1\\nforged: healthy\\r");
        assert_eq!(terminal("x\u{7f}\u{9b}31m"), "x\\x7f\\u{9b}31m");
        assert_eq!(terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        // A tab stays a tab, whether or not something else is escaped.
        assert_eq!(terminal("a\tb\x1b"), "a\tb\\x1b");
        // Nothing left that a terminal acts on.
        assert!(!terminal("\x07\x08\x1b]0;title\x07").chars().any(is_active));
    }

    #[test]
    fn kubernetes_names_stay_bare() {
        for word in [
            "coredns-7b98449c4-x2x9z",
            "kube-system",
            "spec.nodeName=n1",
            "app=flannel",
        ] {
            assert!(matches!(shell(word), Cow::Borrowed(_)), "{word}");
        }
    }

    #[test]
    fn anything_else_is_one_quoted_word() {
        assert_eq!(shell(""), "''");
        assert_eq!(shell("a b"), "'a b'");
        assert_eq!(shell("x; rm -rf /"), "'x; rm -rf /'");
        assert_eq!(shell("$(reboot)"), "'$(reboot)'");
        assert_eq!(shell("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_quoted_word_reads_back_as_itself_in_a_real_shell() {
        let hostile = "p'; touch /tmp/x; echo '$(id)`id`\\\n*";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell(hostile)))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
    }
}
