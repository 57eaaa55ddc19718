//! The IR verifier (stub; being written).
