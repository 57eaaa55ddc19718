//! Shape inputs: the graph inputs whose *values* (not only their shapes) decide the shape of
//! some value, such as Resize's `scales`, Slice's `starts` or Reshape's `shape` fed by the
//! caller. A compiler of fixed-shape code needs them at compile time (TensorRT calls them
//! shape tensors); `graphc optimize -o out.so --bind NAME=FILE` fixes them.
//!
//! The analysis walks backwards from every shape operand (the input slots listed by
//! [`shape_operands`]) through the ops that compute it, stopping at `Shape`, `Size` and
//! constants (whose values do not depend on any input's values), and collects the graph
//! inputs it reaches. Ops whose output shape depends on their *data* (NonZero, Compress,
//! Unique, NonMaxSuppression) have no shape operand: no compile-time value makes their data
//! constant, and binding their data would fold the model away.

use std::collections::HashSet;

use crate::ir::{Graph, NodeId, Op};

/// The input slots of `op` whose values decide the shape of an output.
pub fn shape_operands(op: &Op) -> &'static [usize] {
    match op {
        Op::Reshape { .. }
        | Op::Expand {}
        | Op::Tile {}
        | Op::Squeeze {}
        | Op::Unsqueeze {}
        | Op::TopK { .. }
        | Op::Split { .. }
        | Op::OneHot { .. }
        | Op::CenterCropPad { .. }
        | Op::AffineGrid { .. }
        | Op::Upsample { .. }
        | Op::ReduceSum { .. }
        | Op::ReduceMean { .. }
        | Op::ReduceMax { .. }
        | Op::ReduceMin { .. }
        | Op::ReduceProd { .. }
        | Op::ReduceL1 { .. }
        | Op::ReduceL2 { .. }
        | Op::ReduceLogSum { .. }
        | Op::ReduceLogSumExp { .. }
        | Op::ReduceSumSquare { .. } => &[1],
        Op::ConstantOfShape { .. }
        | Op::HannWindow { .. }
        | Op::HammingWindow { .. }
        | Op::BlackmanWindow { .. }
        | Op::Loop { .. } => &[0],
        Op::Range {} => &[0, 1, 2],
        Op::Slice {} => &[1, 2, 3, 4],
        Op::Pad { .. } => &[1, 3],
        Op::Resize { .. } => &[1, 2, 3],
        Op::MaxUnpool { .. } => &[2],
        Op::Dft { .. } => &[1, 2],
        Op::Col2Im { .. } => &[1, 2],
        _ => &[],
    }
}

/// Positions in `g.inputs` of the graph inputs whose values decide a shape, in input order.
pub fn shape_inputs(g: &Graph) -> Vec<usize> {
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = Vec::new();
    for (_, n) in g.nodes() {
        for &slot in shape_operands(&n.op) {
            if let Some(Some(v)) = n.inputs.get(slot) {
                stack.push(v.node);
            }
        }
    }
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let n = g.node(id);
        if matches!(
            n.op,
            Op::Shape { .. } | Op::Size {} | Op::Constant { .. } | Op::Input { .. }
        ) {
            continue;
        }
        stack.extend(n.inputs.iter().flatten().map(|v| v.node));
    }
    g.inputs
        .iter()
        .enumerate()
        .filter(|(_, id)| seen.contains(id))
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shape_inputs;
    use crate::ir::text::parse;

    #[test]
    fn finds_inputs_that_feed_shape_operands() {
        // `s` reaches Reshape's shape through arithmetic; `x` only through Shape (its shape,
        // not its value); `k` feeds TopK's K; `d` is plain data.
        let g = parse(
            r#"graph "g" (%x: f32[2,6], %s: i64[2], %k: i64[1], %d: f32[2,6]) {
  %one: i64[2] = constant {value: i64[2] [1, 1]} ()
  %s2: i64[2] = mul (%s, %one)
  %sx: i64[2] = shape (%x)
  %sx2: i64[2] = mul (%sx, %one)
  %y: f32[..] = reshape (%d, %s2)
  %z: f32[..] = reshape (%x, %sx2)
  %v: f32[..], %i: i64[..] = top_k (%d, %k)
  return %y, %z, %v, %i
}
"#,
        )
        .unwrap();
        assert_eq!(shape_inputs(&g), vec![1, 2]);
    }
}
