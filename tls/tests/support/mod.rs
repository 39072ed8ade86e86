//! What the session tests share: configurations and an in-memory socket pair.
#![allow(dead_code, unreachable_pub)]

pub mod certs;
pub mod pipe;
