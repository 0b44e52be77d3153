//! Record callbacks and the on-demand recording query (API.md "Record callbacks").
//!
//! - [`sign`]: Alibaba's `ALI-LIVE-TIMESTAMP` / `ALI-LIVE-SIGNATURE` headers (pure);
//! - [`url_check`]: which NotifyUrl / OnDemandUrl values are accepted (pure);
//! - [`events`]: event names and callback bodies (pure);
//! - [`schedule`]: when a failed callback is tried again (pure);
//! - [`deliver`]: the dispatcher that delivers the outbox;
//! - [`on_demand`]: the on-demand question (OnDemand = 1) and its answers.

pub mod deliver;
pub mod events;
pub mod metrics;
pub mod on_demand;
pub mod schedule;
pub mod sign;
pub mod url_check;
