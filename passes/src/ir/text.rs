//! The IR text format: printer and parser (stub; being written).
