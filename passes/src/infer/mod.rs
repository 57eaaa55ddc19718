//! Shape and dtype inference: the element type and shape of every value.
//!
//! Each op has a rule in the style of tract's `output_facts`: from the facts known about its
//! inputs (type, and value when constant) it computes its output types, checking what it
//! reads (`"inputs f32[2,3] and f32[4] do not broadcast"`). Rules never fail for lack of
//! information: an unknown shape-like input yields the best partial shape (rank known if
//! possible, unknown dims). Symbolic dims propagate where equal symbols meet.
//!
//! [`infer_graph`] walks a graph in order, propagating small constant values (so that shape
//! arithmetic such as `Shape -> Gather -> Concat -> Reshape` resolves to exact shapes), and
//! merges each inferred type with the one the graph already records (declared by the model).
//!
//! Modules: `dims` (dim algebra), `ops` (element-wise, data movement, reductions), `nn`
//! (linear algebra, convolution, normalization, recurrent, ...), `control` (If, Loop,
//! Scan), `shape_arith` (direct evaluation of small shape computations), `shape_inputs` (the
//! graph inputs whose values decide shapes).

mod blocked;
mod control;
mod dims;
mod nn;
mod ops;
mod shape_arith;
mod shape_inputs;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use shape_inputs::{shape_inputs, shape_operands};

use crate::ir::{DType, Dim, Graph, NodeId, Op, Shape, Tensor, TypeInfo, ValueRef};
use dims::{req, ty, unify_shape, Res};
use nn::{ConvAttrs, ConvTransposeAttrs, Window};

/// What inference knows about one input value: its type, and its value when it is a known
/// constant (so that shape arithmetic such as `Shape -> Gather -> Concat -> Reshape` resolves).
#[derive(Clone, Copy, Debug)]
pub struct Fact<'a> {
    /// Element type and shape.
    pub ty: &'a TypeInfo,
    /// The value, when known at compile time.
    pub value: Option<&'a Tensor>,
}

/// An inference error, naming the node and op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("node '{node}' ({op}): {reason}")]
pub struct InferError {
    /// Node name.
    pub node: String,
    /// ONNX op type.
    pub op: String,
    /// What went wrong.
    pub reason: String,
}

/// Largest number of elements a value may have for constant propagation to compute it
/// (inputs and outputs alike).
pub const FOLD_LIMIT: usize = 1024;

/// Infers the output types of one op: exactly `n_outputs` of them. `inputs[i]` is `None`
/// for an absent optional input. Errors are plain reasons; [`infer_graph`] adds the node.
pub fn infer_op(
    op: &Op,
    inputs: &[Option<Fact<'_>>],
    n_outputs: usize,
) -> Result<Vec<TypeInfo>, String> {
    let mut out = rule(op, inputs, n_outputs)?;
    if out.len() < n_outputs {
        return Err(format!(
            "{} has at most {} outputs, the node declares {n_outputs}",
            op.onnx_name(),
            out.len()
        ));
    }
    out.truncate(n_outputs);
    Ok(out)
}

/// The per-op rules. Ops with optional outputs return all of them; [`infer_op`] keeps the
/// ones the node declares.
fn rule(op: &Op, ins: &[Option<Fact<'_>>], n: usize) -> Res<Vec<TypeInfo>> {
    use ops::*;
    let one = |t: Res<TypeInfo>| t.map(|t| vec![t]);
    match op {
        Op::Input { default } => match default {
            Some(t) => one(Ok(ty(t.dtype(), Shape::known(t.shape())))),
            None => Err("graph inputs take the type recorded on their node".into()),
        },
        Op::Constant { value } => one(Ok(ty(value.dtype(), Shape::known(value.shape())))),

        Op::Identity {}
        | Op::Abs {}
        | Op::Neg {}
        | Op::Exp {}
        | Op::Log {}
        | Op::Sqrt {}
        | Op::Reciprocal {}
        | Op::Floor {}
        | Op::Ceil {}
        | Op::Round {}
        | Op::Sign {}
        | Op::Sin {}
        | Op::Cos {}
        | Op::Tan {}
        | Op::Asin {}
        | Op::Acos {}
        | Op::Atan {}
        | Op::Sinh {}
        | Op::Cosh {}
        | Op::Asinh {}
        | Op::Acosh {}
        | Op::Atanh {}
        | Op::Tanh {}
        | Op::Sigmoid {}
        | Op::Erf {}
        | Op::Relu {}
        | Op::Softplus {}
        | Op::Softsign {}
        | Op::Mish {}
        | Op::HardSwish {}
        | Op::Not {}
        | Op::BitwiseNot {}
        | Op::LeakyRelu { .. }
        | Op::Elu { .. }
        | Op::Selu { .. }
        | Op::Celu { .. }
        | Op::HardSigmoid { .. }
        | Op::ThresholdedRelu { .. }
        | Op::Shrink { .. }
        | Op::Gelu { .. }
        | Op::Swish { .. }
        | Op::Clip {}
        | Op::Trilu { .. }
        | Op::ScatterElements { .. }
        | Op::ScatterND { .. }
        | Op::ReverseSequence { .. }
        | Op::Lrn { .. }
        | Op::InstanceNormalization { .. }
        | Op::MeanVarianceNormalization { .. }
        | Op::RotaryEmbedding { .. } => one(same(ins, 0)),
        Op::CumSum { .. } | Op::CumProd { .. } => one(same(ins, 0)),
        Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } | Op::Hardmax { axis, .. } => {
            one(same_with_axis(ins, *axis))
        }
        Op::LpNormalization { axis, .. } => one(same_with_axis(ins, *axis)),
        Op::IsNaN {} | Op::IsInf { .. } => one(same_shape(ins, 0, DType::Bool)),
        Op::Cast { to, .. } => one(same_shape(ins, 0, *to)),
        Op::CastLike { .. } => one(same_shape(ins, 0, req(ins, 1)?.dtype())),
        Op::BitCast { to } => one(bit_cast(ins, *to)),
        Op::GatherElements { axis } => {
            let (x, i) = (req(ins, 0)?, req(ins, 1)?);
            if let (Some(a), Some(b)) = (x.rank(), i.rank()) {
                if a != b {
                    return Err(format!("data {} and indices {} differ in rank", x.ty, i.ty));
                }
                dims::norm_axis(*axis, a)?;
            }
            one(Ok(ty(x.dtype(), i.ty.shape.clone())))
        }

        Op::Add {}
        | Op::Sub {}
        | Op::Mul {}
        | Op::Div {}
        | Op::Mod { .. }
        | Op::Max {}
        | Op::Min {}
        | Op::Sum {}
        | Op::Mean {}
        | Op::BitShift { .. }
        | Op::BitwiseAnd {}
        | Op::BitwiseOr {}
        | Op::BitwiseXor {} => one(broadcast_all(ins, true, None)),
        Op::Pow {} | Op::PRelu {} => one(broadcast_all(ins, false, None)),
        Op::And {} | Op::Or {} | Op::Xor {} => one(broadcast_all(ins, true, Some(DType::Bool))),
        Op::Equal {}
        | Op::Less {}
        | Op::LessOrEqual {}
        | Op::Greater {}
        | Op::GreaterOrEqual {} => one(broadcast_all(ins, true, Some(DType::Bool))),
        Op::Where {} => one(where_(ins)),

        Op::Shape { start, end } => one(shape(ins, *start, *end)),
        Op::Size {} => {
            req(ins, 0)?;
            one(Ok(ty(DType::I64, Shape::Ranked(vec![]))))
        }
        Op::Reshape { allowzero } => one(reshape(ins, *allowzero)),
        Op::Flatten { axis } => one(flatten(ins, *axis)),
        Op::Transpose { perm } => one(transpose(ins, perm)),
        Op::Squeeze {} => one(squeeze(ins)),
        Op::Unsqueeze {} => one(unsqueeze(ins)),
        Op::Concat { axis } => one(concat(ins, *axis)),
        Op::Split { axis, num_outputs } => split(ins, *axis, *num_outputs, n),
        Op::Slice {} => one(slice(ins)),
        Op::Gather { axis } => one(gather(ins, *axis)),
        Op::GatherND { batch_dims } => one(gather_nd(ins, *batch_dims)),
        Op::Expand {} => one(expand(ins)),
        Op::Tile {} => one(tile(ins)),
        Op::Pad { .. } => one(pad(ins)),
        Op::Range {} => one(range(ins)),
        Op::OneHot { axis } => one(one_hot(ins, *axis)),
        Op::NonZero {} => one(non_zero(ins)),
        Op::Compress { axis } => one(compress(ins, *axis)),
        Op::EyeLike { dtype, .. } => one(eye_like(ins, *dtype)),
        Op::ConstantOfShape { value } => one(constant_of_shape(ins, value)),
        Op::DepthToSpace { blocksize, .. } => one(depth_space(ins, *blocksize, true)),
        Op::SpaceToDepth { blocksize } => one(depth_space(ins, *blocksize, false)),
        Op::TopK { axis, .. } => top_k(ins, *axis),
        Op::Unique { axis, .. } => unique(ins, *axis),
        Op::CenterCropPad { axes } => one(center_crop_pad(ins, axes)),

        Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceProd {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceL1 {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceL2 {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceLogSum {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceLogSumExp {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceSumSquare {
            keepdims,
            noop_with_empty_axes,
        } => one(reduce(ins, *keepdims, *noop_with_empty_axes)),
        Op::ArgMax { axis, keepdims, .. } | Op::ArgMin { axis, keepdims, .. } => {
            one(arg_reduce(ins, *axis, *keepdims))
        }

        Op::MatMul {} => one(nn::matmul(ins, 0, 1, None)),
        Op::MatMulInteger {} => one(nn::matmul(ins, 0, 1, Some(DType::I32))),
        Op::QLinearMatMul {} => {
            let zp = req(ins, 7)?.dtype();
            one(nn::matmul(ins, 0, 3, Some(zp)))
        }
        Op::Gemm {
            trans_a, trans_b, ..
        } => one(nn::gemm(ins, *trans_a, *trans_b)),
        Op::Einsum { equation } => one(nn::einsum(ins, equation)),
        Op::QuantizeLinear { output_dtype, .. } => {
            let dtype = match dims::opt(ins, 2) {
                Some(zp) => zp.dtype(),
                None if *output_dtype != 0 => onnx_dtype(*output_dtype)?,
                None => DType::U8,
            };
            one(same_shape(ins, 0, dtype))
        }
        Op::DequantizeLinear { output_dtype, .. } => {
            let dtype = if *output_dtype != 0 {
                onnx_dtype(*output_dtype)?
            } else {
                req(ins, 1)?.dtype()
            };
            one(same_shape(ins, 0, dtype))
        }
        Op::DynamicQuantizeLinear {} => {
            let scalar = Shape::Ranked(vec![]);
            Ok(vec![
                same_shape(ins, 0, DType::U8)?,
                ty(DType::F32, scalar.clone()),
                ty(DType::U8, scalar),
            ])
        }
        Op::Det {} => {
            let x = req(ins, 0)?;
            let shape = match x.dims() {
                Some(d) if d.len() >= 2 => {
                    let (a, b) = (&d[d.len() - 2], &d[d.len() - 1]);
                    if dims::unify(a, b).is_none() {
                        return Err(format!("Det needs square matrices, got {}", x.ty));
                    }
                    Shape::Ranked(d[..d.len() - 2].to_vec())
                }
                Some(_) => return Err(format!("Det needs rank 2 or more, got {}", x.ty)),
                None => Shape::Unranked,
            };
            one(Ok(ty(x.dtype(), shape)))
        }

        Op::Conv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        }
        | Op::ConvInteger {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        } => {
            let w = Window {
                auto_pad: *auto_pad,
                kernel: kernel_shape,
                pads,
                strides,
                dilations,
                ceil_mode: false,
            };
            let out = matches!(op, Op::ConvInteger { .. }).then_some(DType::I32);
            one(nn::conv(ins, ConvAttrs { w, group: *group }, out))
        }
        Op::ConvTranspose {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            output_padding,
            output_shape,
            pads,
            strides,
        } => {
            let w = Window {
                auto_pad: *auto_pad,
                kernel: kernel_shape,
                pads,
                strides,
                dilations,
                ceil_mode: false,
            };
            one(nn::conv_transpose(
                ins,
                ConvTransposeAttrs {
                    w,
                    group: *group,
                    output_padding,
                    output_shape,
                },
            ))
        }
        Op::MaxPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        }
        | Op::AveragePool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        }
        | Op::LpPool {
            auto_pad,
            ceil_mode,
            dilations,
            kernel_shape,
            pads,
            strides,
            ..
        } => {
            let w = Window {
                auto_pad: *auto_pad,
                kernel: kernel_shape,
                pads,
                strides,
                dilations,
                ceil_mode: *ceil_mode != 0,
            };
            nn::pool(ins, w)
        }
        Op::GlobalAveragePool {} | Op::GlobalMaxPool {} | Op::GlobalLpPool { .. } => {
            one(nn::global_pool(ins))
        }
        Op::MaxUnpool {
            kernel_shape,
            pads,
            strides,
        } => one(nn::max_unpool(ins, kernel_shape, pads, strides)),
        Op::BatchNormalization { .. } => nn::batch_norm(ins),
        Op::LayerNormalization {
            axis, stash_type, ..
        } => nn::layer_norm(ins, *axis, *stash_type),
        Op::GroupNormalization { .. } | Op::RmsNormalization { .. } => one(same(ins, 0)),
        Op::Dropout { .. } => {
            let x = req(ins, 0)?;
            Ok(vec![x.ty.clone(), ty(DType::Bool, x.ty.shape.clone())])
        }
        Op::Resize {
            axes,
            keep_aspect_ratio_policy,
            ..
        } => one(nn::resize(ins, axes, keep_aspect_ratio_policy)),
        Op::Upsample { .. } => one(nn::upsample(ins)),
        Op::GridSample { .. } => one(nn::grid_sample(ins)),
        Op::AffineGrid { .. } => one(nn::affine_grid(ins)),
        Op::Col2Im { .. } => one(nn::col2im(ins)),
        Op::RoiAlign {
            output_height,
            output_width,
            ..
        } => one(nn::roi_align(ins, *output_height, *output_width)),
        Op::NonMaxSuppression { .. } => one(Ok(ty(
            DType::I64,
            Shape::Ranked(vec![Dim::Unknown, Dim::Known(3)]),
        ))),
        Op::SoftmaxCrossEntropyLoss { reduction, .. }
        | Op::NegativeLogLikelihoodLoss { reduction, .. } => nn::loss(ins, reduction),
        Op::Attention {
            q_num_heads,
            kv_num_heads,
            ..
        } => nn::attention(ins, *q_num_heads, *kv_num_heads),

        Op::Lstm {
            hidden_size,
            direction,
            layout,
            ..
        }
        | Op::Gru {
            hidden_size,
            direction,
            layout,
            ..
        }
        | Op::Rnn {
            hidden_size,
            direction,
            layout,
            ..
        } => nn::recurrent(ins, *hidden_size, direction, *layout),

        Op::If {
            then_branch,
            else_branch,
        } => control::if_(ins, then_branch, else_branch, n),
        Op::Loop { body, num_captures } => control::loop_(ins, body, *num_captures, n),
        Op::Scan {
            body,
            num_captures,
            num_scan_inputs,
            scan_input_axes,
            scan_output_axes,
            ..
        } => {
            let a = control::ScanAttrs {
                num_captures: *num_captures,
                num_scan_inputs: *num_scan_inputs,
                input_axes: scan_input_axes,
                output_axes: scan_output_axes,
            };
            control::scan(ins, body, a, n)
        }

        Op::HannWindow {
            output_datatype, ..
        }
        | Op::HammingWindow {
            output_datatype, ..
        }
        | Op::BlackmanWindow {
            output_datatype, ..
        } => one(nn::window_fn(ins, *output_datatype)),
        Op::Dft {
            inverse,
            onesided,
            axis,
        } => one(nn::dft(ins, *axis, *onesided, *inverse)),
        Op::FusedConv { .. } | Op::FusedMatMul { .. } => one(fused(op, ins)),
        Op::ReorderToBlocked { block } => one(blocked::to_blocked(req(ins, 0)?.ty, *block)),
        Op::ReorderFromBlocked { block, channels } => {
            one(blocked::from_blocked(req(ins, 0)?.ty, *block, *channels))
        }
        Op::BlockedConv { .. }
        | Op::BlockedMaxPool { .. }
        | Op::BlockedAveragePool { .. }
        | Op::BlockedGlobalAveragePool { .. } => one(blocked::blocked_op(op, ins)),
        Op::FusedSoftmax { axis } => {
            let sum = rule(&Op::Add {}, ins, 1)?.remove(0);
            let f = Fact {
                ty: &sum,
                value: None,
            };
            let softmax = Op::Softmax {
                axis: *axis,
                coerce_2d: false,
            };
            rule(&softmax, &[Some(f)], n)
        }
        Op::FusedElementwise { body } => {
            let seeds: Vec<Option<TypeInfo>> =
                ins.iter().map(|f| f.map(|f| f.ty.clone())).collect();
            control::infer_body(body, &seeds, "fused body")
        }
    }
}

/// A fused op's type: its standard ops' types, in order (see `ir::fused`).
fn fused(op: &Op, ins: &[Option<Fact<'_>>]) -> Res<TypeInfo> {
    let u = op.unfuse().expect("called on fused ops")?;
    let main = &ins[..ins.len().min(u.main_inputs)];
    let mut y = rule(&u.main, main, 1)?.remove(0);
    for extra in u.bias_input.into_iter().chain([u.residual_input]) {
        if let Some(Some(f)) = ins.get(extra) {
            let prev = Fact {
                ty: &y,
                value: None,
            };
            y = rule(&Op::Add {}, &[Some(prev), Some(*f)], 1)?.remove(0);
        }
    }
    Ok(y)
}

/// An element type from an ONNX code attribute.
fn onnx_dtype(code: i64) -> Res<DType> {
    i32::try_from(code)
        .ok()
        .and_then(DType::from_onnx)
        .ok_or_else(|| {
            format!(
                "unsupported element type {code} ({})",
                DType::onnx_code_name(code as i32)
            )
        })
}

/// `BitCast`: same shape when the element sizes agree; otherwise the last dim scales.
fn bit_cast(ins: &[Option<Fact<'_>>], to: DType) -> Res<TypeInfo> {
    let x = req(ins, 0)?;
    let (from_size, to_size) = (x.dtype().size(), to.size());
    if x.dtype() == DType::String || to == DType::String {
        return Err("BitCast does not apply to strings".into());
    }
    if from_size == to_size {
        return Ok(ty(to, x.ty.shape.clone()));
    }
    let Some(d) = x.dims() else {
        return Ok(ty(to, Shape::Unranked));
    };
    let mut out = d.to_vec();
    if from_size > to_size {
        out.push(Dim::Known(from_size / to_size));
    } else {
        match out.last() {
            Some(Dim::Known(k)) if *k == to_size / from_size => {
                out.pop();
            }
            Some(Dim::Known(_)) | None => return Err(format!("cannot bit-cast {} to {to}", x.ty)),
            Some(_) => {
                out.pop();
            }
        }
    }
    Ok(ty(to, Shape::Ranked(out)))
}

/// A node's name for errors: its own name, or else its first output's.
fn node_label(g: &Graph, id: NodeId) -> String {
    let n = g.node(id);
    match (n.name.is_empty(), n.outputs.first()) {
        (true, Some(o)) => o.name.clone(),
        _ => n.name.clone(),
    }
}

/// Merges an inferred type with the declared one: the more precise of the two, or `None`
/// when they disagree on the element type, the rank or a known dim.
fn merge_declared(inferred: &TypeInfo, declared: &TypeInfo) -> Option<TypeInfo> {
    if inferred.dtype != declared.dtype {
        return None;
    }
    // Declared first: on two different symbols, the model's own name is kept.
    unify_shape(&declared.shape, &inferred.shape).map(|s| ty(inferred.dtype, s))
}

/// Whether constant propagation may evaluate this op (not the ones that are random, may
/// run long, or take their values from the caller).
fn foldable(op: &Op) -> bool {
    !matches!(
        op,
        Op::Input { .. } | Op::Dropout { .. } | Op::Loop { .. } | Op::Scan { .. }
    )
}

/// The values of a node's outputs, when constant propagation can compute them: `Shape` and
/// `Size` from known shapes, anything else from known small inputs (at most [`FOLD_LIMIT`]
/// elements in all) with known small outputs (`outs`, as [`infer_op`] gave them). Shape
/// arithmetic is computed directly; other ops go through `eval::eval_op`, and an
/// evaluation failure just means "unknown". Never allocates more than the limits allow.
pub fn fold(op: &Op, facts: &[Option<Fact<'_>>], outs: &[TypeInfo]) -> Option<Vec<Tensor>> {
    match op {
        Op::Shape { start, end } => {
            let x = facts.first().copied().flatten()?;
            let d = x.dims()?;
            let (s, e) = ops::shape_range(d.len(), *start, *end);
            let v: Vec<i64> = d
                .get(s..e)
                .unwrap_or(&[])
                .iter()
                .map(|d| d.known().map(|k| k as i64))
                .collect::<Option<_>>()?;
            return Tensor::from_vec(&[v.len()], v).ok().map(|t| vec![t]);
        }
        Op::Size {} => {
            let n = facts.first().copied().flatten()?.ty.shape.num_elements()?;
            return Some(vec![Tensor::scalar(i64::try_from(n).ok()?)]);
        }
        _ if !foldable(op) => return None,
        _ => {}
    }
    let mut args: Vec<Option<&Tensor>> = Vec::with_capacity(facts.len());
    let mut total = 0usize;
    for f in facts {
        match f {
            None => args.push(None),
            Some(f) => {
                let v = f.value?;
                total = total.saturating_add(v.len());
                args.push(Some(v));
            }
        }
    }
    if total > FOLD_LIMIT
        || outs
            .iter()
            .any(|t| t.shape.num_elements().is_none_or(|n| n > FOLD_LIMIT))
    {
        return None;
    }
    let values = shape_arith::eval(op, &args, outs)
        .or_else(|| crate::eval::eval_op(op, &args, outs.len()).ok())?;
    let fits = values.len() == outs.len()
        && values.iter().zip(outs).all(|(v, t)| {
            v.dtype() == t.dtype && unify_shape(&Shape::known(v.shape()), &t.shape).is_some()
        });
    fits.then_some(values)
}

/// Infers the type of every node output in the graph, in order, refining what the graph
/// already records. Graph inputs keep their recorded type (refined by their default, whose
/// value constant propagation uses); every other output gets the inferred type merged with
/// the recorded (declared) one, and a disagreement is an error.
pub fn infer_graph(g: &mut Graph) -> Result<(), InferError> {
    let mut values: HashMap<ValueRef, Tensor> = HashMap::new();
    let ids: Vec<NodeId> = g.node_ids().to_vec();
    for id in ids {
        let node = g.node(id);
        if let Op::Input { default } = &node.op {
            // An initializer listed as a graph input (all of them before ONNX IR 4) is taken
            // at its value: compiled code is specialized to it.
            if let Some(t) = default {
                let exact = ty(t.dtype(), Shape::known(t.shape()));
                let refined = merge_declared(&exact, &node.outputs[0].ty);
                let t = t.clone();
                if let Some(r) = refined {
                    g.node_mut(id).outputs[0].ty = r;
                }
                values.insert(ValueRef { node: id, port: 0 }, t);
            }
            continue;
        }
        let err = |reason: String| InferError {
            node: node_label(g, id),
            op: node.op.onnx_name().to_string(),
            reason,
        };
        let facts: Vec<Option<Fact<'_>>> = node
            .inputs
            .iter()
            .map(|v| {
                v.map(|v| Fact {
                    ty: g.ty(v),
                    value: values.get(&v),
                })
            })
            .collect();
        let (inferred, computed) = match &node.op {
            Op::Constant { value } => (
                vec![ty(value.dtype(), Shape::known(value.shape()))],
                Some(vec![value.clone()]),
            ),
            op => {
                let inferred = infer_op(op, &facts, node.outputs.len()).map_err(err)?;
                let computed = fold(op, &facts, &inferred);
                (inferred, computed)
            }
        };
        let mut merged = Vec::with_capacity(inferred.len());
        for (port, inf) in inferred.iter().enumerate() {
            let exact;
            let inf = match computed.as_ref().and_then(|c| c.get(port)) {
                Some(v) => {
                    exact = ty(v.dtype(), Shape::known(v.shape()));
                    &exact
                }
                None => inf,
            };
            let out = &node.outputs[port];
            let m = merge_declared(inf, &out.ty).ok_or_else(|| {
                err(format!(
                    "inferred {inf} but the model declares {} for value '{}'",
                    out.ty, out.name
                ))
            })?;
            merged.push(m);
        }
        let node = g.node_mut(id);
        for (o, m) in node.outputs.iter_mut().zip(merged) {
            o.ty = m;
        }
        for (port, v) in computed.into_iter().flatten().enumerate() {
            values.insert(
                ValueRef {
                    node: id,
                    port: port as u32,
                },
                v,
            );
        }
    }
    Ok(())
}
