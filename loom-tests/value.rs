#![cfg(feature = "loom")]
