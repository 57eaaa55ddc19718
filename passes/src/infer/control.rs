//! Rules for the subgraph ops `If`, `Loop` and `Scan`: their bodies are inferred on a copy
//! seeded with the types flowing in, and the outputs are read off the body's outputs.

use super::dims::*;
use super::{infer_graph, Fact};
use crate::ir::{DType, Dim, Graph, Op, Shape, TypeInfo};

type Ins<'a, 'b> = &'b [Option<Fact<'a>>];

/// Infers a copy of `body` with its inputs refined by `seeds` (in signature order), and
/// returns the types of its outputs.
pub fn infer_body(body: &Graph, seeds: &[Option<TypeInfo>], what: &str) -> Res<Vec<TypeInfo>> {
    infer_body_forced(body, seeds, what, &[]).map(|(out, _)| out)
}

/// [`infer_body`], where the inputs flagged in `forced` take their seed's type outright
/// instead of refining the declared one with it. Also returns, per input, whether its
/// declared type disagreed with its seed.
fn infer_body_forced(
    body: &Graph,
    seeds: &[Option<TypeInfo>],
    what: &str,
    forced: &[bool],
) -> Res<(Vec<TypeInfo>, Vec<bool>)> {
    let mut g = body.clone();
    if seeds.len() != g.inputs.len() {
        return Err(format!(
            "the {what} takes {} inputs but is given {}",
            g.inputs.len(),
            seeds.len()
        ));
    }
    let mut conflicts = vec![false; seeds.len()];
    for (i, (&id, seed)) in g.inputs.clone().iter().zip(seeds).enumerate() {
        let Some(seed) = seed else { continue };
        let declared = &mut g.node_mut(id).outputs[0].ty;
        // A declared type that disagrees with what flows in (a loop-carried value that
        // changes shape) is generalized rather than rejected.
        let shape = match unify_shape(&declared.shape, &seed.shape) {
            _ if forced.get(i).copied().unwrap_or(false) => seed.shape.clone(),
            Some(s) => s,
            None => {
                conflicts[i] = true;
                join_shape(&declared.shape, &seed.shape)
            }
        };
        *declared = ty(seed.dtype, shape);
    }
    if conflicts.iter().chain(forced).any(|&c| c) {
        // The shapes recorded inside the body were inferred from the declared input types,
        // which do not hold: infer them afresh rather than keep them as declarations.
        for id in g.node_ids().to_vec() {
            if !matches!(g.node(id).op, crate::ir::Op::Input { .. }) {
                for o in &mut g.node_mut(id).outputs {
                    o.ty.shape = Shape::Unranked;
                }
            }
        }
    }
    infer_graph(&mut g).map_err(|e| format!("in the {what}: {e}"))?;
    Ok((
        g.outputs.iter().map(|o| g.ty(o.value).clone()).collect(),
        conflicts,
    ))
}

/// A type that may be either of two.
fn join_ty(a: &TypeInfo, b: &TypeInfo) -> Res<TypeInfo> {
    if a.dtype != b.dtype {
        return Err(format!("types {a} and {b} differ in element type"));
    }
    Ok(ty(a.dtype, join_shape(&a.shape, &b.shape)))
}

fn input_types(ins: Ins<'_, '_>) -> Vec<Option<TypeInfo>> {
    ins.iter().map(|f| f.map(|f| f.ty.clone())).collect()
}

/// `If(cond, captures...)`: the taken branch's outputs when `cond` is known, else the join
/// of both branches.
pub fn if_(ins: Ins<'_, '_>, then_b: &Graph, else_b: &Graph, n: usize) -> Res<Vec<TypeInfo>> {
    let cond = req(ins, 0)?;
    let seeds = input_types(&ins[1..]);
    let known = cond
        .value
        .filter(|t| t.len() == 1)
        .map(|t| t.to_f64_vec()[0] != 0.0);
    let pick = |g: &Graph, what: &str| -> Res<Vec<TypeInfo>> {
        let out = infer_body(g, &seeds, what)?;
        if out.len() != n {
            return Err(format!(
                "the {what} has {} outputs, the node {n}",
                out.len()
            ));
        }
        Ok(out)
    };
    match known {
        Some(true) => pick(then_b, "then branch"),
        Some(false) => pick(else_b, "else branch"),
        // With the condition unknown, a branch that cannot be inferred may be dead code
        // (e.g. a 2-D case split of a 3-D size): the other branch decides.
        None => match (pick(then_b, "then branch"), pick(else_b, "else branch")) {
            (Ok(t), Ok(e)) => t.iter().zip(&e).map(|(a, b)| join_ty(a, b)).collect(),
            (Ok(t), Err(_)) => Ok(t),
            (Err(_), Ok(e)) => Ok(e),
            (Err(e), Err(_)) => Err(e),
        },
    }
}

/// Runs a body whose first `lead` inputs are fixed and whose next `carried.len()` inputs
/// are loop-carried, to a fixed point (at most a few rounds). Returns the carried types and
/// the body outputs of the last round.
fn iterate(
    body: &Graph,
    lead: &[Option<TypeInfo>],
    carried: Vec<TypeInfo>,
    rest: &[Option<TypeInfo>],
    out_skip: usize,
    what: &str,
) -> Res<(Vec<TypeInfo>, Vec<TypeInfo>)> {
    let mut state = carried;
    // Inputs whose declared type proved wrong: from then on the state's type is used as is
    // (refining the joined state with the wrong declaration would undo the join).
    let mut forced: Vec<bool> = Vec::new();
    for round in 0..3 {
        let seeds: Vec<Option<TypeInfo>> = lead
            .iter()
            .cloned()
            .chain(state.iter().cloned().map(Some))
            .chain(rest.iter().cloned())
            .collect();
        let (out, conflicts) = infer_body_forced(body, &seeds, what, &forced)?;
        forced.resize(conflicts.len(), false);
        for (f, c) in forced.iter_mut().zip(conflicts) {
            *f |= c;
        }
        if out.len() < out_skip + state.len() {
            return Err(format!(
                "the {what} has {} outputs, fewer than its {} state values",
                out.len(),
                state.len()
            ));
        }
        let next: Vec<TypeInfo> = state
            .iter()
            .zip(&out[out_skip..])
            .map(|(a, b)| join_ty(a, b))
            .collect::<Res<_>>()?;
        if next == state || round == 2 {
            return Ok((next, out));
        }
        state = next;
    }
    unreachable!("the loop returns on its last round")
}

/// `Loop(M?, cond?, initial..., captures...)`: final carried values, then scan outputs
/// stacked along a new leading axis of the trip count.
pub fn loop_(ins: Ins<'_, '_>, body: &Graph, num_captures: i64, n: usize) -> Res<Vec<TypeInfo>> {
    let c = pos(num_captures, "num_captures")?;
    let n_carried = ins
        .len()
        .checked_sub(2 + c)
        .ok_or("Loop has fewer inputs than its captures")?;
    if n < n_carried {
        return Err(format!(
            "Loop has {n_carried} carried values but {n} outputs"
        ));
    }
    let carried: Vec<TypeInfo> = (0..n_carried)
        .map(|i| req(ins, 2 + i).map(|f| f.ty.clone()))
        .collect::<Res<_>>()?;
    let lead = [
        Some(ty(DType::I64, Shape::Ranked(vec![]))),
        Some(ty(DType::Bool, Shape::Ranked(vec![]))),
    ];
    let rest = input_types(&ins[2 + n_carried..]);
    let (state, out) = iterate(body, &lead, carried, &rest, 1, "loop body")?;
    // The trip count is M when nothing can stop the loop early: no condition, or a constant
    // true one that the body passes through unchanged.
    let always = match opt(ins, 1) {
        None => true,
        Some(c) => {
            c.value.and_then(|t| t.to_i64_vec().ok()).as_deref() == Some(&[1])
                && condition_passes_through(body)
        }
    };
    let trips = match scalar_int(opt(ins, 0)) {
        Some(m) if always => Dim::Known(m.max(0) as usize),
        _ => Dim::Unknown,
    };
    let scans = &out[1 + n_carried..];
    if scans.len() != n - n_carried {
        return Err(format!(
            "the loop body has {} scan outputs, the node {}",
            scans.len(),
            n - n_carried
        ));
    }
    let stacked = scans.iter().map(|t| {
        let shape = match t.shape.dims() {
            Some(d) => Shape::Ranked(
                std::iter::once(trips.clone())
                    .chain(d.iter().cloned())
                    .collect(),
            ),
            None => Shape::Unranked,
        };
        ty(t.dtype, shape)
    });
    Ok(state.into_iter().chain(stacked).collect())
}

/// Whether a loop body's condition output is its condition input (through Identity nodes) or
/// a constant true.
pub fn condition_passes_through(body: &Graph) -> bool {
    let (Some(out), Some(&cond_in)) = (body.outputs.first(), body.inputs.get(1)) else {
        return false;
    };
    let mut v = out.value;
    loop {
        let n = body.node(v.node);
        match &n.op {
            _ if v.node == cond_in => return true,
            Op::Identity {} => match n.inputs.first().copied().flatten() {
                Some(i) => v = i,
                None => return false,
            },
            Op::Constant { value } => return value.to_i64_vec().ok().as_deref() == Some(&[1]),
            _ => return false,
        }
    }
}

/// Scan attributes.
pub struct ScanAttrs<'a> {
    /// `num_captures`.
    pub num_captures: i64,
    /// `num_scan_inputs`.
    pub num_scan_inputs: i64,
    /// `scan_input_axes`.
    pub input_axes: &'a [i64],
    /// `scan_output_axes`.
    pub output_axes: &'a [i64],
}

/// `Scan(initial..., scan inputs..., captures...)`: final states, then scan outputs
/// stacked along their output axes.
pub fn scan(ins: Ins<'_, '_>, body: &Graph, a: ScanAttrs<'_>, n: usize) -> Res<Vec<TypeInfo>> {
    let (c, m) = (
        pos(a.num_captures, "num_captures")?,
        pos(a.num_scan_inputs, "num_scan_inputs")?,
    );
    let n_state = ins
        .len()
        .checked_sub(m + c)
        .ok_or("Scan has fewer inputs than its scan inputs and captures")?;
    if n < n_state {
        return Err(format!("Scan has {n_state} state values but {n} outputs"));
    }
    let state: Vec<TypeInfo> = (0..n_state)
        .map(|i| req(ins, i).map(|f| f.ty.clone()))
        .collect::<Res<_>>()?;
    let mut seq = Dim::Unknown;
    let mut slices = Vec::with_capacity(m);
    for j in 0..m {
        let f = req(ins, n_state + j)?;
        let shape = match f.dims() {
            Some(d) => {
                let ax = norm_axis(a.input_axes.get(j).copied().unwrap_or(0), d.len())?;
                seq = unify(&seq, &d[ax]).ok_or_else(|| {
                    format!("scan inputs differ in sequence length ({seq} vs {})", d[ax])
                })?;
                Shape::Ranked(
                    d.iter()
                        .enumerate()
                        .filter(|(i, _)| *i != ax)
                        .map(|(_, d)| d.clone())
                        .collect(),
                )
            }
            None => Shape::Unranked,
        };
        slices.push(Some(ty(f.dtype(), shape)));
    }
    let rest: Vec<Option<TypeInfo>> = slices
        .into_iter()
        .chain(input_types(&ins[n_state + m..]))
        .collect();
    let (state, out) = iterate(body, &[], state, &rest, 0, "scan body")?;
    let scans = &out[n_state..];
    if scans.len() != n - n_state {
        return Err(format!(
            "the scan body has {} scan outputs, the node {}",
            scans.len(),
            n - n_state
        ));
    }
    let mut outs = state;
    for (k, t) in scans.iter().enumerate() {
        let shape = match t.shape.dims() {
            Some(d) => {
                let ax = norm_axis(a.output_axes.get(k).copied().unwrap_or(0), d.len() + 1)?;
                let mut o = d.to_vec();
                o.insert(ax, seq.clone());
                Shape::Ranked(o)
            }
            None => Shape::Unranked,
        };
        outs.push(ty(t.dtype, shape));
    }
    Ok(outs)
}
