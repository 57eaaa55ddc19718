//! Ops rewritten before compiling into ops that have kernels: `prepare` calls these on a copy
//! of the graph, and each leaves a node whole when its form is not covered (the reference
//! evaluator then runs it in the JIT; a `.so` refuses it).
//!
//! - [`attention`]: Attention (opset 23/24) as MatMul, Softmax and friends.
//! - [`blocks`]: DepthToSpace and SpaceToDepth as Reshape, Transpose, Reshape.
//! - [`control`]: If, Loop and Scan inlined (both If branches and a Where for a run-time
//!   condition; Loop and Scan unrolled).
//! - [`conv_transpose`]: ConvTranspose as a Conv over the zero-upsampled input.
//! - [`einsum`]: Einsum as Gather (diagonals), Transpose, Reshape, Mul and ReduceSum.
//! - [`gemm`]: a Gemm the GEMM kernel declines as Transpose, MatMul, Mul and Add.
//! - [`group_norm`]: GroupNormalization as LayerNormalization over each group.
//! - [`int_product`]: MatMulInteger, ConvInteger and QLinearMatMul as the f32 MatMul/Conv of
//!   the shifted operands when that is exact, then Cast (and the requantization in f64).
//! - [`lp_pool`]: LpPool (any rank) as AveragePool of `|x|^p`, scaled, then `^(1/p)`.
//! - [`moments`]: training-mode BatchNormalization and MeanVarianceNormalization as f64
//!   ReduceMean and elementwise ops.
//! - [`pool1d`]: 1-D MaxPool and AveragePool as the 2-D pools over a height of 1.
//! - [`quant`]: QuantizeLinear and DequantizeLinear as Cast and elementwise ops.
//! - [`recurrent`]: LSTM, GRU and RNN unrolled over their sequence.
//! - [`softmax_axis`]: Softmax/LogSoftmax along an inner axis between two Transposes.
//! - f16/bf16 Attention, MatMul, Softmax and LogSoftmax (the reference computes them wider
//!   and rounds once) as their f32 forms between Casts (`widen_half`).
//! - [`rotary`]: RotaryEmbedding as Gather, Slice, Mul/Add/Sub and Concat.

use graphc_passes::ir::{
    DType, Graph, Node, NodeId, Op, Shape, Tensor, TypeInfo, ValueInfo, ValueRef,
};

pub mod attention;
pub mod blocks;
pub mod control;
pub mod conv_transpose;
pub mod einsum;
pub mod gemm;
pub mod group_norm;
pub mod int_product;
pub mod lp_pool;
pub mod moments;
pub mod pool1d;
pub mod quant;
pub mod recurrent;
pub mod rotary;
pub mod softmax_axis;

/// Whether [`rewrite`] may rewrite a node with this op.
pub fn handles(op: &Op) -> bool {
    matches!(
        op,
        Op::Attention { .. }
            | Op::ConvTranspose { .. }
            | Op::RotaryEmbedding { .. }
            | Op::Lstm { .. }
            | Op::Gru { .. }
            | Op::Rnn { .. }
            | Op::QuantizeLinear { .. }
            | Op::DequantizeLinear { .. }
            | Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::DepthToSpace { .. }
            | Op::SpaceToDepth { .. }
            | Op::GroupNormalization { .. }
            | Op::LpPool { .. }
            | Op::Softmax { .. }
            | Op::LogSoftmax { .. }
            | Op::Gemm { .. }
            | Op::DynamicQuantizeLinear {}
            | Op::Einsum { .. }
            | Op::BatchNormalization { .. }
            | Op::MeanVarianceNormalization { .. }
            | Op::MatMulInteger {}
            | Op::QLinearMatMul {}
            | Op::ConvInteger { .. }
            | Op::If { .. }
            | Op::Loop { .. }
            | Op::Scan { .. }
            | Op::MatMul {}
    )
}

/// Rewrites node `id` of `g` into ops that have kernels when its form is covered; leaves it
/// as it is otherwise.
pub fn rewrite(g: &mut Graph, id: NodeId) {
    match g.node(id).op {
        Op::Attention { .. } => {
            let id = widen_half(g, id).unwrap_or(id);
            attention::decompose(g, id)
        }
        Op::ConvTranspose { .. } => conv_transpose::decompose(g, id),
        Op::RotaryEmbedding { .. } => rotary::decompose(g, id),
        Op::Lstm { .. } | Op::Gru { .. } | Op::Rnn { .. } => recurrent::decompose(g, id),
        Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => quant::decompose(g, id),
        Op::MaxPool { .. } | Op::AveragePool { .. } => pool1d::decompose(g, id),
        Op::DepthToSpace { .. } | Op::SpaceToDepth { .. } => blocks::decompose(g, id),
        Op::GroupNormalization { .. } => group_norm::decompose(g, id),
        Op::LpPool { .. } => lp_pool::decompose(g, id),
        Op::Softmax { .. } | Op::LogSoftmax { .. } => {
            let id = widen_half(g, id).unwrap_or(id);
            softmax_axis::decompose(g, id)
        }
        Op::MatMul {} => {
            widen_half(g, id);
        }
        Op::Gemm { .. } => gemm::decompose(g, id),
        Op::DynamicQuantizeLinear {} => quant::decompose_dynamic(g, id),
        Op::Einsum { .. } => einsum::decompose(g, id),
        Op::BatchNormalization { .. } => moments::decompose_batch_norm(g, id),
        Op::MeanVarianceNormalization { .. } => moments::decompose_mvn(g, id),
        Op::MatMulInteger {} | Op::QLinearMatMul {} => int_product::decompose_matmul(g, id),
        Op::ConvInteger { .. } => int_product::decompose_conv(g, id),
        Op::If { .. } | Op::Loop { .. } | Op::Scan { .. } => control::decompose(g, id),
        _ => {}
    }
}

/// A half-precision (f16/bf16) node that the reference computes in f32 or f64 and rounds
/// once at the end (Attention, MatMul, Softmax, LogSoftmax) as the
/// same op over f32 Casts of its half inputs, its outputs cast back: returns the f32 node
/// (the original's readers now read the Casts), or `None` when the node is not half.
fn widen_half(g: &mut Graph, id: NodeId) -> Option<NodeId> {
    let node = g.node(id).clone();
    let half = |dt: DType| matches!(dt, DType::F16 | DType::BF16);
    let x = node.inputs.first().copied().flatten()?;
    let dt = g.dtype(x);
    if !half(dt)
        || node
            .outputs
            .iter()
            .any(|o| o.ty.dtype != dt || o.ty.shape.as_known().is_none())
        || node.inputs.iter().flatten().any(|&v| known(g, v).is_none())
    {
        return None;
    }
    let mut b = Builder::for_node(g, id);
    let cast = |b: &mut Builder, suffix: &str, v: ValueRef, to: DType| {
        let dims = known(b.g, v)?;
        let op = Op::Cast {
            to,
            saturate: 1,
            round_mode: "up".into(),
        };
        Some(b.add(suffix, op, vec![v], to, &dims))
    };
    let mut inputs = Vec::with_capacity(node.inputs.len());
    for (i, v) in node.inputs.iter().enumerate() {
        inputs.push(match v {
            Some(v) if half(b.g.dtype(*v)) => {
                Some(cast(&mut b, &format!("in{i}.f32"), *v, DType::F32)?)
            }
            other => *other,
        });
    }
    let wide = b.g.add_node(Node {
        name: String::new(),
        op: node.op.clone(),
        inputs: Vec::new(),
        outputs: node
            .outputs
            .iter()
            .map(|o| ValueInfo {
                name: format!("{}.f32", o.name),
                ty: TypeInfo {
                    dtype: DType::F32,
                    shape: o.ty.shape.clone(),
                },
            })
            .collect(),
    });
    for (slot, v) in inputs.into_iter().enumerate() {
        b.g.set_input(wide, slot, v);
    }
    for k in 0..node.outputs.len() {
        let w = ValueRef {
            node: wide,
            port: k as u32,
        };
        let back = cast(&mut b, &format!("out{k}"), w, dt)?;
        b.g.redirect(id, k as u32, back);
    }
    Some(wide)
}

/// The static shape of `v`.
pub(super) fn known(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    g.ty(v).shape.as_known()
}

/// Numpy broadcasting of two static shapes.
pub(super) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Adds typed nodes whose value names are `NAME.suffix` (NAME: the rewritten node's output).
pub(super) struct Builder<'a> {
    pub g: &'a mut Graph,
    pub name: String,
}

impl<'a> Builder<'a> {
    /// A builder naming values after node `id`'s first output.
    pub fn for_node(g: &'a mut Graph, id: NodeId) -> Builder<'a> {
        let name = g.node(id).outputs[0].name.clone();
        Builder { g, name }
    }

    /// `x[.., from..to, ..]` along `axis` (constant bounds; `x` has a static shape).
    pub fn range(
        &mut self,
        suffix: &str,
        x: ValueRef,
        axis: usize,
        from: usize,
        to: usize,
    ) -> ValueRef {
        let mut dims = known(self.g, x).expect("static shapes");
        dims[axis] = to - from;
        let one = |v: i64| Tensor::from_vec(&[1], vec![v]).expect("size");
        let s = self.constant(&format!("{suffix}.starts"), one(from as i64));
        let e = self.constant(&format!("{suffix}.ends"), one(to as i64));
        let a = self.constant(&format!("{suffix}.axes"), one(axis as i64));
        let dtype = self.g.dtype(x);
        self.add(suffix, Op::Slice {}, vec![x, s, e, a], dtype, &dims)
    }

    pub fn add(
        &mut self,
        suffix: &str,
        op: Op,
        inputs: Vec<ValueRef>,
        dtype: DType,
        dims: &[usize],
    ) -> ValueRef {
        let n = self.g.add_node(Node {
            name: String::new(),
            op,
            inputs: inputs.into_iter().map(Some).collect(),
            outputs: vec![ValueInfo {
                name: format!("{}.{suffix}", self.name),
                ty: TypeInfo {
                    dtype,
                    shape: Shape::known(dims),
                },
            }],
        });
        ValueRef { node: n, port: 0 }
    }

    pub fn f32(&mut self, suffix: &str, op: Op, inputs: Vec<ValueRef>, dims: &[usize]) -> ValueRef {
        self.add(suffix, op, inputs, DType::F32, dims)
    }

    pub fn constant(&mut self, suffix: &str, value: Tensor) -> ValueRef {
        let (dtype, dims) = (value.dtype(), value.shape().to_vec());
        self.add(suffix, Op::Constant { value }, vec![], dtype, &dims)
    }

    pub fn shape(&mut self, suffix: &str, dims: &[usize]) -> ValueRef {
        let d: Vec<i64> = dims.iter().map(|&x| x as i64).collect();
        let t = Tensor::from_vec(&[d.len()], d).expect("size matches");
        self.constant(suffix, t)
    }

    pub fn reshape(&mut self, suffix: &str, x: ValueRef, dims: &[usize]) -> ValueRef {
        let s = self.shape(&format!("{suffix}.shape"), dims);
        let dtype = self.g.dtype(x);
        self.add(
            suffix,
            Op::Reshape { allowzero: 0 },
            vec![x, s],
            dtype,
            dims,
        )
    }

    pub fn transpose(
        &mut self,
        suffix: &str,
        x: ValueRef,
        perm: &[i64],
        dims: &[usize],
    ) -> ValueRef {
        let perm = Some(perm.to_vec());
        let dtype = self.g.dtype(x);
        self.add(suffix, Op::Transpose { perm }, vec![x], dtype, dims)
    }
}

/// Turns node `id` into the last step of its first output, `op` over `inputs` (its readers
/// are unchanged), after moving the readers of its other outputs to `others` (output 1, 2,
/// ...; those the node does not have are ignored).
pub(super) fn become_last_step(
    g: &mut Graph,
    id: NodeId,
    op: Op,
    inputs: Vec<ValueRef>,
    others: &[ValueRef],
) {
    let outputs = g.node(id).outputs.len();
    for (i, &to) in others.iter().enumerate() {
        if i + 1 < outputs {
            g.redirect(id, (i + 1) as u32, to);
        }
    }
    for slot in (0..g.node(id).inputs.len()).rev() {
        g.set_input(id, slot, None);
    }
    let n = g.node_mut(id);
    n.inputs.clear();
    n.outputs.truncate(1);
    n.op = op;
    for (slot, v) in inputs.into_iter().enumerate() {
        g.set_input(id, slot, Some(v));
    }
}
