//! Load generator for liverec's signed control API: it signs every request itself (ACS3 or RPC
//! v1), sends `RealTimeRecordCommand` at a steady rate or as fast as the server answers, and
//! reports latency percentiles, error codes and the server's CPU.

pub mod client;
pub mod cpu;
pub mod http;
pub mod plan;
pub mod run;
pub mod sign;
pub mod stats;
