//! Maps for concurrent programs: [`CowMap`], a copy-on-write map whose readers never wait.
//!
//! See [`CowMap`] for when to use it, what it costs and how it works.

mod cow;

pub use cow::{CowMap, Reader, Snapshot};
