//! Control flow: If, Loop and Scan, evaluating their subgraphs with
//! [`crate::eval::eval_graph`]. Captured outer-scope values are the node's trailing inputs and
//! are passed to the subgraph's trailing inputs.

use ndarray::Axis;

use crate::eval::eval_graph;
use crate::eval::util::{norm_axis, req};
use crate::ir::{Elem, Graph, Op, Tensor};

/// Evaluates If, Loop or Scan.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let outs = match op {
        Op::If {
            then_branch,
            else_branch,
        } => eval_if(then_branch, else_branch, inputs)?,
        Op::Loop { body, num_captures } => {
            eval_loop(body, count(*num_captures, "num_captures")?, inputs)?
        }
        Op::Scan {
            body,
            num_captures,
            num_scan_inputs,
            scan_input_axes,
            scan_input_directions,
            scan_output_axes,
            scan_output_directions,
        } => eval_scan(
            body,
            inputs,
            &ScanAttrs {
                num_captures: count(*num_captures, "num_captures")?,
                num_scan_inputs: count(*num_scan_inputs, "num_scan_inputs")?,
                in_axes: scan_input_axes,
                in_dirs: scan_input_directions,
                out_axes: scan_output_axes,
                out_dirs: scan_output_directions,
            },
        )?,
        _ => return Err("not a control-flow op".into()),
    };
    if outs.len() != n_outputs {
        return Err(format!(
            "the subgraph produced {} outputs, the node declares {n_outputs}",
            outs.len()
        ));
    }
    Ok(outs)
}

fn count(v: i64, what: &str) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{what} must be non-negative, got {v}"))
}

/// Runs a subgraph, turning its error into a plain reason.
fn run(g: &Graph, args: Vec<Option<Tensor>>) -> Result<Vec<Tensor>, String> {
    eval_graph(g, &args).map_err(|e| format!("in subgraph '{}': {e}", g.name))
}

/// The single boolean of a condition tensor.
fn truth(t: &Tensor, what: &str) -> Result<bool, String> {
    if t.len() != 1 {
        return Err(format!(
            "{what} must have exactly one element, got shape {:?}",
            t.shape()
        ));
    }
    Ok(crate::dispatch!(t, a => a.iter().next().expect("one element").to_bool()))
}

fn eval_if(
    then_branch: &Graph,
    else_branch: &Graph,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>, String> {
    let cond = truth(req(inputs, 0)?, "cond")?;
    let captures = inputs.iter().skip(1).map(|t| t.cloned()).collect();
    run(if cond { then_branch } else { else_branch }, captures)
}

fn eval_loop(
    body: &Graph,
    num_captures: usize,
    inputs: &[Option<&Tensor>],
) -> Result<Vec<Tensor>, String> {
    let get = |i: usize| inputs.get(i).copied().flatten();
    if inputs.len() < 2 + num_captures && num_captures > 0 {
        return Err(format!(
            "{} inputs, but {num_captures} captures after M and cond",
            inputs.len()
        ));
    }
    let n_carried = inputs.len().saturating_sub(2 + num_captures);
    let max_trip = match get(0) {
        None => None,
        Some(m) => {
            let v = m.to_i64_vec()?;
            match v[..] {
                [m] => Some(m),
                _ => {
                    return Err(format!(
                        "M must have exactly one element, got shape {:?}",
                        m.shape()
                    ))
                }
            }
        }
    };
    let has_cond = get(1).is_some();
    let mut cond = match get(1) {
        Some(c) => truth(c, "cond")?,
        None => true,
    };
    let mut carried: Vec<Tensor> = (0..n_carried)
        .map(|i| {
            get(2 + i)
                .cloned()
                .ok_or_else(|| format!("loop-carried input {} is missing", 2 + i))
        })
        .collect::<Result<_, _>>()?;
    let captures: Vec<Option<Tensor>> =
        inputs[2 + n_carried..].iter().map(|t| t.cloned()).collect();
    let n_scan = body
        .outputs
        .len()
        .checked_sub(1 + n_carried)
        .ok_or_else(|| {
            format!(
                "the body has {} outputs, fewer than 1 + {n_carried} loop-carried",
                body.outputs.len()
            )
        })?;
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); n_scan];
    // Hostile loops (no trip count, a condition that stays true) are bounded: at most the
    // element limit in iterations, and in scan-output elements gathered.
    let limit = crate::eval::util::element_limit();
    let mut gathered = 0usize;
    let mut i: i64 = 0;
    while max_trip.is_none_or(|m| i < m) && cond {
        if i as u64 >= limit as u64 {
            return Err(format!(
                "the loop runs more than {limit} iterations, the element limit"
            ));
        }
        let mut args = Vec::with_capacity(2 + n_carried + captures.len());
        args.push(Some(Tensor::scalar(i)));
        args.push(Some(Tensor::scalar(cond)));
        args.extend(carried.iter().cloned().map(Some));
        args.extend(captures.iter().cloned());
        let mut outs = run(body, args)?.into_iter();
        let c = outs.next().ok_or("the body produced no outputs")?;
        if has_cond {
            cond = truth(&c, "the body's condition output")?;
        }
        carried = outs.by_ref().take(n_carried).collect();
        for (s, t) in scans.iter_mut().zip(outs) {
            gathered = gathered.saturating_add(t.len().max(1));
            if gathered > limit {
                return Err(format!(
                    "the scan outputs exceed the element limit of {limit} after {} iterations",
                    i + 1
                ));
            }
            s.push(t);
        }
        i += 1;
    }
    let mut result = carried;
    for (k, s) in scans.into_iter().enumerate() {
        result.push(stack(&s, 0, || empty_like_output(body, 1 + n_carried + k))?);
    }
    Ok(result)
}

/// An empty scan output (zero iterations): shape [0, dims of the body output], unknown dims 0.
fn empty_like_output(body: &Graph, k: usize) -> Result<Tensor, String> {
    let ty = body.ty(body.outputs[k].value);
    let mut shape = vec![0];
    if let Some(dims) = ty.shape.dims() {
        shape.extend(dims.iter().map(|d| d.known().unwrap_or(0)));
    }
    Ok(Tensor::zeros(ty.dtype, &shape))
}

/// Stacks same-shaped tensors along a new axis `axis`; `empty` builds the result for none.
fn stack(
    ts: &[Tensor],
    axis: usize,
    empty: impl FnOnce() -> Result<Tensor, String>,
) -> Result<Tensor, String> {
    let Some(first) = ts.first() else {
        return empty();
    };
    if ts
        .iter()
        .any(|t| t.dtype() != first.dtype() || t.shape() != first.shape())
    {
        return Err("scan output elements differ in type or shape across iterations".into());
    }
    crate::dispatch!(first, _a => {
        let views: Vec<_> = ts.iter().map(|t| <T as Elem>::unwrap(t).expect("dtype checked").view()).collect();
        ndarray::stack(Axis(axis), &views).map(<T as Elem>::wrap).map_err(|e| format!("cannot stack scan outputs: {e}"))
    })
}

struct ScanAttrs<'a> {
    num_captures: usize,
    num_scan_inputs: usize,
    in_axes: &'a [i64],
    in_dirs: &'a [i64],
    out_axes: &'a [i64],
    out_dirs: &'a [i64],
}

/// Attribute list `v` of length `n`, or all zeros when empty.
fn per_item(v: &[i64], n: usize, what: &str) -> Result<Vec<i64>, String> {
    match v.len() {
        0 => Ok(vec![0; n]),
        l if l == n => Ok(v.to_vec()),
        l => Err(format!("{what} has {l} entries, expected {n}")),
    }
}

fn direction(d: i64, what: &str) -> Result<bool, String> {
    match d {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(format!("{what} entries must be 0 or 1, got {d}")),
    }
}

fn eval_scan(
    body: &Graph,
    inputs: &[Option<&Tensor>],
    a: &ScanAttrs,
) -> Result<Vec<Tensor>, String> {
    let n_in = inputs.len();
    let n_state = n_in
        .checked_sub(a.num_scan_inputs + a.num_captures)
        .ok_or_else(|| {
            format!(
                "{n_in} inputs, fewer than {} scan inputs plus {} captures",
                a.num_scan_inputs, a.num_captures
            )
        })?;
    let all: Vec<&Tensor> = (0..n_in)
        .map(|i| req(inputs, i))
        .collect::<Result<_, _>>()?;
    let (states, rest) = all.split_at(n_state);
    let (scan_ins, captures) = rest.split_at(a.num_scan_inputs);
    let n_scan_out = body.outputs.len().checked_sub(n_state).ok_or_else(|| {
        format!(
            "the body has {} outputs, fewer than {n_state} states",
            body.outputs.len()
        )
    })?;
    let in_axes = per_item(a.in_axes, a.num_scan_inputs, "scan_input_axes")?;
    let in_dirs = per_item(a.in_dirs, a.num_scan_inputs, "scan_input_directions")?;
    let out_axes = per_item(a.out_axes, n_scan_out, "scan_output_axes")?;
    let out_dirs = per_item(a.out_dirs, n_scan_out, "scan_output_directions")?;
    let mut len = None;
    let mut axes = Vec::with_capacity(scan_ins.len());
    for (j, t) in scan_ins.iter().enumerate() {
        let ax = norm_axis(in_axes[j], t.shape().len())?;
        if t.shape().is_empty() {
            return Err(format!("scan input {j} is a scalar"));
        }
        let l = t.shape()[ax];
        if len.is_some_and(|p| p != l) {
            return Err(format!(
                "scan inputs disagree on the sequence length ({l} vs {})",
                len.unwrap_or(0)
            ));
        }
        len = Some(l);
        axes.push(ax);
    }
    let len = len.ok_or("Scan needs at least one scan input")?;
    let mut state: Vec<Tensor> = states.iter().map(|t| (*t).clone()).collect();
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); n_scan_out];
    for t in 0..len {
        let mut args: Vec<Option<Tensor>> = state.iter().cloned().map(Some).collect();
        for (j, x) in scan_ins.iter().enumerate() {
            let i = if direction(in_dirs[j], "scan_input_directions")? {
                len - 1 - t
            } else {
                t
            };
            args.push(Some(crate::dispatch!(*x, arr => <T as Elem>::wrap(arr.index_axis(Axis(axes[j]), i).to_owned()))));
        }
        args.extend(captures.iter().map(|c| Some((*c).clone())));
        let mut outs = run(body, args)?.into_iter();
        state = outs.by_ref().take(n_state).collect();
        for (s, o) in scans.iter_mut().zip(outs) {
            s.push(o);
        }
    }
    let mut result = state;
    for (k, mut s) in scans.into_iter().enumerate() {
        if direction(out_dirs[k], "scan_output_directions")? {
            s.reverse();
        }
        let rank = s.first().map_or(0, |t| t.shape().len()) + 1;
        let ax = norm_axis(out_axes[k], rank)?;
        result.push(stack(&s, ax, || empty_like_output(body, n_state + k))?);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Node, Shape, TypeInfo, ValueInfo, ValueRef};

    fn ty(dtype: DType) -> TypeInfo {
        TypeInfo {
            dtype,
            shape: Shape::Unranked,
        }
    }

    fn v(node: crate::ir::NodeId) -> Option<ValueRef> {
        Some(ValueRef { node, port: 0 })
    }

    /// Adds a single-output node.
    fn node(
        g: &mut Graph,
        op: Op,
        inputs: Vec<Option<ValueRef>>,
        name: &str,
        dtype: DType,
    ) -> crate::ir::NodeId {
        g.add_node(Node {
            name: name.into(),
            op,
            inputs,
            outputs: vec![ValueInfo {
                name: name.into(),
                ty: ty(dtype),
            }],
        })
    }

    fn out(g: &mut Graph, name: &str, id: crate::ir::NodeId) {
        g.outputs.push(crate::ir::GraphOutput {
            name: name.into(),
            value: ValueRef { node: id, port: 0 },
        });
    }

    fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    /// A graph returning `outs` (given as producers), built by `f`.
    fn graph(name: &str, f: impl FnOnce(&mut Graph) -> Vec<crate::ir::NodeId>) -> Box<Graph> {
        let mut g = Graph::new(name);
        let outs = f(&mut g);
        for (k, id) in outs.into_iter().enumerate() {
            out(&mut g, &format!("o{k}"), id);
        }
        Box::new(g)
    }

    fn konst(g: &mut Graph, t: Tensor) -> crate::ir::NodeId {
        let dt = t.dtype();
        node(g, Op::Constant { value: t }, vec![], "k", dt)
    }

    #[test]
    fn if_picks_branch_and_passes_captures() {
        // then: the captured x; else: a constant.
        let then_b = graph("then", |g| vec![g.add_input("x", ty(DType::F32))]);
        let else_b = graph("else", |g| {
            g.add_input("x", ty(DType::F32));
            vec![konst(g, f32s(&[1], &[7.0]))]
        });
        let op = Op::If {
            then_branch: then_b,
            else_branch: else_b,
        };
        let x = f32s(&[2], &[3.0, -1.0]);
        let r = eval(&op, &[Some(&Tensor::scalar(true)), Some(&x)], 1).unwrap();
        assert_eq!(r[0], x);
        let r = eval(&op, &[Some(&Tensor::scalar(false)), Some(&x)], 1).unwrap();
        assert_eq!(r[0], f32s(&[1], &[7.0]));
        // A one-element 1-D (or numeric) condition is accepted; a two-element one is not.
        let cond = Tensor::from_vec(&[1], vec![1i64]).unwrap();
        assert_eq!(eval(&op, &[Some(&cond), Some(&x)], 1).unwrap()[0], x);
        let cond = Tensor::from_vec(&[2], vec![false, true]).unwrap();
        assert!(eval(&op, &[Some(&cond), Some(&x)], 1).is_err());
        assert!(eval(&op, &[Some(&Tensor::scalar(true)), Some(&x)], 2).is_err());
    }

    /// Loop body (i, cond, a, b, cap) -> (cond' = (i == 0), b, a, i, cap): swaps the two
    /// carried values, scans out the iteration number and the capture. `cond'` is an If on
    /// `i` (non-zero is true) choosing between constants.
    fn loop_body() -> Box<Graph> {
        graph("body", |g| {
            let i = g.add_input("i", ty(DType::I64));
            g.add_input("c", ty(DType::Bool));
            let a = g.add_input("a", ty(DType::F32));
            let b = g.add_input("b", ty(DType::F32));
            let cap = g.add_input("cap", ty(DType::F32));
            let then_b = graph("t", |g| vec![konst(g, Tensor::scalar(false))]);
            let else_b = graph("e", |g| vec![konst(g, Tensor::scalar(true))]);
            let cond = node(
                g,
                Op::If {
                    then_branch: then_b,
                    else_branch: else_b,
                },
                vec![v(i)],
                "cond",
                DType::Bool,
            );
            vec![cond, b, a, i, cap]
        })
    }

    #[test]
    fn loop_with_trip_count_cond_and_scan_outputs() {
        let op = Op::Loop {
            body: loop_body(),
            num_captures: 1,
        };
        let a = f32s(&[2], &[0.0, 1.0]);
        let b = f32s(&[1], &[5.0]);
        let cap = f32s(&[1], &[9.0]);
        let run = |m: Option<i64>, c: Option<bool>| {
            let m = m.map(Tensor::scalar);
            let c = c.map(Tensor::scalar);
            eval(
                &op,
                &[m.as_ref(), c.as_ref(), Some(&a), Some(&b), Some(&cap)],
                4,
            )
        };
        // cond given: the body's cond is false after iteration 1, so 2 iterations.
        let r = run(Some(5), Some(true)).unwrap();
        assert_eq!((&r[0], &r[1]), (&a, &b));
        assert_eq!(r[2], Tensor::from_vec(&[2], vec![0i64, 1]).unwrap());
        assert_eq!(r[3], f32s(&[2, 1], &[9.0, 9.0]));
        // M = 1: one iteration, carried values swapped.
        let r = run(Some(1), Some(true)).unwrap();
        assert_eq!((&r[0], &r[1]), (&b, &a));
        // No cond: M alone bounds the loop (the body's cond output is ignored).
        let r = run(Some(3), None).unwrap();
        assert_eq!(r[2], Tensor::from_vec(&[3], vec![0i64, 1, 2]).unwrap());
        assert_eq!((&r[0], &r[1]), (&b, &a));
        // No M: cond alone.
        let r = run(None, Some(true)).unwrap();
        assert_eq!(r[2].shape(), &[2]);
        // cond false from the start, or M = 0: zero iterations, empty scan outputs.
        for r in [
            run(Some(5), Some(false)).unwrap(),
            run(Some(0), None).unwrap(),
        ] {
            assert_eq!((&r[0], &r[1]), (&a, &b));
            assert_eq!(r[2].shape(), &[0]);
            assert_eq!(r[2].dtype(), DType::I64);
        }
        // A non-scalar M is an error; so is the wrong number of outputs.
        let m2 = Tensor::from_vec(&[2], vec![1i64, 2]).unwrap();
        assert!(eval(&op, &[Some(&m2), None, Some(&a), Some(&b), Some(&cap)], 4).is_err());
        assert!(eval(
            &op,
            &[
                None,
                Some(&Tensor::scalar(true)),
                Some(&a),
                Some(&b),
                Some(&cap)
            ],
            3
        )
        .is_err());
    }

    #[test]
    fn scan_directions_and_axes() {
        // body (s, x, cap) -> (x, s, cap): the state becomes the last slice; the scan output
        // is the previous state; the capture is scanned out too.
        let body = graph("body", |g| {
            let s = g.add_input("s", ty(DType::F32));
            let x = g.add_input("x", ty(DType::F32));
            let cap = g.add_input("cap", ty(DType::I32));
            vec![x, s, cap]
        });
        let mk = |in_axes: Vec<i64>, in_dirs: Vec<i64>, out_axes: Vec<i64>, out_dirs: Vec<i64>| {
            Op::Scan {
                body: body.clone(),
                num_captures: 1,
                num_scan_inputs: 1,
                scan_input_axes: in_axes,
                scan_input_directions: in_dirs,
                scan_output_axes: out_axes,
                scan_output_directions: out_dirs,
            }
        };
        let init = f32s(&[2], &[0.0, 0.0]);
        let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let cap = Tensor::scalar(4i32);
        let r = eval(
            &mk(vec![], vec![], vec![], vec![]),
            &[Some(&init), Some(&x), Some(&cap)],
            3,
        )
        .unwrap();
        assert_eq!(r[0], f32s(&[2], &[5.0, 6.0]));
        assert_eq!(r[1], f32s(&[3, 2], &[0.0, 0.0, 1.0, 2.0, 3.0, 4.0]));
        assert_eq!(r[2], Tensor::from_vec(&[3], vec![4i32; 3]).unwrap());
        // Reverse input; output 0 stacked on axis -1 and prepended.
        let r = eval(
            &mk(vec![0], vec![1], vec![-1, 0], vec![1, 0]),
            &[Some(&init), Some(&x), Some(&cap)],
            3,
        )
        .unwrap();
        // iterations see rows 2, 1, 0: states before them [0,0], [5,6], [3,4]; reversed
        // [3,4], [5,6], [0,0], stacked as columns.
        assert_eq!(r[0], f32s(&[2], &[1.0, 2.0]));
        assert_eq!(r[1], f32s(&[2, 3], &[3.0, 5.0, 0.0, 4.0, 6.0, 0.0]));
        // Scan over axis -1 of a [2, 3] input: its columns.
        let xt = f32s(&[2, 3], &[1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        let r = eval(
            &mk(vec![-1], vec![], vec![], vec![]),
            &[Some(&init), Some(&xt), Some(&cap)],
            3,
        )
        .unwrap();
        assert_eq!(r[0], f32s(&[2], &[5.0, 6.0]));
        // Bad attributes.
        let args = [Some(&init), Some(&x), Some(&cap)];
        assert!(eval(&mk(vec![2], vec![], vec![], vec![]), &args, 3).is_err());
        assert!(eval(&mk(vec![], vec![2], vec![], vec![]), &args, 3).is_err());
        assert!(eval(&mk(vec![0, 0], vec![], vec![], vec![]), &args, 3).is_err());
        assert!(eval(&mk(vec![], vec![], vec![2, 0], vec![]), &args, 3).is_err());
    }
}
