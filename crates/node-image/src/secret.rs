//! Values that may carry a password in a URL's userinfo (a proxy's
//! `http://USER:PASSWORD@HOST:PORT`, a mirror someone wrote with
//! credentials), and the one rule by which everything that prints them,
//! plans, `-v` lines, errors and validation messages, hides the password.
//!
//! Hand-written rather than the `url` crate's `set_password`: the values
//! that matter most are those that failed validation, which a URL parser
//! refuses to read at all, and the rule is a dozen lines.

use std::borrow::Cow;
use std::fmt;

/// What a hidden password is shown as.
const HIDDEN: &str = "***";

/// `text` with the password of a URL's userinfo replaced by `***`:
/// `http://alice:PW@proxy:3128` shows as `http://alice:***@proxy:3128`; a
/// userinfo without `:` (a token) is hidden whole: `https://***@host/`.
///
/// The userinfo runs from after the scheme's `://` (or from the start, when
/// no scheme comes before it: `alice:PW@proxy:3128`) to the *last* `@`, not
/// to the first `/`: text that failed validation may hold a password with a
/// `/` or an `@` in it. So an `@` in a path hides more than needed, never
/// less; text without an `@` is returned as it is.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Some(at) = text.rfind('@') else {
        return Cow::Borrowed(text);
    };
    let start = text[..at].find("://").map_or(0, |i| i + "://".len());
    let userinfo = &text[start..at];
    if userinfo.is_empty() {
        return Cow::Borrowed(text);
    }
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:"),
        None => String::new(),
    };
    Cow::Owned(format!("{}{user}{HIDDEN}{}", &text[..start], &text[at..]))
}

/// A value that may hold a password in a URL's userinfo. `Display` and
/// `Debug` show it through [`redact`], so formatting it anywhere (a plan, an
/// error, a `{:?}` of a struct that holds it) never shows the password;
/// [`Redacted::expose`] is the value itself, for the one place that passes
/// it on (a command's environment).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(value: impl Into<String>) -> Redacted {
        Redacted(value.into())
    }

    /// The value, password included: pass it on, never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redacted({:?})", redact(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_the_rest_is_kept() {
        for (text, shown) in [
            ("http://alice:PW@proxy:3128", "http://alice:***@proxy:3128"),
            (
                "https://alice:PW@proxy.example:3128/",
                "https://alice:***@proxy.example:3128/",
            ),
            ("https://TOKEN@github.com/o/r", "https://***@github.com/o/r"),
            // A password with ':', '@' or '/' in it, as someone may write it.
            ("http://alice:p:w@proxy:1", "http://alice:***@proxy:1"),
            ("http://alice:p@w@proxy:1", "http://alice:***@proxy:1"),
            ("http://alice:p/w@proxy:1", "http://alice:***@proxy:1"),
            // No scheme: the userinfo starts at the start.
            ("alice:PW@proxy:3128", "alice:***@proxy:3128"),
            ("mirror.example.com", "mirror.example.com"),
            // An '@' in a path hides more than needed, never less.
            ("https://host/a@b/", "https://***@b/"),
            ("http://proxy:3128", "http://proxy:3128"),
            ("http://@proxy:3128", "http://@proxy:3128"),
            ("", ""),
        ] {
            assert_eq!(redact(text), shown, "{text}");
            assert!(!redact(text).contains("PW"), "{text}");
        }
        let r = Redacted::new("http://alice:PW@proxy:3128");
        assert_eq!(r.to_string(), "http://alice:***@proxy:3128");
        assert_eq!(
            format!("{r:?}"),
            "Redacted(\"http://alice:***@proxy:3128\")"
        );
        assert_eq!(
            format!("{:?}", Some(&r)),
            "Some(Redacted(\"http://alice:***@proxy:3128\"))"
        );
        assert_eq!(r.expose(), "http://alice:PW@proxy:3128");
    }
}
