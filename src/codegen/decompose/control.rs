//! If, Loop and Scan inlined into the graph, so that their bodies run as compiled kernels:
//!
//! - If: a constant condition inlines the branch taken; a run-time one inlines both branches
//!   and picks each output with Where (kernels never fail, so running the branch not taken
//!   is harmless). Both branches' outputs must have the node's static types.
//! - Scan: unrolled over its static sequence length; each step reads a slice of every scan
//!   input (in its direction) and the scan outputs are stacked with Concat.
//! - Loop: unrolled when nothing can stop it early (a constant trip count, a condition that
//!   is absent or constant true and that the body passes through unchanged); the iteration
//!   number is a constant per step.
//!
//! Unrolling is bounded ([`MAX_INLINED_NODES`]); past it the node stays whole. After inlining,
//! `prepare` folds the constant subexpressions (the iteration numbers feed index arithmetic)
//! and infers the graph again, so the inlined nodes get exact types.

use graphc_passes::inline::inline_subgraph;
use graphc_passes::ir::{Graph, NodeId, Op, Tensor, ValueRef};

use super::{known, Builder};

/// The most nodes one If, Loop or Scan may add.
pub const MAX_INLINED_NODES: usize = 20_000;

/// Rewrites the If, Loop or Scan node `id` when its form is covered.
pub fn decompose(g: &mut Graph, id: NodeId) {
    match g.node(id).op.clone() {
        Op::If {
            then_branch,
            else_branch,
        } => inline_if(g, id, &then_branch, &else_branch),
        Op::Loop { body, num_captures } => unroll_loop(g, id, &body, num_captures),
        Op::Scan {
            body,
            num_captures,
            num_scan_inputs,
            scan_input_axes,
            scan_input_directions,
            scan_output_axes,
            scan_output_directions,
        } => unroll_scan(
            g,
            id,
            &body,
            &ScanForm {
                num_captures,
                num_scan_inputs,
                in_axes: scan_input_axes,
                in_dirs: scan_input_directions,
                out_axes: scan_output_axes,
                out_dirs: scan_output_directions,
            },
        ),
        _ => {}
    }
}

/// The static shapes of every output of node `id`.
fn output_dims(g: &Graph, id: NodeId) -> Option<Vec<Vec<usize>>> {
    g.node(id)
        .outputs
        .iter()
        .map(|o| o.ty.shape.as_known())
        .collect()
}

/// Copies the nodes of `body` into the graph `b` builds, binding its inputs to `args`;
/// returns the values of its outputs. Value names get the node's name and `tag`.
fn inline(b: &mut Builder, tag: &str, body: &Graph, args: &[ValueRef]) -> Option<Vec<ValueRef>> {
    let prefix = format!("{}.{tag}", b.name);
    inline_subgraph(b.g, &prefix, body, args)
}

/// Moves the readers of every output `k` of `id` to `to[k]`.
fn replace_outputs(g: &mut Graph, id: NodeId, to: &[ValueRef]) {
    for (k, &v) in to.iter().enumerate() {
        g.redirect(id, k as u32, v);
    }
}

fn inline_if(g: &mut Graph, id: NodeId, then_branch: &Graph, else_branch: &Graph) {
    let ins = g.node(id).inputs.clone();
    let Some(Some(cond)) = ins.first().copied() else {
        return;
    };
    let Some(captures) = ins[1..].iter().copied().collect::<Option<Vec<_>>>() else {
        return;
    };
    let constant = match &g.node(cond.node).op {
        Op::Constant { value } if value.len() == 1 => value
            .to_i64_vec()
            .ok()
            .and_then(|v| v.first().map(|&c| c != 0)),
        _ => None,
    };
    // Where needs the output shapes; a constant condition does not.
    let dims = match (output_dims(g, id), constant) {
        (Some(d), _) => d,
        (None, Some(_)) => Vec::new(),
        (None, None) => return,
    };
    let n_out = g.node(id).outputs.len();
    if then_branch.nodes().count() + else_branch.nodes().count() > MAX_INLINED_NODES
        || then_branch.outputs.len() != n_out
        || else_branch.outputs.len() != n_out
    {
        return;
    }
    // The branch outputs must have the node's types, so that Where needs no broadcasting.
    let types_match = |b: &Graph| {
        b.outputs
            .iter()
            .zip(g.node(id).outputs.iter())
            .all(|(o, n)| {
                let t = b.ty(o.value);
                t.dtype == n.ty.dtype
                    && t.shape.as_known().as_ref() == n.ty.shape.as_known().as_ref()
            })
    };
    if constant.is_none() && !(types_match(then_branch) && types_match(else_branch)) {
        return;
    }
    let mut b = Builder::for_node(g, id);
    let outs = match constant {
        Some(true) => inline(&mut b, "then", then_branch, &captures),
        Some(false) => inline(&mut b, "else", else_branch, &captures),
        None => {
            let (Some(t), Some(e)) = (
                inline(&mut b, "then", then_branch, &captures),
                inline(&mut b, "else", else_branch, &captures),
            ) else {
                return;
            };
            Some(
                (0..n_out)
                    .map(|k| {
                        let dt = b.g.node(id).outputs[k].ty.dtype;
                        b.add(
                            &format!("pick{k}"),
                            Op::Where {},
                            vec![cond, t[k], e[k]],
                            dt,
                            &dims[k],
                        )
                    })
                    .collect(),
            )
        }
    };
    if let Some(outs) = outs {
        replace_outputs(g, id, &outs);
    }
}

fn unroll_loop(g: &mut Graph, id: NodeId, body: &Graph, num_captures: i64) {
    let ins = g.node(id).inputs.clone();
    let Ok(c) = usize::try_from(num_captures) else {
        return;
    };
    let Some(n_carried) = ins.len().checked_sub(2 + c) else {
        return;
    };
    let const_of = |v: Option<ValueRef>| -> Option<Vec<i64>> {
        match &g.node(v?.node).op {
            Op::Constant { value } => value.to_i64_vec().ok(),
            _ => None,
        }
    };
    let Some(&[m]) = const_of(ins[0]).as_deref() else {
        return;
    };
    let always = match ins[1] {
        None => true,
        Some(_) => {
            const_of(ins[1]).as_deref() == Some(&[1])
                && graphc_passes::infer::condition_passes_through(body)
        }
    };
    let Ok(m) = usize::try_from(m) else {
        return;
    };
    let Some(dims) = output_dims(g, id) else {
        return;
    };
    let n_scan = dims.len().saturating_sub(n_carried);
    if !always
        || m == 0
        || body.outputs.len() != 1 + n_carried + n_scan
        || m.saturating_mul(body.nodes().count() + 4) > MAX_INLINED_NODES
    {
        return;
    }
    let Some(rest) = ins[2..].iter().copied().collect::<Option<Vec<ValueRef>>>() else {
        return;
    };
    let (carried0, captures) = rest.split_at(n_carried);
    let mut b = Builder::for_node(g, id);
    let mut carried = carried0.to_vec();
    let mut scans: Vec<Vec<ValueRef>> = vec![Vec::new(); n_scan];
    for i in 0..m {
        let iter = b.constant(&format!("iter{i}"), Tensor::scalar(i as i64));
        let cond = b.constant(&format!("cond{i}"), Tensor::scalar(true));
        let mut args = vec![iter, cond];
        args.extend(&carried);
        args.extend(captures);
        let Some(outs) = inline(&mut b, &format!("step{i}"), body, &args) else {
            return;
        };
        carried = outs[1..1 + n_carried].to_vec();
        for (s, &v) in scans.iter_mut().zip(&outs[1 + n_carried..]) {
            s.push(v);
        }
    }
    let mut result = carried;
    for (k, steps) in scans.iter().enumerate() {
        let out = &dims[n_carried + k];
        result.push(stack(&mut b, &format!("scan{k}"), steps, 0, out, false));
    }
    replace_outputs(g, id, &result);
}

/// Scan's attributes.
struct ScanForm {
    num_captures: i64,
    num_scan_inputs: i64,
    in_axes: Vec<i64>,
    in_dirs: Vec<i64>,
    out_axes: Vec<i64>,
    out_dirs: Vec<i64>,
}

/// Attribute list `v` for `n` items (empty: zeros).
fn per_item(v: &[i64], n: usize) -> Option<Vec<i64>> {
    match v.len() {
        0 => Some(vec![0; n]),
        l if l == n => Some(v.to_vec()),
        _ => None,
    }
}

/// `steps` (each of shape `out` without `axis`) stacked along `axis` into `out`, in reverse
/// order when `reverse`.
fn stack(
    b: &mut Builder,
    suffix: &str,
    steps: &[ValueRef],
    axis: usize,
    out: &[usize],
    reverse: bool,
) -> ValueRef {
    let mut one = out.to_vec();
    one[axis] = 1;
    let mut parts: Vec<ValueRef> = steps
        .iter()
        .enumerate()
        .map(|(t, &v)| b.reshape(&format!("{suffix}.{t}"), v, &one))
        .collect();
    if reverse {
        parts.reverse();
    }
    let dt = b.g.dtype(steps[0]);
    b.add(suffix, Op::Concat { axis: axis as i64 }, parts, dt, out)
}

fn unroll_scan(g: &mut Graph, id: NodeId, body: &Graph, f: &ScanForm) {
    let ins = g.node(id).inputs.clone();
    let (Ok(c), Ok(n_scan_in)) = (
        usize::try_from(f.num_captures),
        usize::try_from(f.num_scan_inputs),
    ) else {
        return;
    };
    let Some(args) = ins.iter().copied().collect::<Option<Vec<ValueRef>>>() else {
        return;
    };
    let Some(n_state) = args.len().checked_sub(n_scan_in + c) else {
        return;
    };
    let Some(dims) = output_dims(g, id) else {
        return;
    };
    let Some(n_scan_out) = dims.len().checked_sub(n_state) else {
        return;
    };
    let (Some(in_axes), Some(in_dirs), Some(out_axes), Some(out_dirs)) = (
        per_item(&f.in_axes, n_scan_in),
        per_item(&f.in_dirs, n_scan_in),
        per_item(&f.out_axes, n_scan_out),
        per_item(&f.out_dirs, n_scan_out),
    ) else {
        return;
    };
    if n_scan_in == 0 || body.outputs.len() != n_state + n_scan_out {
        return;
    }
    // Every scan input's static shape and normalized axis; all share the sequence length.
    let mut scan_in = Vec::with_capacity(n_scan_in);
    for j in 0..n_scan_in {
        let v = args[n_state + j];
        let Some(s) = known(g, v) else { return };
        let r = s.len() as i64;
        let a = if in_axes[j] < 0 {
            in_axes[j] + r
        } else {
            in_axes[j]
        };
        if !(0..r).contains(&a) {
            return;
        }
        scan_in.push((v, s, a as usize, in_dirs[j] != 0));
    }
    let t_len = scan_in[0].1[scan_in[0].2];
    if t_len == 0
        || scan_in.iter().any(|(_, s, a, _)| s[*a] != t_len)
        || t_len.saturating_mul(body.nodes().count() + 3 * n_scan_in) > MAX_INLINED_NODES
    {
        return;
    }
    let mut outs_axes = Vec::with_capacity(n_scan_out);
    for k in 0..n_scan_out {
        let r = dims[n_state + k].len() as i64;
        let a = if out_axes[k] < 0 {
            out_axes[k] + r
        } else {
            out_axes[k]
        };
        if !(0..r).contains(&a) || dims[n_state + k][a as usize] != t_len {
            return;
        }
        outs_axes.push(a as usize);
    }
    let (state0, rest) = args.split_at(n_state);
    let captures = rest[n_scan_in..].to_vec();
    let mut b = Builder::for_node(g, id);
    let mut state = state0.to_vec();
    let mut scans: Vec<Vec<ValueRef>> = vec![Vec::new(); n_scan_out];
    for t in 0..t_len {
        let mut step_args = state.clone();
        for (j, (v, s, a, rev)) in scan_in.iter().enumerate() {
            let pos = if *rev { t_len - 1 - t } else { t };
            let slice = b.range(&format!("in{j}.{t}"), *v, *a, pos, pos + 1);
            let mut elem = s.clone();
            elem.remove(*a);
            step_args.push(b.reshape(&format!("in{j}.{t}.elem"), slice, &elem));
        }
        step_args.extend(&captures);
        let Some(outs) = inline(&mut b, &format!("step{t}"), body, &step_args) else {
            return;
        };
        state = outs[..n_state].to_vec();
        for (s, &v) in scans.iter_mut().zip(&outs[n_state..]) {
            s.push(v);
        }
    }
    let mut result = state;
    for (k, steps) in scans.iter().enumerate() {
        let out = &dims[n_state + k];
        result.push(stack(
            &mut b,
            &format!("scan{k}"),
            steps,
            outs_axes[k],
            out,
            out_dirs[k] != 0,
        ));
    }
    replace_outputs(g, id, &result);
}

/// Whether `op` is a control-flow op this module inlines.
pub fn is_control(op: &Op) -> bool {
    matches!(op, Op::If { .. } | Op::Loop { .. } | Op::Scan { .. })
}
