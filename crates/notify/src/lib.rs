//! Record callbacks and the on-demand recording query (API.md "Record callbacks").
//!
//! - [`sign`]: Alibaba's `ALI-LIVE-TIMESTAMP` / `ALI-LIVE-SIGNATURE` headers (pure);
//! - [`url_check`]: which NotifyUrl / OnDemandUrl values are accepted (pure).

pub mod sign;
pub mod url_check;
