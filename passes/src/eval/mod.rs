//! The reference evaluator: the numeric oracle every rewrite and kernel is checked against.
//!
//! It is written to be obviously correct, with exact ONNX semantics (broadcasting, negative
//! axes, per-opset behaviour as normalized by the importer), on ndarray. It is not written to
//! be fast, except that matrix products use ndarray's GEMM. One file per op family:
//! `elementwise` (unary, binary, comparison, cast), `shape` (data movement, reductions,
//! softmax), `nn` (linear algebra, convolution, pooling, normalization, resize), `misc`
//! (recurrent, control flow, signal, losses, attention, sampling).
//!
//! Each family exposes `eval(op, inputs, n_outputs)`; the routing below is an exhaustive
//! match, so a new `Op` variant does not compile until it is routed.

use std::collections::HashMap;

use crate::ir::{Graph, NodeId, Op, Tensor, ValueRef};

pub mod blocked;
pub mod compare;
mod elementwise;
pub mod fused;
mod misc;
pub mod random;
pub use compare::compare;
pub use misc::rnn::{
    config as recurrent_config, Act as RecurrentAct, Cell as RecurrentCell,
    Config as RecurrentConfig,
};
pub use nn::resize::{axis_taps, ResizeParams, Taps};
pub use random::random_inputs;
mod nn;
mod shape;
pub mod util;

/// An evaluation error, naming the node and op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("node '{node}' ({op}): {reason}")]
pub struct EvalError {
    /// Node name.
    pub node: String,
    /// ONNX op type.
    pub op: String,
    /// What went wrong.
    pub reason: String,
}

/// Evaluates one op on its inputs (`None` for absent optional inputs), producing
/// `n_outputs` outputs. Errors are plain reasons; [`eval_graph`] adds the node.
pub fn eval_op(
    op: &Op,
    inputs: &[Option<&Tensor>],
    n_outputs: usize,
) -> Result<Vec<Tensor>, String> {
    match op {
        Op::Input { .. } => Err("graph inputs are bound by the caller, not evaluated".into()),
        Op::Constant { value } => Ok(vec![value.clone()]),
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
        | Op::BitCast { .. } => elementwise::eval(op, inputs, n_outputs),
        Op::Shape { .. }
        | Op::Size { .. }
        | Op::Reshape { .. }
        | Op::Flatten { .. }
        | Op::Transpose { .. }
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. }
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Slice { .. }
        | Op::Gather { .. }
        | Op::GatherElements { .. }
        | Op::GatherND { .. }
        | Op::ScatterElements { .. }
        | Op::ScatterND { .. }
        | Op::Expand { .. }
        | Op::Tile { .. }
        | Op::Pad { .. }
        | Op::Range { .. }
        | Op::OneHot { .. }
        | Op::NonZero { .. }
        | Op::Compress { .. }
        | Op::Trilu { .. }
        | Op::EyeLike { .. }
        | Op::ConstantOfShape { .. }
        | Op::DepthToSpace { .. }
        | Op::SpaceToDepth { .. }
        | Op::ReverseSequence { .. }
        | Op::TopK { .. }
        | Op::Unique { .. }
        | Op::CumSum { .. }
        | Op::CumProd { .. }
        | Op::CenterCropPad { .. }
        | Op::ReduceSum { .. }
        | Op::ReduceMean { .. }
        | Op::ReduceMax { .. }
        | Op::ReduceMin { .. }
        | Op::ReduceProd { .. }
        | Op::ReduceL1 { .. }
        | Op::ReduceL2 { .. }
        | Op::ReduceLogSum { .. }
        | Op::ReduceLogSumExp { .. }
        | Op::ReduceSumSquare { .. }
        | Op::ArgMax { .. }
        | Op::ArgMin { .. }
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Hardmax { .. } => shape::eval(op, inputs, n_outputs),
        Op::MatMul { .. }
        | Op::Gemm { .. }
        | Op::Einsum { .. }
        | Op::MatMulInteger { .. }
        | Op::QLinearMatMul { .. }
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. }
        | Op::DynamicQuantizeLinear { .. }
        | Op::Det { .. }
        | Op::Conv { .. }
        | Op::ConvInteger { .. }
        | Op::ConvTranspose { .. }
        | Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::LpPool { .. }
        | Op::GlobalAveragePool { .. }
        | Op::GlobalMaxPool { .. }
        | Op::GlobalLpPool { .. }
        | Op::MaxUnpool { .. }
        | Op::Lrn { .. }
        | Op::BatchNormalization { .. }
        | Op::InstanceNormalization { .. }
        | Op::LayerNormalization { .. }
        | Op::GroupNormalization { .. }
        | Op::RmsNormalization { .. }
        | Op::LpNormalization { .. }
        | Op::MeanVarianceNormalization { .. }
        | Op::Dropout { .. }
        | Op::Resize { .. }
        | Op::Upsample { .. }
        | Op::Col2Im { .. } => nn::eval(op, inputs, n_outputs),
        Op::GridSample { .. }
        | Op::AffineGrid { .. }
        | Op::RoiAlign { .. }
        | Op::NonMaxSuppression { .. }
        | Op::SoftmaxCrossEntropyLoss { .. }
        | Op::NegativeLogLikelihoodLoss { .. }
        | Op::Attention { .. }
        | Op::RotaryEmbedding { .. }
        | Op::Lstm { .. }
        | Op::Gru { .. }
        | Op::Rnn { .. }
        | Op::If { .. }
        | Op::Loop { .. }
        | Op::Scan { .. }
        | Op::HannWindow { .. }
        | Op::HammingWindow { .. }
        | Op::BlackmanWindow { .. }
        | Op::Dft { .. } => misc::eval(op, inputs, n_outputs),
        Op::FusedConv { .. } | Op::FusedMatMul { .. } => fused::eval(op, inputs),
        Op::FusedSoftmax { axis } => fused::softmax(*axis, inputs),
        Op::ReorderToBlocked { .. }
        | Op::ReorderFromBlocked { .. }
        | Op::BlockedConv { .. }
        | Op::BlockedMaxPool { .. }
        | Op::BlockedAveragePool { .. }
        | Op::BlockedGlobalAveragePool { .. } => blocked::eval(op, inputs),
        Op::FusedElementwise { body } => {
            let args: Vec<Option<Tensor>> = inputs.iter().map(|t| t.cloned()).collect();
            eval_graph(body, &args).map_err(|e| format!("in the fused body: {e}"))
        }
    }
}

/// Evaluates a graph on its inputs, given in signature order. An absent input (`None`)
/// takes the input's default (its initializer) and is an error when it has none.
pub fn eval_graph(g: &Graph, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, EvalError> {
    let err = |id: NodeId, reason: String| {
        let n = g.node(id);
        EvalError {
            node: n.display_name(),
            op: n.op.onnx_name().to_string(),
            reason,
        }
    };
    if inputs.len() > g.inputs.len() {
        return Err(EvalError {
            node: g.name.clone(),
            op: "graph".into(),
            reason: format!(
                "{} inputs given, the graph takes {}",
                inputs.len(),
                g.inputs.len()
            ),
        });
    }
    // Remaining uses of each value, so that intermediates are freed as soon as possible.
    let mut uses: HashMap<ValueRef, usize> = HashMap::new();
    for (_, n) in g.nodes() {
        for v in n.inputs.iter().flatten() {
            *uses.entry(*v).or_default() += 1;
        }
    }
    for o in &g.outputs {
        *uses.entry(o.value).or_default() += 1;
    }
    let mut values: HashMap<ValueRef, Tensor> = HashMap::new();
    for (i, &id) in g.inputs.iter().enumerate() {
        let node = g.node(id);
        let given = inputs.get(i).cloned().flatten();
        let t = match (given, &node.op) {
            (Some(t), _) => t,
            (None, Op::Input { default: Some(d) }) => d.clone(),
            (None, _) => {
                return Err(err(
                    id,
                    format!(
                        "input '{}' was not given and has no default",
                        node.outputs[0].name
                    ),
                ))
            }
        };
        values.insert(ValueRef { node: id, port: 0 }, t);
    }
    for (id, node) in g.nodes() {
        if matches!(node.op, Op::Input { .. }) {
            continue;
        }
        let mut args: Vec<Option<&Tensor>> = Vec::with_capacity(node.inputs.len());
        for (slot, v) in node.inputs.iter().enumerate() {
            match v {
                None => args.push(None),
                Some(v) => match values.get(v) {
                    Some(t) => args.push(Some(t)),
                    None => {
                        return Err(err(
                            id,
                            format!("input {slot} is not computed before this node"),
                        ))
                    }
                },
            }
        }
        let outs = eval_op(&node.op, &args, node.outputs.len()).map_err(|r| err(id, r))?;
        if outs.len() != node.outputs.len() {
            return Err(err(
                id,
                format!(
                    "produced {} outputs, expected {}",
                    outs.len(),
                    node.outputs.len()
                ),
            ));
        }
        for v in node.inputs.iter().flatten() {
            if let Some(u) = uses.get_mut(v) {
                *u -= 1;
                if *u == 0 {
                    values.remove(v);
                }
            }
        }
        for (port, t) in outs.into_iter().enumerate() {
            let v = ValueRef {
                node: id,
                port: port as u32,
            };
            if uses.get(&v).copied().unwrap_or(0) > 0 {
                values.insert(v, t);
            }
        }
    }
    g.outputs
        .iter()
        .map(|o| {
            values.get(&o.value).cloned().ok_or_else(|| EvalError {
                node: g.name.clone(),
                op: "graph".into(),
                reason: format!("output '{}' was not computed", o.name),
            })
        })
        .collect()
}
