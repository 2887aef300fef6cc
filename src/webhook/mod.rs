//! Chat and JSON webhooks: alert notifications delivered in the background.
//!
//! Invariants:
//! - A webhook URL is a secret (Slack and Discord put the credential in the path). It lives only
//!   inside [`SecretUrl`], whose `Debug`/`Display` are redacted; logs, error messages, stored
//!   events and Lua values name a webhook by its [`Webhook::label`] (kind and where the URL came
//!   from, e.g. `slack webhook ($RAWRXD_SLACK_WEBHOOK)`), never by its URL or host.
//! - Delivery never blocks the caller: [`Dispatcher::send`] puts the notification on a bounded
//!   queue and returns; a full queue drops the oldest queued notification and counts it. A
//!   background thread (its own single-threaded tokio runtime) sends with a per-request timeout
//!   and retries with exponential backoff ([`DeliveryPolicy`]).
//! - Every outcome (delivered, failed after N tries, dropped) is counted ([`DeliveryStats`]) and,
//!   when the notification names a results run, stored as a `webhook` event in that run.

mod delivery;
mod dispatcher;
mod format;
mod policy;
mod secret;
mod target;

pub use delivery::{Delivery, DeliveryStats, Outcome};
pub use dispatcher::{Dispatcher, StoreTarget};
pub use format::{Format, Notification, NotifyState};
pub use policy::DeliveryPolicy;
pub use secret::SecretUrl;
pub use target::Webhook;

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
