//! The memory plan: where every intermediate value lives in one arena the back end
//! allocates once.
//!
//! Intermediates are the outputs of every node other than `Input` and `Constant` (graph
//! inputs and constants live outside the arena). Given the schedule (the graph's node order,
//! which is topological), a value is live from the step that produces it to the step of its
//! last consumer, or to the end when it is a graph output; an unused value still occupies
//! its buffer at the step that writes it. Intervals are closed: a value read at step `t`
//! conflicts with a value written at `t`, except for in-place pairs.
//!
//! In place: an elementwise op (see [`in_place_op`]) writes its output into the buffer of
//! one of its inputs when that input dies at this node, is not a graph output, and has the
//! output's shape and element size. Chains of such ops share one buffer.
//!
//! Offsets: buffers are placed greedily by decreasing size, each into the smallest gap
//! between the already placed buffers whose lifetimes overlap its own, or after them
//! (TFLite's "greedy by size"); a placement in schedule order is tried as well and the
//! smaller arena kept. Offsets and the room each buffer takes are multiples of [`ALIGN`].
//! [`check`] validates a plan independently of how it was computed.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::ir::{Graph, NodeId, Op, ValueRef};

/// Alignment of every offset in the arena, in bytes (a cache line; enough for AVX-512).
pub const ALIGN: usize = 64;

/// One in-place reuse: `node` writes `output` into the buffer of `input`, which dies there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InPlace {
    /// The elementwise node.
    pub node: NodeId,
    /// The input whose buffer is reused.
    pub input: ValueRef,
    /// The node's output written into it.
    pub output: ValueRef,
}

/// Where each intermediate value lives in the arena.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    /// Every intermediate value: (byte offset in the arena, size in bytes).
    pub offsets: HashMap<ValueRef, (usize, usize)>,
    /// Size of the arena, a multiple of [`ALIGN`].
    pub arena_bytes: usize,
    /// Sum of the sizes of all intermediates (what allocating each separately would take).
    pub total_intermediate_bytes: usize,
    /// The most bytes (rounded up to [`ALIGN`] per buffer) live at any one step: a lower
    /// bound on `arena_bytes` for this schedule and these in-place choices.
    pub live_peak_bytes: usize,
    /// The in-place reuses, in schedule order.
    pub in_place: Vec<InPlace>,
    /// The order the nodes run in (all nodes, inputs and constants included).
    pub schedule: Vec<NodeId>,
}

impl fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arena {} (peak), intermediates {} in total, {} in place",
            human_bytes(self.arena_bytes),
            human_bytes(self.total_intermediate_bytes),
            self.in_place.len()
        )
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `1.2 MiB`, `3.0 GiB`.
pub fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Whether `op` may write its output over an input of the same shape and element size:
/// it is elementwise, reading element `i` of that input only to write element `i`.
pub fn in_place_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity { .. }
            | Op::Abs { .. }
            | Op::Neg { .. }
            | Op::Exp { .. }
            | Op::Log { .. }
            | Op::Sqrt { .. }
            | Op::Reciprocal { .. }
            | Op::Floor { .. }
            | Op::Ceil { .. }
            | Op::Round { .. }
            | Op::Sign { .. }
            | Op::Sin { .. }
            | Op::Cos { .. }
            | Op::Tan { .. }
            | Op::Asin { .. }
            | Op::Acos { .. }
            | Op::Atan { .. }
            | Op::Sinh { .. }
            | Op::Cosh { .. }
            | Op::Asinh { .. }
            | Op::Acosh { .. }
            | Op::Atanh { .. }
            | Op::Tanh { .. }
            | Op::Sigmoid { .. }
            | Op::Erf { .. }
            | Op::Relu { .. }
            | Op::Softplus { .. }
            | Op::Softsign { .. }
            | Op::Mish { .. }
            | Op::HardSwish { .. }
            | Op::Not { .. }
            | Op::BitwiseNot { .. }
            | Op::IsNaN { .. }
            | Op::IsInf { .. }
            | Op::LeakyRelu { .. }
            | Op::Elu { .. }
            | Op::Selu { .. }
            | Op::Celu { .. }
            | Op::HardSigmoid { .. }
            | Op::ThresholdedRelu { .. }
            | Op::Shrink { .. }
            | Op::Gelu { .. }
            | Op::Swish { .. }
            | Op::Clip { .. }
            | Op::Cast { .. }
            | Op::CastLike { .. }
            | Op::Add { .. }
            | Op::Sub { .. }
            | Op::Mul { .. }
            | Op::Div { .. }
            | Op::Pow { .. }
            | Op::Mod { .. }
            | Op::Max { .. }
            | Op::Min { .. }
            | Op::Sum { .. }
            | Op::Mean { .. }
            | Op::And { .. }
            | Op::Or { .. }
            | Op::Xor { .. }
            | Op::Equal { .. }
            | Op::Less { .. }
            | Op::LessOrEqual { .. }
            | Op::Greater { .. }
            | Op::GreaterOrEqual { .. }
            | Op::BitShift { .. }
            | Op::BitwiseAnd { .. }
            | Op::BitwiseOr { .. }
            | Op::BitwiseXor { .. }
            | Op::PRelu { .. }
            | Op::Where { .. }
            | Op::FusedElementwise { .. }
    )
}

/// An intermediate value with its size and live interval (closed, in schedule steps).
#[derive(Clone, Copy, Debug)]
struct Interval {
    value: ValueRef,
    size: usize,
    start: usize,
    end: usize,
}

fn align_up(n: usize) -> Option<usize> {
    n.checked_add(ALIGN - 1).map(|m| m / ALIGN * ALIGN)
}

fn is_source(op: &Op) -> bool {
    matches!(op, Op::Input { .. } | Op::Constant { .. })
}

/// The size in bytes of a value; errors when its shape is not static.
fn value_bytes(g: &Graph, v: ValueRef) -> Result<usize, String> {
    let info = g.value(v);
    let node = g.node(v.node);
    let dims = info.ty.shape.as_known().ok_or_else(|| {
        format!(
            "value '{}' (output {} of node {} ({})) has type {}, not a static shape: the memory plan needs every shape known",
            info.name,
            v.port,
            node.display_name(),
            node.op.onnx_name(),
            info.ty
        )
    })?;
    dims.iter()
        .try_fold(info.ty.dtype.size(), |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            format!(
                "value '{}' of type {} is too large to address",
                info.name, info.ty
            )
        })
}

/// The live intervals of every intermediate value under `schedule`, in schedule order, and
/// each node's step. Errors when the schedule is not a topological order of all nodes or a
/// shape is not static.
fn liveness(
    g: &Graph,
    schedule: &[NodeId],
) -> Result<(Vec<Interval>, HashMap<NodeId, usize>), String> {
    let step: HashMap<NodeId, usize> = schedule.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    if step.len() != schedule.len()
        || schedule.len() != g.len()
        || !schedule.iter().all(|n| g.contains(*n))
    {
        return Err("the schedule does not list every node of the graph exactly once".to_string());
    }
    let end = schedule.len();
    let mut intervals = Vec::new();
    let mut index: HashMap<ValueRef, usize> = HashMap::new();
    for (t, &id) in schedule.iter().enumerate() {
        let node = g.node(id);
        for v in node.inputs.iter().flatten() {
            if step.get(&v.node).is_none_or(|&p| p >= t) {
                return Err(format!(
                    "the schedule runs node {} before its input '{}'",
                    node.display_name(),
                    g.value(*v).name
                ));
            }
            if let Some(&i) = index.get(v) {
                let iv: &mut Interval = &mut intervals[i];
                iv.end = iv.end.max(t);
            }
        }
        if is_source(&node.op) {
            continue;
        }
        for port in 0..node.outputs.len() as u32 {
            let value = ValueRef { node: id, port };
            index.insert(value, intervals.len());
            intervals.push(Interval {
                value,
                size: value_bytes(g, value)?,
                start: t,
                end: t,
            });
        }
    }
    for out in &g.outputs {
        if let Some(&i) = index.get(&out.value) {
            intervals[i].end = end;
        }
    }
    Ok((intervals, step))
}

/// A buffer: one or more values chained in place, sharing one place in the arena.
#[derive(Clone, Debug)]
struct Buffer {
    size: usize,
    start: usize,
    end: usize,
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Places `buffers` (aligned sizes) in the given order, each at the best-fitting gap among
/// the placed buffers whose lifetimes overlap its own. Returns offsets and the arena size.
fn place(buffers: &[Buffer], order: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = vec![0usize; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(order.len());
    let mut arena = 0;
    for &b in order {
        let buf = &buffers[b];
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| overlaps((buf.start, buf.end), (buffers[p].start, buffers[p].end)))
            .map(|&p| (offsets[p], offsets[p] + buffers[p].size))
            .collect();
        busy.sort_unstable();
        let (mut best, mut free_from): (Option<(usize, usize)>, usize) = (None, 0);
        for (lo, hi) in busy {
            if lo > free_from {
                let gap = lo - free_from;
                if gap >= buf.size && best.is_none_or(|(g, _)| gap < g) {
                    best = Some((gap, free_from));
                }
            }
            free_from = free_from.max(hi);
        }
        let at = best.map_or(free_from, |(_, at)| at);
        offsets[b] = at;
        arena = arena.max(at + buf.size);
        placed.push(b);
    }
    (offsets, arena)
}

/// Plans the arena for a verified graph whose values all have static shapes, running the
/// nodes in the graph's order.
pub fn plan(g: &Graph) -> Result<MemoryPlan, String> {
    let schedule = g.node_ids().to_vec();
    let (intervals, step) = liveness(g, &schedule)?;
    let index: HashMap<ValueRef, usize> = intervals
        .iter()
        .enumerate()
        .map(|(i, iv)| (iv.value, i))
        .collect();
    let outputs: HashSet<ValueRef> = g.outputs.iter().map(|o| o.value).collect();

    // Buffers, merging in-place chains: `buffer_of[i]` is the buffer of `intervals[i]`.
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut buffer_of = vec![usize::MAX; intervals.len()];
    let mut in_place = Vec::new();
    for (i, iv) in intervals.iter().enumerate() {
        let node = g.node(iv.value.node);
        let reuse = (iv.size > 0 && node.outputs.len() == 1 && in_place_op(&node.op))
            .then(|| {
                node.inputs.iter().flatten().find(|v| {
                    index.get(v).is_some_and(|&j| {
                        let inp = &intervals[j];
                        inp.end == step[&iv.value.node]
                            && !outputs.contains(v)
                            && inp.size == iv.size
                            && g.shape(**v) == g.shape(iv.value)
                            && g.dtype(**v).size() == g.dtype(iv.value).size()
                            && g.dtype(**v) != crate::ir::DType::String
                            && g.dtype(iv.value) != crate::ir::DType::String
                    })
                })
            })
            .flatten();
        if let Some(&input) = reuse {
            let b = buffer_of[index[&input]];
            buffers[b].end = iv.end;
            buffer_of[i] = b;
            in_place.push(InPlace {
                node: iv.value.node,
                input,
                output: iv.value,
            });
        } else {
            buffer_of[i] = buffers.len();
            let size = align_up(iv.size).ok_or("a value is too large to address")?;
            buffers.push(Buffer {
                size,
                start: iv.start,
                end: iv.end,
            });
        }
    }

    // Place non-empty buffers: greedy by size, and in schedule order; keep the smaller.
    let nonempty: Vec<usize> = (0..buffers.len())
        .filter(|&b| buffers[b].size > 0)
        .collect();
    let mut by_size = nonempty.clone();
    by_size.sort_by_key(|&b| (Reverse(buffers[b].size), buffers[b].start, b));
    let (mut offsets, mut arena) = place(&buffers, &by_size);
    let (offsets2, arena2) = place(&buffers, &nonempty);
    if arena2 < arena {
        (offsets, arena) = (offsets2, arena2);
    }

    // The lower bound: most aligned bytes live at one step.
    let mut delta = vec![0isize; schedule.len() + 2];
    for b in &buffers {
        delta[b.start] += b.size as isize;
        delta[b.end + 1] -= b.size as isize;
    }
    let (mut live, mut live_peak) = (0isize, 0isize);
    for d in delta {
        live += d;
        live_peak = live_peak.max(live);
    }

    let mut total: usize = 0;
    let mut map = HashMap::with_capacity(intervals.len());
    for (i, iv) in intervals.iter().enumerate() {
        total = total
            .checked_add(iv.size)
            .ok_or("the intermediates are too large to address")?;
        let at = if iv.size == 0 {
            0
        } else {
            offsets[buffer_of[i]]
        };
        map.insert(iv.value, (at, iv.size));
    }
    Ok(MemoryPlan {
        offsets: map,
        arena_bytes: arena,
        total_intermediate_bytes: total,
        live_peak_bytes: live_peak as usize,
        in_place,
        schedule,
    })
}

/// Validates a plan against its graph without trusting how it was made: the schedule is a
/// topological order of all nodes; every intermediate (and nothing else) has an offset, of
/// its size, aligned to [`ALIGN`] and within `arena_bytes`; each in-place pair is legal
/// (elementwise op, input dying at that node, not a graph output, same place and size); and
/// no two values live at the same step share a byte, except an in-place pair at its node.
pub fn check(plan: &MemoryPlan, g: &Graph) -> Result<(), String> {
    let (intervals, step) = liveness(g, &plan.schedule)?;
    let name = |v: ValueRef| format!("'{}'", g.value(v).name);
    if plan.offsets.len() != intervals.len() {
        return Err(format!(
            "{} values have offsets but there are {} intermediates",
            plan.offsets.len(),
            intervals.len()
        ));
    }
    let mut total = 0usize;
    let mut places = Vec::with_capacity(intervals.len());
    for iv in &intervals {
        let &(at, size) = plan
            .offsets
            .get(&iv.value)
            .ok_or_else(|| format!("intermediate {} has no offset", name(iv.value)))?;
        if size != iv.size {
            return Err(format!(
                "{} is planned with {size} bytes but has {}",
                name(iv.value),
                iv.size
            ));
        }
        if at % ALIGN != 0 {
            return Err(format!(
                "{} is at offset {at}, not a multiple of {ALIGN}",
                name(iv.value)
            ));
        }
        if at.checked_add(size).is_none_or(|e| e > plan.arena_bytes) {
            return Err(format!(
                "{} at {at}+{size} overruns the {}-byte arena",
                name(iv.value),
                plan.arena_bytes
            ));
        }
        total += size;
        places.push((at, size));
    }
    if total != plan.total_intermediate_bytes {
        return Err(format!(
            "the intermediates total {total} bytes, not {}",
            plan.total_intermediate_bytes
        ));
    }
    if plan.arena_bytes % ALIGN != 0 {
        return Err(format!(
            "the arena size {} is not a multiple of {ALIGN}",
            plan.arena_bytes
        ));
    }

    let index: HashMap<ValueRef, usize> = intervals
        .iter()
        .enumerate()
        .map(|(i, iv)| (iv.value, i))
        .collect();
    let outputs: HashSet<ValueRef> = g.outputs.iter().map(|o| o.value).collect();
    let mut pairs = HashSet::new();
    for p in &plan.in_place {
        let node = g.node(p.node);
        let legal = p.output.node == p.node
            && in_place_op(&node.op)
            && node.inputs.contains(&Some(p.input))
            && !outputs.contains(&p.input)
            && index
                .get(&p.input)
                .is_some_and(|&i| intervals[i].end == step[&p.node])
            && index.contains_key(&p.output)
            && g.shape(p.input) == g.shape(p.output)
            && plan.offsets.get(&p.input) == plan.offsets.get(&p.output);
        if !legal {
            return Err(format!(
                "illegal in-place reuse of {} by {} at node {}",
                name(p.input),
                name(p.output),
                node.display_name()
            ));
        }
        pairs.insert((index[&p.input], index[&p.output]));
    }

    // Sweep over values by offset: only values whose byte ranges overlap are compared.
    let mut by_offset: Vec<usize> = (0..intervals.len()).filter(|&i| places[i].1 > 0).collect();
    by_offset.sort_by_key(|&i| places[i]);
    for (k, &i) in by_offset.iter().enumerate() {
        let (at, size) = places[i];
        for &j in &by_offset[k + 1..] {
            if places[j].0 >= at + size {
                break;
            }
            let (a, b) = (&intervals[i], &intervals[j]);
            if overlaps((a.start, a.end), (b.start, b.end))
                && !pairs.contains(&(i, j))
                && !pairs.contains(&(j, i))
            {
                return Err(format!(
                    "{} (bytes {at}..{}, steps {}..={}) and {} (bytes {}..{}, steps {}..={}) overlap",
                    name(a.value),
                    at + size,
                    a.start,
                    a.end,
                    name(b.value),
                    places[j].0,
                    places[j].0 + places[j].1,
                    b.start,
                    b.end
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
