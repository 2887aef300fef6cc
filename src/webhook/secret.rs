//! A webhook URL kept out of every log line, error message and stored row.
//!
//! Invariant: the URL text leaves this type only through [`SecretUrl::expose`] (crate-private,
//! used to build the HTTP request) — `Debug` and `Display` print `<redacted>`, and
//! [`SecretUrl::scrub`] removes the URL (and its path and query, where the credential sits) from
//! text that might quote it, such as an HTTP client error.

use std::fmt;

use crate::{Error, Result};

/// A parsed `http`/`https` URL that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    url: reqwest::Url,
}

impl SecretUrl {
    /// Parses `text`; `source` names where it came from in the error (the error never quotes the
    /// URL itself).
    pub fn parse(text: &str, source: &str) -> Result<SecretUrl> {
        let url = reqwest::Url::parse(text.trim()).map_err(|e| {
            Error::Invalid(format!(
                "webhook URL {source} is not a valid URL ({e}); expected https://…"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Invalid(format!(
                "webhook URL {source} must be an http:// or https:// URL with a host"
            )));
        }
        Ok(SecretUrl { url })
    }

    /// The URL, for sending the request only.
    pub(crate) fn expose(&self) -> &reqwest::Url {
        &self.url
    }

    /// `text` with every occurrence of the URL, its path-and-query and its query removed.
    pub fn scrub(&self, text: &str) -> String {
        let full = self.url.as_str();
        let mut out = text.replace(full, "<redacted>");
        let trimmed = full.trim_end_matches('/');
        if trimmed.len() > 8 {
            out = out.replace(trimmed, "<redacted>");
        }
        let path = self.url.path();
        if path.len() > 1 {
            out = out.replace(path, "/<redacted>");
        }
        if let Some(q) = self.url.query().filter(|q| !q.is_empty()) {
            out = out.replace(q, "<redacted>");
        }
        if let Some(p) = self.url.password().filter(|p| !p.is_empty()) {
            out = out.replace(p, "<redacted>");
        }
        out
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretUrl(<redacted>)")
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://hooks.example.com/services/T000/B000/XXXXsecretXXXX?token=abc123";

    #[test]
    fn debug_display_and_errors_never_show_the_url() {
        let u = SecretUrl::parse(URL, "from $X").unwrap();
        assert_eq!(format!("{u}"), "<redacted>");
        assert!(!format!("{u:?}").contains("secret"));
        let e = SecretUrl::parse("ftp://host/XXXXsecretXXXX", "from $X")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret") && e.contains("from $X"), "{e}");
        let e = SecretUrl::parse("not a url XXXXsecretXXXX", "from $X")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn scrub_removes_url_path_and_query() {
        let u = SecretUrl::parse(URL, "x").unwrap();
        let text = format!(
            "error sending request for url ({URL}): x; path /services/T000/B000/XXXXsecretXXXX; q token=abc123"
        );
        let s = u.scrub(&text);
        assert!(!s.contains("secret") && !s.contains("abc123"), "{s}");
    }
}
