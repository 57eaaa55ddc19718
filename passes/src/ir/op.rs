//! The one operator vocabulary of graphc.
//!
//! Every op is a variant of [`Op`] with typed attribute fields. The table below is the only
//! place ops are listed: it yields the enum, the text-format name (snake_case), the ONNX
//! `op_type`, attribute defaults, and conversion from/to attribute bags for the importer,
//! the text parser and the printer. Inputs are positional (optional inputs may be absent);
//! where ONNX moved an attribute to an input across opsets (Reduce* `axes`, Split `split`,
//! Clip bounds, Pad `pads`, Slice `starts`/`ends`), the IR uses the input form and the
//! importer converts older models.

use super::attr::{AttrType, Attrs, AutoPad};
use super::graph::Graph;
use super::tensor::Tensor;
use super::types::DType;

/// An error building an op from attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! field_value {
    ($attrs:ident, $name:expr, $ty:ty, ) => {
        match $attrs.take_as::<$ty>($name).map_err(BuildError)? {
            Some(v) => v,
            None => {
                return Err(BuildError(format!(
                    "missing required attribute '{}'",
                    $name
                )))
            }
        }
    };
    ($attrs:ident, $name:expr, $ty:ty, $default:expr) => {
        match $attrs.take_as::<$ty>($name).map_err(BuildError)? {
            Some(v) => v,
            None => <$ty as From<_>>::from($default),
        }
    };
}

macro_rules! field_is_default {
    ($v:expr, $ty:ty, ) => {
        false
    };
    ($v:expr, $ty:ty, $default:expr) => {
        *$v == <$ty as From<_>>::from($default)
    };
}

macro_rules! define_ops {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $text:literal / $onnx:literal { $( $field:ident : $ty:ty $(= $default:expr)? ),* $(,)? }
    )*) => {
        /// An operator with its attributes. See the module docs.
        #[derive(Clone, Debug, PartialEq)]
        #[allow(missing_docs)]
        pub enum Op {
            $( $(#[$doc])* $variant { $( $field: $ty ),* }, )*
        }

        impl Op {
            /// The text-format name (snake_case ONNX name, or graphc's own for its ops).
            pub fn name(&self) -> &'static str {
                match self { $( Op::$variant { .. } => $text, )* }
            }

            /// The ONNX `op_type` this op corresponds to (graphc's own ops name themselves).
            pub fn onnx_name(&self) -> &'static str {
                match self { $( Op::$variant { .. } => $onnx, )* }
            }

            /// Text names of every op, in table order.
            pub const TEXT_NAMES: &'static [&'static str] = &[$($text),*];

            /// ONNX names of every op, in table order.
            pub const ONNX_NAMES: &'static [&'static str] = &[$($onnx),*];

            /// Builds an op from its text or ONNX name and attributes, applying defaults.
            /// Returns `Ok(None)` for an unknown name. Attributes left over in `attrs` are the
            /// caller's to report.
            pub fn build(name: &str, attrs: &mut Attrs) -> Result<Option<Op>, BuildError> {
                $(
                    if name == $text || name == $onnx {
                        return Ok(Some(Op::$variant {
                            $( $field: field_value!(attrs, stringify!($field), $ty, $($default)?), )*
                        }));
                    }
                )*
                Ok(None)
            }

            /// The attributes that differ from their defaults, in declaration order.
            pub fn attrs(&self) -> Vec<(&'static str, super::attr::Attr)> {
                #[allow(unused_mut)]
                let mut out = Vec::new();
                match self {
                    $( Op::$variant { $( $field ),* } => {
                        $(
                            if !field_is_default!($field, $ty, $($default)?) {
                                if let Some(a) = AttrType::to_attr($field) {
                                    out.push((stringify!($field), a));
                                }
                            }
                        )*
                    } )*
                }
                out
            }
        }
    };
}

define_ops! {
    // ---- graph structure ----
    /// A graph input. `default` is the initializer a caller may override.
    Input = "input" / "graphc.Input" { default: Option<Tensor> = None }
    /// A constant tensor.
    Constant = "constant" / "Constant" { value: Tensor }
    /// Identity.
    Identity = "identity" / "Identity" {}

    // ---- elementwise unary ----
    Abs = "abs" / "Abs" {}
    Neg = "neg" / "Neg" {}
    Exp = "exp" / "Exp" {}
    Log = "log" / "Log" {}
    Sqrt = "sqrt" / "Sqrt" {}
    Reciprocal = "reciprocal" / "Reciprocal" {}
    Floor = "floor" / "Floor" {}
    Ceil = "ceil" / "Ceil" {}
    Round = "round" / "Round" {}
    Sign = "sign" / "Sign" {}
    Sin = "sin" / "Sin" {}
    Cos = "cos" / "Cos" {}
    Tan = "tan" / "Tan" {}
    Asin = "asin" / "Asin" {}
    Acos = "acos" / "Acos" {}
    Atan = "atan" / "Atan" {}
    Sinh = "sinh" / "Sinh" {}
    Cosh = "cosh" / "Cosh" {}
    Asinh = "asinh" / "Asinh" {}
    Acosh = "acosh" / "Acosh" {}
    Atanh = "atanh" / "Atanh" {}
    Tanh = "tanh" / "Tanh" {}
    Sigmoid = "sigmoid" / "Sigmoid" {}
    Erf = "erf" / "Erf" {}
    Relu = "relu" / "Relu" {}
    Softplus = "softplus" / "Softplus" {}
    Softsign = "softsign" / "Softsign" {}
    Mish = "mish" / "Mish" {}
    HardSwish = "hard_swish" / "HardSwish" {}
    Not = "not" / "Not" {}
    BitwiseNot = "bitwise_not" / "BitwiseNot" {}
    IsNaN = "is_nan" / "IsNaN" {}
    IsInf = "is_inf" / "IsInf" { detect_negative: i64 = 1, detect_positive: i64 = 1 }
    LeakyRelu = "leaky_relu" / "LeakyRelu" { alpha: f32 = 0.01 }
    Elu = "elu" / "Elu" { alpha: f32 = 1.0 }
    Selu = "selu" / "Selu" { alpha: f32 = 1.673_263_2, gamma: f32 = 1.050_701 }
    Celu = "celu" / "Celu" { alpha: f32 = 1.0 }
    HardSigmoid = "hard_sigmoid" / "HardSigmoid" { alpha: f32 = 0.2, beta: f32 = 0.5 }
    ThresholdedRelu = "thresholded_relu" / "ThresholdedRelu" { alpha: f32 = 1.0 }
    Shrink = "shrink" / "Shrink" { bias: f32 = 0.0, lambd: f32 = 0.5 }
    Gelu = "gelu" / "Gelu" { approximate: String = "none" }
    Swish = "swish" / "Swish" { alpha: f32 = 1.0 }
    /// Clip with optional `min` and `max` inputs.
    Clip = "clip" / "Clip" {}
    Cast = "cast" / "Cast" { to: DType, saturate: i64 = 1, round_mode: String = "up" }
    CastLike = "cast_like" / "CastLike" { saturate: i64 = 1, round_mode: String = "up" }

    // ---- elementwise binary / variadic (multidirectional broadcasting) ----
    Add = "add" / "Add" {}
    Sub = "sub" / "Sub" {}
    Mul = "mul" / "Mul" {}
    Div = "div" / "Div" {}
    Pow = "pow" / "Pow" {}
    Mod = "mod" / "Mod" { fmod: i64 = 0 }
    Max = "max" / "Max" {}
    Min = "min" / "Min" {}
    Sum = "sum" / "Sum" {}
    Mean = "mean" / "Mean" {}
    And = "and" / "And" {}
    Or = "or" / "Or" {}
    Xor = "xor" / "Xor" {}
    Equal = "equal" / "Equal" {}
    Less = "less" / "Less" {}
    LessOrEqual = "less_or_equal" / "LessOrEqual" {}
    Greater = "greater" / "Greater" {}
    GreaterOrEqual = "greater_or_equal" / "GreaterOrEqual" {}
    BitShift = "bit_shift" / "BitShift" { direction: String }
    BitwiseAnd = "bitwise_and" / "BitwiseAnd" {}
    BitwiseOr = "bitwise_or" / "BitwiseOr" {}
    BitwiseXor = "bitwise_xor" / "BitwiseXor" {}
    PRelu = "prelu" / "PRelu" {}
    Where = "where" / "Where" {}

    // ---- shape and data movement ----
    Shape = "shape" / "Shape" { start: i64 = 0, end: Option<i64> = None }
    Size = "size" / "Size" {}
    Reshape = "reshape" / "Reshape" { allowzero: i64 = 0 }
    Flatten = "flatten" / "Flatten" { axis: i64 = 1 }
    Transpose = "transpose" / "Transpose" { perm: Option<Vec<i64>> = None }
    /// Squeeze with an optional `axes` input.
    Squeeze = "squeeze" / "Squeeze" {}
    /// Unsqueeze with an `axes` input.
    Unsqueeze = "unsqueeze" / "Unsqueeze" {}
    Concat = "concat" / "Concat" { axis: i64 }
    /// Split with an optional `split` input.
    Split = "split" / "Split" { axis: i64 = 0, num_outputs: Option<i64> = None }
    /// Slice with `starts`, `ends` and optional `axes`, `steps` inputs.
    Slice = "slice" / "Slice" {}
    Gather = "gather" / "Gather" { axis: i64 = 0 }
    GatherElements = "gather_elements" / "GatherElements" { axis: i64 = 0 }
    GatherND = "gather_nd" / "GatherND" { batch_dims: i64 = 0 }
    ScatterElements = "scatter_elements" / "ScatterElements" { axis: i64 = 0, reduction: String = "none" }
    ScatterND = "scatter_nd" / "ScatterND" { reduction: String = "none" }
    Expand = "expand" / "Expand" {}
    Tile = "tile" / "Tile" {}
    /// Pad with `pads` and optional `constant_value`, `axes` inputs.
    Pad = "pad" / "Pad" { mode: String = "constant" }
    Range = "range" / "Range" {}
    OneHot = "one_hot" / "OneHot" { axis: i64 = -1 }
    NonZero = "non_zero" / "NonZero" {}
    Compress = "compress" / "Compress" { axis: Option<i64> = None }
    Trilu = "trilu" / "Trilu" { upper: i64 = 1 }
    EyeLike = "eye_like" / "EyeLike" { dtype: Option<DType> = None, k: i64 = 0 }
    ConstantOfShape = "constant_of_shape" / "ConstantOfShape" { value: Option<Tensor> = None }
    DepthToSpace = "depth_to_space" / "DepthToSpace" { blocksize: i64, mode: String = "DCR" }
    SpaceToDepth = "space_to_depth" / "SpaceToDepth" { blocksize: i64 }
    ReverseSequence = "reverse_sequence" / "ReverseSequence" { batch_axis: i64 = 1, time_axis: i64 = 0 }
    TopK = "top_k" / "TopK" { axis: i64 = -1, largest: i64 = 1, sorted: i64 = 1 }
    Unique = "unique" / "Unique" { axis: Option<i64> = None, sorted: i64 = 1 }
    CumSum = "cum_sum" / "CumSum" { exclusive: i64 = 0, reverse: i64 = 0 }
    CumProd = "cum_prod" / "CumProd" { exclusive: i64 = 0, reverse: i64 = 0 }
    CenterCropPad = "center_crop_pad" / "CenterCropPad" { axes: Option<Vec<i64>> = None }
    BitCast = "bit_cast" / "BitCast" { to: DType }

    // ---- reductions (optional `axes` input) ----
    ReduceSum = "reduce_sum" / "ReduceSum" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceMean = "reduce_mean" / "ReduceMean" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceMax = "reduce_max" / "ReduceMax" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceMin = "reduce_min" / "ReduceMin" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceProd = "reduce_prod" / "ReduceProd" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceL1 = "reduce_l1" / "ReduceL1" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceL2 = "reduce_l2" / "ReduceL2" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceLogSum = "reduce_log_sum" / "ReduceLogSum" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceLogSumExp = "reduce_log_sum_exp" / "ReduceLogSumExp" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ReduceSumSquare = "reduce_sum_square" / "ReduceSumSquare" { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 }
    ArgMax = "arg_max" / "ArgMax" { axis: i64 = 0, keepdims: i64 = 1, select_last_index: i64 = 0 }
    ArgMin = "arg_min" / "ArgMin" { axis: i64 = 0, keepdims: i64 = 1, select_last_index: i64 = 0 }
    /// Softmax; `coerce_2d` is the opset < 13 behaviour (flatten to 2-D at `axis`).
    Softmax = "softmax" / "Softmax" { axis: i64 = -1, coerce_2d: bool = false }
    LogSoftmax = "log_softmax" / "LogSoftmax" { axis: i64 = -1, coerce_2d: bool = false }
    Hardmax = "hardmax" / "Hardmax" { axis: i64 = -1, coerce_2d: bool = false }

    // ---- linear algebra ----
    MatMul = "mat_mul" / "MatMul" {}
    Gemm = "gemm" / "Gemm" { alpha: f32 = 1.0, beta: f32 = 1.0, trans_a: i64 = 0, trans_b: i64 = 0 }
    Einsum = "einsum" / "Einsum" { equation: String }
    MatMulInteger = "mat_mul_integer" / "MatMulInteger" {}
    QLinearMatMul = "q_linear_mat_mul" / "QLinearMatMul" {}
    QuantizeLinear = "quantize_linear" / "QuantizeLinear" { axis: i64 = 1, saturate: i64 = 1, block_size: i64 = 0, output_dtype: i64 = 0, precision: i64 = 0 }
    DequantizeLinear = "dequantize_linear" / "DequantizeLinear" { axis: i64 = 1, block_size: i64 = 0, output_dtype: i64 = 0 }
    DynamicQuantizeLinear = "dynamic_quantize_linear" / "DynamicQuantizeLinear" {}
    Det = "det" / "Det" {}

    // ---- neural network ----
    Conv = "conv" / "Conv" { auto_pad: AutoPad = AutoPad::NotSet, dilations: Vec<i64> = vec![], group: i64 = 1, kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    ConvInteger = "conv_integer" / "ConvInteger" { auto_pad: AutoPad = AutoPad::NotSet, dilations: Vec<i64> = vec![], group: i64 = 1, kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    ConvTranspose = "conv_transpose" / "ConvTranspose" { auto_pad: AutoPad = AutoPad::NotSet, dilations: Vec<i64> = vec![], group: i64 = 1, kernel_shape: Vec<i64> = vec![], output_padding: Vec<i64> = vec![], output_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    MaxPool = "max_pool" / "MaxPool" { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: i64 = 0, dilations: Vec<i64> = vec![], kernel_shape: Vec<i64>, pads: Vec<i64> = vec![], storage_order: i64 = 0, strides: Vec<i64> = vec![] }
    AveragePool = "average_pool" / "AveragePool" { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: i64 = 0, count_include_pad: i64 = 0, dilations: Vec<i64> = vec![], kernel_shape: Vec<i64>, pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    LpPool = "lp_pool" / "LpPool" { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: i64 = 0, dilations: Vec<i64> = vec![], kernel_shape: Vec<i64>, p: i64 = 2, pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    GlobalAveragePool = "global_average_pool" / "GlobalAveragePool" {}
    GlobalMaxPool = "global_max_pool" / "GlobalMaxPool" {}
    GlobalLpPool = "global_lp_pool" / "GlobalLpPool" { p: i64 = 2 }
    MaxUnpool = "max_unpool" / "MaxUnpool" { kernel_shape: Vec<i64>, pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    Lrn = "lrn" / "LRN" { alpha: f32 = 0.0001, beta: f32 = 0.75, bias: f32 = 1.0, size: i64 }
    BatchNormalization = "batch_normalization" / "BatchNormalization" { epsilon: f32 = 1e-5, momentum: f32 = 0.9, training_mode: i64 = 0 }
    InstanceNormalization = "instance_normalization" / "InstanceNormalization" { epsilon: f32 = 1e-5 }
    LayerNormalization = "layer_normalization" / "LayerNormalization" { axis: i64 = -1, epsilon: f32 = 1e-5, stash_type: i64 = 1 }
    GroupNormalization = "group_normalization" / "GroupNormalization" { epsilon: f32 = 1e-5, num_groups: i64, stash_type: i64 = 1 }
    RmsNormalization = "rms_normalization" / "RMSNormalization" { axis: i64 = -1, epsilon: f32 = 1e-5, stash_type: i64 = 1 }
    LpNormalization = "lp_normalization" / "LpNormalization" { axis: i64 = -1, p: i64 = 2 }
    MeanVarianceNormalization = "mean_variance_normalization" / "MeanVarianceNormalization" { axes: Vec<i64> = vec![0, 2, 3] }
    /// Dropout; in inference (no `training_mode` input, or false) it is the identity.
    Dropout = "dropout" / "Dropout" { seed: Option<i64> = None }
    Resize = "resize" / "Resize" { antialias: i64 = 0, axes: Option<Vec<i64>> = None, coordinate_transformation_mode: String = "half_pixel", cubic_coeff_a: f32 = -0.75, exclude_outside: i64 = 0, extrapolation_value: f32 = 0.0, keep_aspect_ratio_policy: String = "stretch", mode: String = "nearest", nearest_mode: String = "round_prefer_floor" }
    Upsample = "upsample" / "Upsample" { mode: String = "nearest" }
    GridSample = "grid_sample" / "GridSample" { align_corners: i64 = 0, mode: String = "linear", padding_mode: String = "zeros" }
    AffineGrid = "affine_grid" / "AffineGrid" { align_corners: i64 = 0 }
    Col2Im = "col2im" / "Col2Im" { dilations: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![] }
    RoiAlign = "roi_align" / "RoiAlign" { coordinate_transformation_mode: String = "half_pixel", mode: String = "avg", output_height: i64 = 1, output_width: i64 = 1, sampling_ratio: i64 = 0, spatial_scale: f32 = 1.0 }
    NonMaxSuppression = "non_max_suppression" / "NonMaxSuppression" { center_point_box: i64 = 0 }
    SoftmaxCrossEntropyLoss = "softmax_cross_entropy_loss" / "SoftmaxCrossEntropyLoss" { ignore_index: Option<i64> = None, reduction: String = "mean" }
    NegativeLogLikelihoodLoss = "negative_log_likelihood_loss" / "NegativeLogLikelihoodLoss" { ignore_index: Option<i64> = None, reduction: String = "mean" }
    Attention = "attention" / "Attention" { is_causal: i64 = 0, kv_num_heads: Option<i64> = None, q_num_heads: Option<i64> = None, qk_matmul_output_mode: i64 = 0, scale: Option<f32> = None, softcap: f32 = 0.0, softmax_precision: Option<i64> = None }
    RotaryEmbedding = "rotary_embedding" / "RotaryEmbedding" { interleaved: i64 = 0, num_heads: Option<i64> = None, rotary_embedding_dim: i64 = 0 }

    // ---- recurrent ----
    Lstm = "lstm" / "LSTM" { activation_alpha: Vec<f32> = vec![], activation_beta: Vec<f32> = vec![], activations: Vec<String> = vec![], clip: Option<f32> = None, direction: String = "forward", hidden_size: i64, input_forget: i64 = 0, layout: i64 = 0 }
    Gru = "gru" / "GRU" { activation_alpha: Vec<f32> = vec![], activation_beta: Vec<f32> = vec![], activations: Vec<String> = vec![], clip: Option<f32> = None, direction: String = "forward", hidden_size: i64, layout: i64 = 0, linear_before_reset: i64 = 0 }
    Rnn = "rnn" / "RNN" { activation_alpha: Vec<f32> = vec![], activation_beta: Vec<f32> = vec![], activations: Vec<String> = vec![], clip: Option<f32> = None, direction: String = "forward", hidden_size: i64, layout: i64 = 0 }

    // ---- control flow ----
    // Outer-scope values a subgraph reads are made explicit: they are the node's trailing
    // inputs, and the subgraph's trailing inputs receive them (`num_captures` of them for
    // Loop and Scan; for If, every input after `cond`, and both branches take all of them).
    If = "if" / "If" { then_branch: Box<Graph>, else_branch: Box<Graph> }
    Loop = "loop" / "Loop" { body: Box<Graph>, num_captures: i64 = 0 }
    Scan = "scan" / "Scan" { body: Box<Graph>, num_captures: i64 = 0, num_scan_inputs: i64, scan_input_axes: Vec<i64> = vec![], scan_input_directions: Vec<i64> = vec![], scan_output_axes: Vec<i64> = vec![], scan_output_directions: Vec<i64> = vec![] }

    // ---- graphc's own ops: fusions (see `ir::fused`); exported as their standard ops ----
    /// `act(conv(x, w, b) + r)`: a convolution with its epilogue; inputs `(x, w, b?, r?)`.
    FusedConv = "fused_conv" / "graphc.FusedConv" { auto_pad: AutoPad = AutoPad::NotSet, dilations: Vec<i64> = vec![], group: i64 = 1, kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![], activation: String = "none", alpha: f32 = 0.0, beta: f32 = 0.0 }
    /// `act(matmul(a, b) + bias + r)`: a matrix product with its epilogue; inputs
    /// `(a, b, bias?, r?)`.
    FusedMatMul = "fused_mat_mul" / "graphc.FusedMatMul" { activation: String = "none", alpha: f32 = 0.0, beta: f32 = 0.0 }
    /// `softmax(x + mask, axis)`: a Softmax with an additive mask in one pass; inputs
    /// `(x, mask)`, the mask broadcasting to `x`.
    FusedSoftmax = "fused_softmax" / "graphc.FusedSoftmax" { axis: i64 = -1 }
    /// A chain of elementwise ops computed in one pass over the output: `body` is the
    /// expression, a graph whose inputs receive the node's inputs and whose one output is the
    /// result.
    FusedElementwise = "fused_elementwise" / "graphc.FusedElementwise" { body: Box<Graph> }

    // ---- graphc's own ops: the blocked channel layout NCHWc (see `ir::blocked`) ----
    // A blocked tensor is `[N, ceil(C/block), spatial..., block]`: channel `c` of the NCHW
    // tensor is at block `c / block`, lane `c % block`; lanes past `C` are zero. Every blocked
    // op means its NCHW op between reorders; exported as those standard ops.
    /// NCHW `[N, C, spatial...]` to blocked `[N, ceil(C/block), spatial..., block]`, channels
    /// zero-padded to a multiple of `block`.
    ReorderToBlocked = "reorder_to_blocked" / "graphc.ReorderToBlocked" { block: i64 = 8 }
    /// Blocked to NCHW: the inverse of `reorder_to_blocked`, keeping the first `channels`.
    ReorderFromBlocked = "reorder_from_blocked" / "graphc.ReorderFromBlocked" { block: i64 = 8, channels: i64 }
    /// `fused_conv` on blocked tensors: inputs `(xb, w, b?, rb?)`, the input `xb` and the
    /// residual `rb` blocked, the weights `w` and bias `b` in their standard layouts
    /// (`[M, C/group, k...]`, `[M]`; a kernel packs them at compile time); the output blocked.
    BlockedConv = "blocked_conv" / "graphc.BlockedConv" { auto_pad: AutoPad = AutoPad::NotSet, dilations: Vec<i64> = vec![], group: i64 = 1, kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![], activation: String = "none", alpha: f32 = 0.0, beta: f32 = 0.0, block: i64 = 8 }
    /// MaxPool on a blocked tensor.
    BlockedMaxPool = "blocked_max_pool" / "graphc.BlockedMaxPool" { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: i64 = 0, dilations: Vec<i64> = vec![], kernel_shape: Vec<i64>, pads: Vec<i64> = vec![], strides: Vec<i64> = vec![], block: i64 = 8 }
    /// AveragePool on a blocked tensor.
    BlockedAveragePool = "blocked_average_pool" / "graphc.BlockedAveragePool" { auto_pad: AutoPad = AutoPad::NotSet, ceil_mode: i64 = 0, count_include_pad: i64 = 0, dilations: Vec<i64> = vec![], kernel_shape: Vec<i64>, pads: Vec<i64> = vec![], strides: Vec<i64> = vec![], block: i64 = 8 }
    /// GlobalAveragePool on a blocked tensor.
    BlockedGlobalAveragePool = "blocked_global_average_pool" / "graphc.BlockedGlobalAveragePool" { block: i64 = 8 }

    // ---- signal ----
    HannWindow = "hann_window" / "HannWindow" { output_datatype: i64 = 1, periodic: i64 = 1 }
    HammingWindow = "hamming_window" / "HammingWindow" { output_datatype: i64 = 1, periodic: i64 = 1 }
    BlackmanWindow = "blackman_window" / "BlackmanWindow" { output_datatype: i64 = 1, periodic: i64 = 1 }
    Dft = "dft" / "DFT" { inverse: i64 = 0, onesided: i64 = 0, axis: i64 = -2 }
}
