//! Ops rewritten before compiling into ops that have kernels: `prepare` calls these on a copy
//! of the graph, and each leaves a node whole when its form is not covered (the reference
//! evaluator then runs it in the JIT; a `.so` refuses it).
//!
//! - [`attention`]: Attention (opset 23/24) as MatMul, Softmax and friends.
//! - [`blocks`]: DepthToSpace and SpaceToDepth as Reshape, Transpose, Reshape.
//! - [`conv_transpose`]: ConvTranspose as a Conv over the zero-upsampled input.
//! - [`gemm`]: a Gemm the GEMM kernel declines as Transpose, MatMul, Mul and Add.
//! - [`group_norm`]: GroupNormalization as LayerNormalization over each group.
//! - [`lp_pool`]: LpPool (any rank) as AveragePool of `|x|^p`, scaled, then `^(1/p)`.
//! - [`pool1d`]: 1-D MaxPool and AveragePool as the 2-D pools over a height of 1.
//! - [`quant`]: QuantizeLinear and DequantizeLinear as Cast and elementwise ops.
//! - [`recurrent`]: LSTM, GRU and RNN unrolled over their sequence.
//! - [`softmax_axis`]: Softmax/LogSoftmax along an inner axis between two Transposes.
//! - [`rotary`]: RotaryEmbedding as Gather, Slice, Mul/Add/Sub and Concat.

use graphc_passes::ir::{
    DType, Graph, Node, NodeId, Op, Shape, Tensor, TypeInfo, ValueInfo, ValueRef,
};

pub mod attention;
pub mod blocks;
pub mod conv_transpose;
pub mod gemm;
pub mod group_norm;
pub mod lp_pool;
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
    )
}

/// Rewrites node `id` of `g` into ops that have kernels when its form is covered; leaves it
/// as it is otherwise.
pub fn rewrite(g: &mut Graph, id: NodeId) {
    match g.node(id).op {
        Op::Attention { .. } => attention::decompose(g, id),
        Op::ConvTranspose { .. } => conv_transpose::decompose(g, id),
        Op::RotaryEmbedding { .. } => rotary::decompose(g, id),
        Op::Lstm { .. } | Op::Gru { .. } | Op::Rnn { .. } => recurrent::decompose(g, id),
        Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => quant::decompose(g, id),
        Op::MaxPool { .. } | Op::AveragePool { .. } => pool1d::decompose(g, id),
        Op::DepthToSpace { .. } | Op::SpaceToDepth { .. } => blocks::decompose(g, id),
        Op::GroupNormalization { .. } => group_norm::decompose(g, id),
        Op::LpPool { .. } => lp_pool::decompose(g, id),
        Op::Softmax { .. } | Op::LogSoftmax { .. } => softmax_axis::decompose(g, id),
        Op::Gemm { .. } => gemm::decompose(g, id),
        Op::DynamicQuantizeLinear {} => quant::decompose_dynamic(g, id),
        _ => {}
    }
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
        self.f32(suffix, Op::Transpose { perm }, vec![x], dims)
    }
}

/// Moves the readers of `id`'s output `port` (consumers and graph outputs) to `to`.
fn redirect(g: &mut Graph, id: NodeId, port: u32, to: ValueRef) {
    for (consumer, slot, p) in g.consumers(id) {
        if p == port {
            g.set_input(consumer, slot as usize, Some(to));
        }
    }
    for o in &mut g.outputs {
        if o.value == (ValueRef { node: id, port }) {
            o.value = to;
        }
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
            redirect(g, id, (i + 1) as u32, to);
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
