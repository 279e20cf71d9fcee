//! The OCI distribution API, client side: credentials, authentication, an HTTP client with retries, and pushing.

pub mod auth;
pub mod client;
pub mod credentials;
mod exchange;
mod limits;
mod origin;
pub mod push;
pub mod referrers;
mod retry;
mod tls;
mod transfer;

pub use client::{ClientOptions, RegistryClient};
pub use credentials::Credentials;
pub use push::PushReport;
