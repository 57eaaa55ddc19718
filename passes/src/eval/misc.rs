//! Recurrent ops, control flow (If, Loop, Scan), signal ops, losses, attention, sampling ops.
//!
//! Float ops compute in a working precision [`Real`]: f64 for f64 tensors, f32 for f32, f16
//! and bf16 (converted on the way in and rounded back on the way out). Each group of ops has
//! its own submodule; this file routes and holds the shared float helpers.

use ndarray::ArrayD;

use crate::ir::{DType, Elem, Op, Tensor};

mod attention;
mod control;
mod loss;
pub(super) mod rnn;
mod sampling;
mod signal;

/// Evaluates an op of this family.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    match op {
        Op::Lstm { .. } | Op::Gru { .. } | Op::Rnn { .. } => rnn::eval(op, inputs, n_outputs),
        Op::If { .. } | Op::Loop { .. } | Op::Scan { .. } => control::eval(op, inputs, n_outputs),
        Op::SoftmaxCrossEntropyLoss { .. } | Op::NegativeLogLikelihoodLoss { .. } => {
            loss::eval(op, inputs, n_outputs)
        }
        Op::Attention { .. } | Op::RotaryEmbedding { .. } => attention::eval(op, inputs, n_outputs),
        Op::GridSample { .. }
        | Op::AffineGrid { .. }
        | Op::RoiAlign { .. }
        | Op::NonMaxSuppression { .. } => sampling::eval(op, inputs, n_outputs),
        Op::HannWindow { .. }
        | Op::HammingWindow { .. }
        | Op::BlackmanWindow { .. }
        | Op::Dft { .. } => signal::eval(op, inputs, n_outputs),
        _ => Err(format!(
            "{} is not an op of the misc family",
            op.onnx_name()
        )),
    }
}

/// A working float type: f32 or f64, with ndarray's GEMM available.
pub(crate) trait Real:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + Elem
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::MulAssign
{
}
impl Real for f32 {}
impl Real for f64 {}

/// Runs `$body` with `$F` bound to the working precision of a float dtype; other dtypes
/// are an error.
macro_rules! with_real {
    ($dtype:expr, $F:ident => $body:expr) => {
        match $dtype {
            $crate::ir::DType::F64 => {
                #[allow(dead_code)]
                type $F = f64;
                $body
            }
            d if d.is_float() => {
                #[allow(dead_code)]
                type $F = f32;
                $body
            }
            d => Err(format!("expected a float tensor, got {d}")),
        }
    };
}
pub(crate) use with_real;

/// A tensor converted to the working precision `F`.
pub(crate) fn to_real<F: Real>(t: &Tensor) -> ArrayD<F> {
    // Half-precision inputs are widened through half's own `to_f32`.
    match t {
        Tensor::F16(a) => a.mapv(|x| <F as Elem>::from_f64(f64::from(x.to_f32()))),
        Tensor::BF16(a) => a.mapv(|x| <F as Elem>::from_f64(f64::from(x.to_f32()))),
        _ => F::unwrap_owned(t.cast(F::DTYPE)).expect("cast yields the requested dtype"),
    }
}

/// Input `i` (required) converted to the working precision `F`; it must be a float tensor.
pub(crate) fn real_input<F: Real>(
    inputs: &[Option<&Tensor>],
    i: usize,
) -> Result<ArrayD<F>, String> {
    let t = super::util::req(inputs, i)?;
    if !t.dtype().is_float() {
        return Err(format!(
            "input {i} has type {}, expected a float type",
            t.dtype()
        ));
    }
    Ok(to_real(t))
}

/// Optional input `i` converted to the working precision `F`.
pub(crate) fn real_opt<F: Real>(
    inputs: &[Option<&Tensor>],
    i: usize,
) -> Result<Option<ArrayD<F>>, String> {
    match super::util::opt(inputs, i) {
        None => Ok(None),
        Some(_) => real_input(inputs, i).map(Some),
    }
}

/// A working-precision result rounded back to `dtype`.
pub(crate) fn from_real<F: Real>(a: ArrayD<F>, dtype: DType) -> Tensor {
    F::wrap(a).cast(dtype)
}

/// A float constant in the working precision.
pub(crate) fn c<F: Real>(v: f64) -> F {
    <F as Elem>::from_f64(v)
}
