//! A configured webhook: its payload format, its secret URL and the label logs use for it.

use std::fmt;

use super::{Format, SecretUrl};
use crate::{Error, Result};

/// One webhook endpoint. `Debug` shows the label, never the URL.
#[derive(Clone)]
pub struct Webhook {
    format: Format,
    url: SecretUrl,
    label: String,
}

impl Webhook {
    /// A webhook whose URL was given directly (config or script); `name` overrides the label.
    pub fn new(format: Format, url: &str, name: Option<&str>) -> Result<Webhook> {
        let label = label(format, name, "configured URL");
        let url = SecretUrl::parse(url, &format!("of {label}"))?;
        Ok(Webhook { format, url, label })
    }

    /// A webhook whose URL is in the environment variable `var`.
    pub fn from_env(format: Format, var: &str, name: Option<&str>) -> Result<Webhook> {
        let label = label(format, name, &format!("${var}"));
        let url = match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => v,
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{label}: environment variable {var} is empty"
                )))
            }
            Err(_) => {
                return Err(Error::Invalid(format!(
                    "{label}: environment variable {var} is not set"
                )))
            }
        };
        let url = SecretUrl::parse(&url, &format!("in ${var}"))?;
        Ok(Webhook { format, url, label })
    }

    /// The payload format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The URL (redacted when printed).
    pub fn url(&self) -> &SecretUrl {
        &self.url
    }

    /// How logs and stored events name this webhook, e.g. `slack webhook ($RAWRXD_SLACK_WEBHOOK)`.
    pub fn label(&self) -> &str {
        &self.label
    }
}

fn label(format: Format, name: Option<&str>, source: &str) -> String {
    match name {
        Some(n) => format!("{format} webhook '{n}' ({source})"),
        None => format!("{format} webhook ({source})"),
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("format", &self.format)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_kind_and_source_only() {
        let w = Webhook::new(
            Format::Discord,
            "https://discord.test/api/webhooks/1/SECRET",
            None,
        )
        .unwrap();
        assert_eq!(w.label(), "discord webhook (configured URL)");
        assert!(!format!("{w:?}").contains("SECRET"));
        let e = Webhook::from_env(Format::Slack, "RAWRXD_TEST_UNSET_WEBHOOK_VAR", Some("ops"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "slack webhook 'ops' ($RAWRXD_TEST_UNSET_WEBHOOK_VAR): environment variable \
             RAWRXD_TEST_UNSET_WEBHOOK_VAR is not set"
        );
    }
}
