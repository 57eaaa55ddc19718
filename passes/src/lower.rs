//! Lowering to standard ONNX ops: graphc's fused ops become the standard ops they stand for
//! (`ir::fused`), blocked layout ops their NCHW op between reorders and reorders their
//! Pad/Reshape/Transpose/Slice steps (`ir::blocked`; a reorder back to NCHW of a reorder to
//! blocked is dropped first, so a chain of blocked ops exports as its NCHW ops), and ops newer than the target opset (Gelu before 20, Swish before 24)
//! become their older equivalents. Used by ONNX export; the result computes exactly what the
//! fused ops' reference evaluation computes.

use crate::ir::blocked::{check_block, from_blocked_steps, to_blocked_steps, ReorderStep, StepArg};
use crate::ir::fused::{scalar_like, Activation, Operand, Step};
use crate::ir::{DType, Graph, Node, NodeId, Op, TypeInfo, ValueInfo, ValueRef};

/// Rewrites `g` (typed) so that it uses only standard ops available at `opset`.
pub fn to_standard(g: &Graph, opset: i64) -> Result<Graph, String> {
    let mut out = g.clone();
    // Blocked ops first become reorders around their NCHW ops, and reorder pairs cancel.
    let blocked: Vec<NodeId> = out
        .node_ids()
        .iter()
        .copied()
        .filter(|&id| out.node(id).op.unblock().is_some())
        .collect();
    for id in blocked {
        lower_node(&mut out, id, opset)?;
    }
    cancel_reorders(&mut out);
    out.toposort()?;
    // Round 1 lowers the graph's own nodes; later rounds what lowering brought in (inlined
    // fused bodies, the fused ops inside blocked ops, their activations).
    for _ in 0..4 {
        let targets: Vec<NodeId> = out
            .node_ids()
            .iter()
            .copied()
            .filter(|&id| needs_lowering(&out.node(id).op, opset))
            .collect();
        if targets.is_empty() {
            break;
        }
        for id in targets {
            lower_node(&mut out, id, opset)?;
        }
        out.toposort()?;
    }
    plain_coerce_2d(&mut out);
    fold_splats(&mut out);
    channel_affine_as_batchnorm(&mut out);
    Ok(out)
}

/// A per-channel constant scale and shift `x * s + t` (s, t of shape `[C, 1, ...]`, x of shape
/// `[N, C, ...]`; what BatchNorm folding leaves before a non-foldable consumer) is written as
/// one BatchNormalization with mean 0, variance 1 and epsilon 0: `(x - 0) / sqrt(1 + 0) * s +
/// t` computes the same values, in one node instead of two.
fn channel_affine_as_batchnorm(g: &mut Graph) {
    use crate::ir::{Shape, Tensor};
    let per_channel = |g: &Graph, v: ValueRef, c: usize, rank: usize| -> Option<Vec<f32>> {
        let Op::Constant {
            value: Tensor::F32(a),
        } = &g.node(v.node).op
        else {
            return None;
        };
        let d = a.shape();
        (d.len() == rank - 1 && d[0] == c && d[1..].iter().all(|&k| k == 1))
            .then(|| a.iter().copied().collect())
    };
    for add in g.node_ids().to_vec() {
        if !g.contains(add) || !matches!(g.node(add).op, Op::Add {}) {
            continue;
        }
        let n = g.node(add);
        let (Some(Some(m)), Some(Some(t))) = (n.inputs.first().copied(), n.inputs.get(1).copied())
        else {
            continue;
        };
        if !matches!(g.node(m.node).op, Op::Mul {}) || g.consumers(m.node).len() != 1 {
            continue;
        }
        let mul = g.node(m.node);
        let (Some(Some(x)), Some(Some(sv))) =
            (mul.inputs.first().copied(), mul.inputs.get(1).copied())
        else {
            continue;
        };
        let xt = g.ty(x);
        let Some(xd) = xt.shape.as_known() else {
            continue;
        };
        if xt.dtype != DType::F32 || xd.len() < 3 || g.ty(ValueRef { node: add, port: 0 }) != xt {
            continue;
        }
        let c = xd[1];
        let (Some(scale), Some(shift)) = (
            per_channel(g, sv, c, xd.len()),
            per_channel(g, t, c, xd.len()),
        ) else {
            continue;
        };
        let vec_c = |v: Vec<f32>| Tensor::from_vec(&[c], v).expect("c values");
        let ty_c = TypeInfo {
            dtype: DType::F32,
            shape: Shape::known(&[c]),
        };
        let name = g.node(add).outputs[0].name.clone();
        let constant = |g: &mut Graph, suffix: &str, v: Vec<f32>| {
            let id = g.add_node(Node {
                name: String::new(),
                op: Op::Constant { value: vec_c(v) },
                inputs: vec![],
                outputs: vec![ValueInfo {
                    name: format!("{name}__bn_{suffix}"),
                    ty: ty_c.clone(),
                }],
            });
            Some(ValueRef { node: id, port: 0 })
        };
        let args = vec![
            Some(x),
            constant(g, "scale", scale),
            constant(g, "bias", shift),
            constant(g, "mean", vec![0.0; c]),
            constant(g, "var", vec![1.0; c]),
        ];
        let mul_id = m.node;
        for slot in 0..2 {
            g.set_input(add, slot, None);
        }
        g.node_mut(add).inputs.clear();
        g.node_mut(add).op = Op::BatchNormalization {
            epsilon: 0.0,
            momentum: 0.9,
            training_mode: 0,
        };
        for (slot, a) in args.into_iter().enumerate() {
            g.set_input(add, slot, a);
        }
        for slot in 0..2 {
            g.set_input(mul_id, slot, None);
        }
        g.remove_node(mul_id);
    }
    if g.toposort().is_ok() {
        remove_unused_constants(g);
    }
}

/// Most elements a `ConstantOfShape` of a constant shape is written out as data.
const MAX_FOLDED_SPLAT: usize = 1 << 28;

/// `ConstantOfShape` of a constant shape becomes the constant it computes: in a written
/// model, foldable constants are data, not nodes (the optimizer keeps large splats compact
/// only while it works).
fn fold_splats(g: &mut Graph) {
    for id in g.node_ids().to_vec() {
        let node = g.node(id);
        if !matches!(node.op, Op::ConstantOfShape { .. }) {
            continue;
        }
        let Some(Some(s)) = node.inputs.first().copied() else {
            continue;
        };
        // An initializer input counts as a constant, as everywhere in the optimizer.
        let shape = match &g.node(s.node).op {
            Op::Constant { value }
            | Op::Input {
                default: Some(value),
            } => value,
            _ => continue,
        };
        if node.outputs[0]
            .ty
            .shape
            .num_elements()
            .is_none_or(|n| n > MAX_FOLDED_SPLAT)
        {
            continue;
        }
        let Ok(mut v) = crate::eval::eval_op(&node.op, &[Some(shape)], 1) else {
            continue;
        };
        let value = v.remove(0);
        g.set_input(id, 0, None);
        let n = g.node_mut(id);
        n.inputs.clear();
        n.op = Op::Constant { value };
    }
    remove_unused_constants(g);
}

/// Removes constants nothing reads (shapes of folded splats).
fn remove_unused_constants(g: &mut Graph) {
    let outputs: std::collections::HashSet<NodeId> =
        g.outputs.iter().map(|o| o.value.node).collect();
    for id in g.node_ids().to_vec() {
        if matches!(g.node(id).op, Op::Constant { .. })
            && !outputs.contains(&id)
            && g.consumers(id).is_empty()
        {
            g.remove_node(id);
        }
    }
}

/// A Softmax-family op with `coerce_2d` (the opset < 13 form) whose input has only 1-sized
/// dims after `axis` computes exactly the opset-13 op over `axis`: written so, it exports as
/// one node instead of a Flatten/op/Reshape chain.
fn plain_coerce_2d(g: &mut Graph) {
    for id in g.node_ids().to_vec() {
        let node = g.node(id);
        let Some(Some(x)) = node.inputs.first().copied() else {
            continue;
        };
        let Some(dims) = g.ty(x).shape.as_known() else {
            continue;
        };
        let rank = dims.len() as i64;
        let trailing_ones = |axis: i64| {
            let a = if axis < 0 { axis + rank } else { axis };
            (0..rank).contains(&a) && dims[a as usize + 1..].iter().all(|&d| d == 1)
        };
        let plain = match &node.op {
            Op::Softmax {
                axis,
                coerce_2d: true,
            } if trailing_ones(*axis) => Op::Softmax {
                axis: *axis,
                coerce_2d: false,
            },
            Op::LogSoftmax {
                axis,
                coerce_2d: true,
            } if trailing_ones(*axis) => Op::LogSoftmax {
                axis: *axis,
                coerce_2d: false,
            },
            Op::Hardmax {
                axis,
                coerce_2d: true,
            } if trailing_ones(*axis) => Op::Hardmax {
                axis: *axis,
                coerce_2d: false,
            },
            _ => continue,
        };
        g.node_mut(id).op = plain;
    }
}

fn needs_lowering(op: &Op, opset: i64) -> bool {
    match op {
        Op::FusedConv { .. }
        | Op::FusedMatMul { .. }
        | Op::FusedSoftmax { .. }
        | Op::FusedElementwise { .. } => true,
        op if op.is_layout() => true,
        Op::Gelu { approximate } => opset < 20 && approximate == "none",
        Op::Swish { .. } => opset < 24,
        _ => false,
    }
}

/// Builds nodes into `g`, naming them after the node being lowered.
struct Builder<'a> {
    g: &'a mut Graph,
    base: String,
    ty: TypeInfo,
    count: usize,
}

impl Builder<'_> {
    fn add(&mut self, op: Op, inputs: Vec<Option<ValueRef>>, ty: TypeInfo) -> ValueRef {
        self.count += 1;
        let name = format!("{}/{}{}", self.base, op.name(), self.count);
        let node = self.g.add_node(Node {
            name: name.clone(),
            op,
            inputs,
            outputs: vec![ValueInfo { name, ty }],
        });
        ValueRef { node, port: 0 }
    }

    fn scalar(&mut self, v: f64) -> ValueRef {
        let t = scalar_like(v, self.ty.dtype);
        let ty = TypeInfo {
            dtype: t.dtype(),
            shape: crate::ir::Shape::known(&[]),
        };
        self.add(Op::Constant { value: t }, vec![], ty)
    }

    fn steps(&mut self, steps: &[Step], x: ValueRef) -> ValueRef {
        let mut done: Vec<ValueRef> = Vec::new();
        for s in steps {
            let args = s
                .args
                .iter()
                .map(|a| {
                    Some(match a {
                        Operand::X => x,
                        Operand::Prev(i) => done[*i],
                        Operand::Scalar(v) => self.scalar(*v),
                    })
                })
                .collect();
            let ty = self.ty.clone();
            done.push(self.add(s.op.clone(), args, ty));
        }
        done.last().copied().unwrap_or(x)
    }

    /// Adds a node typed by inference from its inputs' types (and constant values).
    fn add_inferred(&mut self, op: Op, inputs: Vec<Option<ValueRef>>) -> Result<ValueRef, String> {
        let facts: Vec<Option<crate::infer::Fact<'_>>> = inputs
            .iter()
            .map(|v| {
                v.map(|v| crate::infer::Fact {
                    ty: self.g.ty(v),
                    value: match &self.g.node(v.node).op {
                        Op::Constant { value } => Some(value),
                        _ => None,
                    },
                })
            })
            .collect();
        let ty = crate::infer::infer_op(&op, &facts, 1)?.remove(0);
        Ok(self.add(op, inputs, ty))
    }

    /// A reorder's standard ops applied to `x`.
    fn reorder(&mut self, steps: &[ReorderStep], x: ValueRef) -> Result<ValueRef, String> {
        let mut cur = x;
        for s in steps {
            let mut args = Vec::with_capacity(s.args.len());
            for a in &s.args {
                args.push(Some(match a {
                    StepArg::X => x,
                    StepArg::Prev => cur,
                    StepArg::Const(t) => {
                        let ty = TypeInfo {
                            dtype: t.dtype(),
                            shape: crate::ir::Shape::known(t.shape()),
                        };
                        self.add(Op::Constant { value: t.clone() }, vec![], ty)
                    }
                }));
            }
            cur = self.add_inferred(s.op.clone(), args)?;
        }
        Ok(cur)
    }

    /// `0.5 * x * (1 + erf(x / sqrt(2)))`, the form Gelu had before opset 20.
    fn gelu(&mut self, x: ValueRef) -> ValueRef {
        let (sqrt2, one, half) = (
            self.scalar(std::f64::consts::SQRT_2),
            self.scalar(1.0),
            self.scalar(0.5),
        );
        let ty = self.ty.clone();
        let d = self.add(Op::Div {}, vec![Some(x), Some(sqrt2)], ty.clone());
        let e = self.add(Op::Erf {}, vec![Some(d)], ty.clone());
        let a = self.add(Op::Add {}, vec![Some(e), Some(one)], ty.clone());
        let m = self.add(Op::Mul {}, vec![Some(x), Some(a)], ty.clone());
        self.add(Op::Mul {}, vec![Some(m), Some(half)], ty)
    }

    /// An activation, lowering Gelu when the opset lacks it.
    fn activation(&mut self, act: &Activation, x: ValueRef, opset: i64) -> ValueRef {
        match act {
            Activation::Gelu if opset < 20 => self.gelu(x),
            _ => self.steps(&act.steps(), x),
        }
    }
}

/// Copies a fused body's nodes into the graph, reading `inputs`; returns its output. Ops of
/// the body that need lowering themselves (Gelu, Swish) are lowered in the next round.
fn inline(
    b: &mut Builder<'_>,
    body: &Graph,
    inputs: &[Option<ValueRef>],
) -> Result<ValueRef, String> {
    use std::collections::HashMap;
    let mut map: HashMap<ValueRef, ValueRef> = HashMap::new();
    for (k, &id) in body.inputs.iter().enumerate() {
        let v = inputs
            .get(k)
            .copied()
            .flatten()
            .ok_or("a fused body input has no value")?;
        map.insert(ValueRef { node: id, port: 0 }, v);
    }
    for &id in body.node_ids() {
        let n = body.node(id);
        if matches!(n.op, Op::Input { .. }) {
            continue;
        }
        let args: Vec<Option<ValueRef>> = n
            .inputs
            .iter()
            .map(|v| {
                v.map(|v| {
                    map.get(&v)
                        .copied()
                        .ok_or("a fused body reads an unknown value")
                })
            })
            .map(Option::transpose)
            .collect::<Result<_, _>>()?;
        let ty = n
            .outputs
            .first()
            .ok_or("a fused body node has no output")?
            .ty
            .clone();
        let v = b.add(n.op.clone(), args, ty);
        map.insert(ValueRef { node: id, port: 0 }, v);
    }
    let out = body.outputs.first().ok_or("a fused body has no output")?;
    map.get(&out.value)
        .copied()
        .ok_or_else(|| "a fused body's output is unknown".into())
}

fn dims_of(g: &Graph, v: ValueRef) -> Vec<Option<usize>> {
    g.shape(v)
        .dims()
        .map(|d| d.iter().map(crate::ir::Dim::known).collect())
        .unwrap_or_default()
}

/// Drops `reorder_from_blocked(reorder_to_blocked(x))` with the same block and `x`'s own
/// channel count (the identity), then reorders to blocked that nothing reads any more.
fn cancel_reorders(g: &mut Graph) {
    let ids: Vec<NodeId> = g.node_ids().to_vec();
    for id in ids {
        let Op::ReorderFromBlocked { block, channels } = g.node(id).op else {
            continue;
        };
        let Some(Some(v)) = g.node(id).inputs.first().copied() else {
            continue;
        };
        let Op::ReorderToBlocked { block: b2 } = g.node(v.node).op else {
            continue;
        };
        let Some(Some(x)) = g.node(v.node).inputs.first().copied() else {
            continue;
        };
        let same_channels = g
            .shape(x)
            .dims()
            .and_then(|d| d.get(1))
            .and_then(crate::ir::Dim::known)
            .is_some_and(|c| c as i64 == channels);
        if block != b2 || !same_channels || g.ty(x) != g.ty(ValueRef { node: id, port: 0 }) {
            continue;
        }
        replace_uses(g, id, x);
        g.remove_node(id);
    }
    let ids: Vec<NodeId> = g.node_ids().to_vec();
    for id in ids {
        let unused = g.consumers(id).is_empty() && !g.outputs.iter().any(|o| o.value.node == id);
        if unused && matches!(g.node(id).op, Op::ReorderToBlocked { .. }) {
            g.remove_node(id);
        }
    }
}

/// Points every reader of `id`'s (one) output, graph outputs included, at `to`.
fn replace_uses(g: &mut Graph, id: NodeId, to: ValueRef) {
    for (consumer, slot, _port) in g.consumers(id) {
        g.set_input(consumer, slot as usize, Some(to));
    }
    let old = ValueRef { node: id, port: 0 };
    for o in &mut g.outputs {
        if o.value == old {
            o.value = to;
        }
    }
}

/// Replaces node `id` of `g` (a fused, blocked or newer-than-`opset` op) by the standard ops
/// it stands for; its readers read the last of them. The back end uses it for a fused node
/// that its kernels cannot take whole.
pub fn lower_node(g: &mut Graph, id: NodeId, opset: i64) -> Result<(), String> {
    let node = g.node(id).clone();
    let ty = node
        .outputs
        .first()
        .ok_or_else(|| format!("node '{}' has no output", node.display_name()))?
        .ty
        .clone();
    let mut b = Builder {
        g,
        base: node.display_name(),
        ty: ty.clone(),
        count: 0,
    };
    let x = node.inputs.first().copied().flatten();
    let result = match &node.op {
        Op::FusedElementwise { body } => inline(&mut b, body, &node.inputs)?,
        Op::FusedSoftmax { axis } => {
            let sum = b.add(
                Op::Add {},
                node.inputs.iter().take(2).copied().collect(),
                ty.clone(),
            );
            let op = Op::Softmax {
                axis: *axis,
                coerce_2d: false,
            };
            b.add(op, vec![Some(sum)], ty.clone())
        }
        Op::ReorderToBlocked { block } => {
            let x = x.ok_or("a reorder has no input")?;
            let steps = to_blocked_steps(&dims_of(b.g, x), check_block(*block)?)?;
            b.reorder(&steps, x)?
        }
        Op::ReorderFromBlocked { block, channels } => {
            let x = x.ok_or("a reorder has no input")?;
            let c = usize::try_from(*channels).map_err(|_| "bad channel count")?;
            let steps = from_blocked_steps(&dims_of(b.g, x), check_block(*block)?, c)?;
            b.reorder(&steps, x)?
        }
        op if op.unblock().is_some() => {
            let u = op.unblock().ok_or("not a blocked op")??;
            let w = node
                .inputs
                .get(1)
                .copied()
                .flatten()
                .map(|w| dims_of(b.g, w));
            let mut args = Vec::with_capacity(node.inputs.len());
            for (k, v) in node.inputs.iter().enumerate() {
                args.push(match v {
                    None => None,
                    Some(v) => match u.channels(k, w.as_deref(), &dims_of(b.g, *v))? {
                        None => Some(*v),
                        Some(c) => Some(b.add_inferred(
                            Op::ReorderFromBlocked {
                                block: u.block as i64,
                                channels: c as i64,
                            },
                            vec![Some(*v)],
                        )?),
                    },
                });
            }
            let y = b.add_inferred(u.inner.clone(), args)?;
            let to = Op::ReorderToBlocked {
                block: u.block as i64,
            };
            b.add_inferred(to, vec![Some(y)])?
        }
        Op::Gelu { .. } => b.gelu(x.ok_or("Gelu has no input")?),
        Op::Swish { alpha } => {
            let x = x.ok_or("Swish has no input")?;
            let a = b.scalar(*alpha as f64);
            let ax = b.add(Op::Mul {}, vec![Some(x), Some(a)], ty.clone());
            let s = b.add(Op::Sigmoid {}, vec![Some(ax)], ty.clone());
            b.add(Op::Mul {}, vec![Some(x), Some(s)], ty.clone())
        }
        op => {
            let u = op.unfuse().ok_or("not a fused op")??;
            let mut main_args: Vec<Option<ValueRef>> =
                node.inputs.iter().take(u.main_inputs).copied().collect();
            let mut main = u.main.clone();
            let mut bias_input = u.bias_input;
            // A 2-D product with a bias is one Gemm (C broadcasts to [M, N] whenever the
            // bias fits the fused op), one node instead of MatMul and Add.
            if let (Op::MatMul {}, Some(bi)) = (&main, bias_input) {
                let rank = |v: Option<ValueRef>| v.and_then(|v| b.g.ty(v).shape.rank());
                let bias = node.inputs.get(bi).copied().flatten();
                let float = matches!(ty.dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16);
                if float
                    && rank(main_args.first().copied().flatten()) == Some(2)
                    && rank(main_args.get(1).copied().flatten()) == Some(2)
                    && rank(bias).is_some_and(|r| r <= 2)
                {
                    main = Op::Gemm {
                        alpha: 1.0,
                        beta: 1.0,
                        trans_a: 0,
                        trans_b: 0,
                    };
                    main_args.push(bias);
                    bias_input = None;
                }
            }
            let mut y = b.add(main, main_args, ty.clone());
            for extra in bias_input.into_iter().chain([u.residual_input]) {
                if let Some(Some(v)) = node.inputs.get(extra) {
                    y = b.add(Op::Add {}, vec![Some(y), Some(*v)], ty.clone());
                }
            }
            b.activation(&u.activation, y, opset)
        }
    };
    // The last node takes over the lowered node's output name; consumers read it.
    let old = ValueRef { node: id, port: 0 };
    for (consumer, slot, _port) in g.consumers(id) {
        g.set_input(consumer, slot as usize, Some(result));
    }
    for o in &mut g.outputs {
        if o.value == old {
            o.value = result;
        }
    }
    g.node_mut(result.node).outputs[0].name = node.outputs[0].name.clone();
    if result.node != id {
        g.node_mut(result.node).name = node.name.clone();
    }
    g.remove_node(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::eval_graph;
    use crate::ir::text::parse;
    use crate::ir::Tensor;

    /// `fused_softmax` lowers to Add then Softmax, computing the same values.
    #[test]
    fn fused_softmax_lowers_to_add_softmax() {
        let text = r#"graph "g" (%x: f32[2,3], %m: f32[3]) {
  %p: f32[2,3] = fused_softmax {axis: 0} (%x, %m)
  return %p
}
"#;
        let mut g = parse(text).unwrap();
        crate::infer::infer_graph(&mut g).unwrap();
        let xs = vec![
            Some(Tensor::from_vec(&[2, 3], vec![-1.5f32, -0.2, 0.0, 0.3, 1.1, 2.5]).unwrap()),
            Some(Tensor::from_vec(&[3], vec![0.5f32, -0.25, 1.0]).unwrap()),
        ];
        let want = eval_graph(&g, &xs).unwrap();
        let low = to_standard(&g, 18).unwrap();
        let ops: Vec<&str> = low.nodes().map(|(_, n)| n.op.name()).collect();
        assert!(
            ops.contains(&"add") && ops.contains(&"softmax") && !ops.contains(&"fused_softmax")
        );
        assert_eq!(eval_graph(&low, &xs).unwrap(), want);
    }

    /// A fused elementwise body is inlined, and the Gelu inside it lowered at opset 18.
    #[test]
    fn fused_elementwise_inlines_and_lowers_its_body() {
        let text = r#"graph "g" (%x: f32[2,3], %y: f32[3]) {
  %z: f32[2,3] = fused_elementwise {
    body: graph "b" (%x0: f32[2,3], %x1: f32[3]) {
      %a: f32[2,3] = add (%x0, %x1)
      %g: f32[2,3] = gelu (%a)
      %t: f32[2,3] = tanh (%g)
      return %t
    }
  } (%x, %y)
  return %z
}
"#;
        let mut g = parse(text).unwrap();
        crate::infer::infer_graph(&mut g).unwrap();
        let xs = vec![
            Some(Tensor::from_vec(&[2, 3], vec![-1.5f32, -0.2, 0.0, 0.3, 1.1, 2.5]).unwrap()),
            Some(Tensor::from_vec(&[3], vec![0.5f32, -0.25, 1.0]).unwrap()),
        ];
        let want = eval_graph(&g, &xs).unwrap();
        let low = to_standard(&g, 18).unwrap();
        crate::ir::verify::verify(&low).unwrap();
        let ops: Vec<&str> = low.nodes().map(|(_, n)| n.op.name()).collect();
        assert!(
            !ops.contains(&"fused_elementwise") && !ops.contains(&"gelu"),
            "{ops:?}"
        );
        assert!(ops.contains(&"erf") && ops.contains(&"tanh"), "{ops:?}");
        assert_eq!(low.outputs[0].name, "z");
        let got = eval_graph(&low, &xs).unwrap();
        for (p, q) in want[0].to_f64_vec().iter().zip(got[0].to_f64_vec()) {
            assert!((p - q).abs() <= 1e-6, "{p} vs {q}");
        }
    }

    /// Every activation, fused into a MatMul with bias and residual, lowers to standard ops
    /// that compute the same values (Gelu both as the opset-20 op and in its erf form).
    #[test]
    fn lowered_fused_ops_compute_the_same() {
        let acts = [
            "none",
            "relu",
            "leaky_relu {alpha: 0.1}",
            "clip {alpha: 0, beta: 6}",
            "sigmoid",
            "hard_sigmoid {alpha: 0.2, beta: 0.5}",
            "hard_swish",
            "silu",
            "gelu",
            "tanh",
        ];
        for act in acts {
            let (name, extra) = act.split_once(' ').unwrap_or((act, ""));
            let extra = extra.trim_start_matches('{').trim_end_matches('}');
            let attrs = if extra.is_empty() {
                format!("{{activation: \"{name}\"}}")
            } else {
                format!("{{activation: \"{name}\", {extra}}}")
            };
            let text = format!(
                r#"graph "g" (%a: f32[2,3], %b: f32[3,4], %bias: f32[4], %r: f32[2,4], %x: f32[1,2,5,5], %w: f32[3,2,3,3]) {{
  %y: f32[2,4] = fused_mat_mul {attrs} (%a, %b, %bias, %r)
  %z: f32[1,3,3,3] = fused_conv {attrs} (%x, %w)
  return %y, %z
}}
"#
            );
            let mut g = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            crate::infer::infer_graph(&mut g).unwrap();
            let inputs: Vec<Option<Tensor>> = g
                .inputs
                .iter()
                .enumerate()
                .map(|(k, &id)| {
                    let dims = g.node(id).outputs[0].ty.shape.as_known().unwrap();
                    let n: usize = dims.iter().product();
                    let data: Vec<f32> = (0..n)
                        .map(|i| ((i * 7 + k * 3) % 11) as f32 * 0.37 - 1.8)
                        .collect();
                    Some(Tensor::from_vec(&dims, data).unwrap())
                })
                .collect();
            let want = eval_graph(&g, &inputs).unwrap();
            for opset in [18, 20] {
                let low = to_standard(&g, opset).unwrap();
                crate::ir::verify::verify(&low).unwrap();
                assert!(low.nodes().all(|(_, n)| !n.op.is_fused()));
                let got = eval_graph(&low, &inputs).unwrap();
                for (w, o) in want.iter().zip(&got) {
                    assert_eq!(w.shape(), o.shape());
                    for (p, q) in w.to_f64_vec().iter().zip(o.to_f64_vec()) {
                        assert!(
                            (p - q).abs() <= 1e-6 * p.abs().max(1.0),
                            "{act} opset {opset}: {p} vs {q}"
                        );
                    }
                }
            }
        }
    }

    /// Reorders and blocked ops (5 channels: padded to 8) lower to standard ops computing the
    /// same values, and a reorder pair between two blocked ops is dropped.
    #[test]
    fn blocked_ops_lower_to_standard_ops() {
        let text = r#"graph "g" (%x: f32[1,5,6,6], %w1: f32[5,5,3,3], %w2: f32[5,5,1,1], %b: f32[5]) {
  %xb: f32[1,1,6,6,8] = reorder_to_blocked (%x)
  %y1: f32[1,1,6,6,8] = blocked_conv {pads: [1, 1, 1, 1], activation: "relu"} (%xb, %w1, %b)
  %p: f32[1,1,3,3,8] = blocked_max_pool {kernel_shape: [2, 2], strides: [2, 2]} (%y1)
  %y2: f32[1,1,3,3,8] = blocked_conv (%p, %w2)
  %a: f32[1,1,3,3,8] = blocked_average_pool {kernel_shape: [3, 3], pads: [1, 1, 1, 1]} (%y2)
  %g: f32[1,1,1,1,8] = blocked_global_average_pool (%a)
  %z: f32[1,5,1,1] = reorder_from_blocked {channels: 5} (%g)
  return %z, %y1
}
"#;
        let mut g = parse(text).unwrap();
        crate::infer::infer_graph(&mut g).unwrap();
        let inputs = crate::eval::random_inputs(&g, 7).unwrap();
        let want = eval_graph(&g, &inputs).unwrap();
        // The padding lanes of a blocked op's output are zero.
        let y1 = want[1].to_f64_vec();
        assert!(y1.iter().enumerate().all(|(i, v)| i % 8 < 5 || *v == 0.0));
        let low = to_standard(&g, 18).unwrap();
        crate::ir::verify::verify(&low).unwrap();
        assert!(low
            .nodes()
            .all(|(_, n)| !n.op.is_layout() && !n.op.is_fused()));
        let got = eval_graph(&low, &inputs).unwrap();
        for (w, o) in want.iter().zip(&got) {
            assert_eq!(w.shape(), o.shape());
            for (p, q) in w.to_f64_vec().iter().zip(o.to_f64_vec()) {
                assert!((p - q).abs() <= 1e-5 * p.abs().max(1.0), "{p} vs {q}");
            }
        }
        // Between the convolution and the pool, the lowered graph is NCHW: only the ends
        // and the second output are reordered (one Transpose each).
        let transposes = low
            .nodes()
            .filter(|(_, n)| n.op.name() == "transpose")
            .count();
        assert!(transposes <= 8, "{}", crate::ir::text::print(&low));
    }

    /// `reorder_to_blocked` puts channel `k` at block `k / 8`, lane `k % 8`, zero-padded, and
    /// `reorder_from_blocked` inverts it.
    #[test]
    fn reorders_round_trip() {
        use crate::eval::blocked::{from_blocked, to_blocked};
        let x = Tensor::from_vec(&[1, 3, 1, 2], (0..6).map(|i| i as f32).collect()).unwrap();
        let b = to_blocked(&x, 2).unwrap();
        assert_eq!(b.shape(), &[1, 2, 1, 2, 2]);
        assert_eq!(b.to_f64_vec(), vec![0.0, 2.0, 1.0, 3.0, 4.0, 0.0, 5.0, 0.0]);
        assert_eq!(from_blocked(&b, 2, 3).unwrap(), x);
        assert!(from_blocked(&b, 2, 5).is_err());
        assert!(to_blocked(&x, 0).is_err());
    }
}
