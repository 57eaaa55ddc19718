//! Planning after optimization: decisions the back end executes verbatim. For now this is
//! the memory plan ([`memory`]): a schedule, the liveness of every intermediate value and
//! its offset in one preallocated arena.

pub mod memory;

pub use memory::{check, plan, InPlace, MemoryPlan, ALIGN};
