//! graphc's fused ops, `fused_conv` and `fused_mat_mul`, in terms of standard ops.
//!
//! A fused op is a main op (Conv or MatMul) followed by an epilogue: a bias (MatMul only; Conv
//! takes its bias as an input of its own), a residual added to the result, and an
//! [`Activation`]. [`Unfused`] spells that out as standard ops; the reference evaluator, shape
//! inference and ONNX export all go through it, so a fused op means exactly what its standard
//! ops mean.

use super::{Op, Tensor};

/// An activation applied in a fused op's epilogue, after bias and residual.
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    /// The identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `x` if `x >= 0` else `alpha * x`.
    LeakyRelu(f32),
    /// `min(max(x, lo), hi)` (Relu6 is `Clip(0, 6)`).
    Clip(f32, f32),
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid(f32, f32),
    /// `x * hard_sigmoid(x, 1/6, 1/2)`.
    HardSwish,
    /// `x * sigmoid(x)` (SiLU, Swish with alpha 1).
    Silu,
    /// `0.5 * x * (1 + erf(x / sqrt(2)))`.
    Gelu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Reads the `activation`, `alpha` and `beta` attributes of a fused op.
    pub fn from_attrs(name: &str, alpha: f32, beta: f32) -> Result<Activation, String> {
        Ok(match name {
            "none" => Activation::None,
            "relu" => Activation::Relu,
            "leaky_relu" => Activation::LeakyRelu(alpha),
            "clip" => Activation::Clip(alpha, beta),
            "sigmoid" => Activation::Sigmoid,
            "hard_sigmoid" => Activation::HardSigmoid(alpha, beta),
            "hard_swish" => Activation::HardSwish,
            "silu" => Activation::Silu,
            "gelu" => Activation::Gelu,
            "tanh" => Activation::Tanh,
            _ => return Err(format!("unknown fused activation '{name}'")),
        })
    }

    /// The `(activation, alpha, beta)` attributes.
    pub fn attrs(&self) -> (&'static str, f32, f32) {
        match *self {
            Activation::None => ("none", 0.0, 0.0),
            Activation::Relu => ("relu", 0.0, 0.0),
            Activation::LeakyRelu(a) => ("leaky_relu", a, 0.0),
            Activation::Clip(lo, hi) => ("clip", lo, hi),
            Activation::Sigmoid => ("sigmoid", 0.0, 0.0),
            Activation::HardSigmoid(a, b) => ("hard_sigmoid", a, b),
            Activation::HardSwish => ("hard_swish", 0.0, 0.0),
            Activation::Silu => ("silu", 0.0, 0.0),
            Activation::Gelu => ("gelu", 0.0, 0.0),
            Activation::Tanh => ("tanh", 0.0, 0.0),
        }
    }

    /// The standard ops computing the activation of `x` (see [`Step`]); empty for `None`.
    pub fn steps(&self) -> Vec<Step> {
        use Operand::{Prev, X};
        let unary = |op: Op| vec![Step { op, args: vec![X] }];
        match *self {
            Activation::None => vec![],
            Activation::Relu => unary(Op::Relu {}),
            Activation::LeakyRelu(alpha) => unary(Op::LeakyRelu { alpha }),
            Activation::Clip(lo, hi) => vec![Step {
                op: Op::Clip {},
                args: vec![X, Operand::Scalar(lo as f64), Operand::Scalar(hi as f64)],
            }],
            Activation::Sigmoid => unary(Op::Sigmoid {}),
            Activation::HardSigmoid(alpha, beta) => unary(Op::HardSigmoid { alpha, beta }),
            Activation::HardSwish => unary(Op::HardSwish {}),
            Activation::Silu => vec![
                Step {
                    op: Op::Sigmoid {},
                    args: vec![X],
                },
                Step {
                    op: Op::Mul {},
                    args: vec![X, Prev(0)],
                },
            ],
            Activation::Gelu => unary(Op::Gelu {
                approximate: "none".into(),
            }),
            Activation::Tanh => unary(Op::Tanh {}),
        }
    }

    /// The activation a standalone unary op computes, for fusing it into a producer.
    pub fn of_op(op: &Op) -> Option<Activation> {
        Some(match op {
            Op::Relu {} => Activation::Relu,
            Op::LeakyRelu { alpha } => Activation::LeakyRelu(*alpha),
            Op::Sigmoid {} => Activation::Sigmoid,
            Op::HardSigmoid { alpha, beta } => Activation::HardSigmoid(*alpha, *beta),
            Op::HardSwish {} => Activation::HardSwish,
            Op::Swish { alpha } if *alpha == 1.0 => Activation::Silu,
            Op::Gelu { approximate } if approximate == "none" => Activation::Gelu,
            Op::Tanh {} => Activation::Tanh,
            _ => return None,
        })
    }
}

/// An argument of a [`Step`].
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// The value the activation applies to.
    X,
    /// The result of an earlier step.
    Prev(usize),
    /// A scalar constant of the value's element type.
    Scalar(f64),
}

/// One standard op of an activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The op.
    pub op: Op,
    /// Its inputs.
    pub args: Vec<Operand>,
}

/// A fused op spelled out: `act(main(inputs) + bias + residual)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Unfused {
    /// Conv or MatMul.
    pub main: Op,
    /// How many of the fused op's inputs the main op takes (Conv: x, w, b; MatMul: a, b).
    pub main_inputs: usize,
    /// Whether the fused op has a bias input added after the main op (MatMul's input 2).
    pub bias_input: Option<usize>,
    /// The residual input's index.
    pub residual_input: usize,
    /// The activation.
    pub activation: Activation,
}

impl Op {
    /// Whether this is one of graphc's fused ops.
    pub fn is_fused(&self) -> bool {
        matches!(
            self,
            Op::FusedConv { .. }
                | Op::FusedMatMul { .. }
                | Op::FusedSoftmax { .. }
                | Op::FusedElementwise { .. }
        )
    }

    /// A fused op's standard form; `None` for other ops. An unknown activation name is an
    /// error.
    pub fn unfuse(&self) -> Option<Result<Unfused, String>> {
        match self {
            Op::FusedConv {
                auto_pad,
                dilations,
                group,
                kernel_shape,
                pads,
                strides,
                activation,
                alpha,
                beta,
            } => Some(
                Activation::from_attrs(activation, *alpha, *beta).map(|activation| Unfused {
                    main: Op::Conv {
                        auto_pad: *auto_pad,
                        dilations: dilations.clone(),
                        group: *group,
                        kernel_shape: kernel_shape.clone(),
                        pads: pads.clone(),
                        strides: strides.clone(),
                    },
                    main_inputs: 3,
                    bias_input: None,
                    residual_input: 3,
                    activation,
                }),
            ),
            Op::FusedMatMul {
                activation,
                alpha,
                beta,
            } => Some(
                Activation::from_attrs(activation, *alpha, *beta).map(|activation| Unfused {
                    main: Op::MatMul {},
                    main_inputs: 2,
                    bias_input: Some(2),
                    residual_input: 3,
                    activation,
                }),
            ),
            _ => None,
        }
    }

    /// A Conv's fused form with activation `act` (`None` for other ops).
    pub fn fused_conv(conv: &Op, act: &Activation) -> Option<Op> {
        let (activation, alpha, beta) = act.attrs();
        match conv {
            Op::Conv {
                auto_pad,
                dilations,
                group,
                kernel_shape,
                pads,
                strides,
            } => Some(Op::FusedConv {
                auto_pad: *auto_pad,
                dilations: dilations.clone(),
                group: *group,
                kernel_shape: kernel_shape.clone(),
                pads: pads.clone(),
                strides: strides.clone(),
                activation: activation.into(),
                alpha,
                beta,
            }),
            _ => None,
        }
    }

    /// A `fused_mat_mul` with activation `act`.
    pub fn fused_mat_mul(act: &Activation) -> Op {
        let (activation, alpha, beta) = act.attrs();
        Op::FusedMatMul {
            activation: activation.into(),
            alpha,
            beta,
        }
    }

    /// The same fused op with its activation replaced.
    pub fn with_activation(&self, act: &Activation) -> Option<Op> {
        let (name, a, b) = act.attrs();
        let mut op = self.clone();
        match &mut op {
            Op::FusedConv {
                activation,
                alpha,
                beta,
                ..
            }
            | Op::FusedMatMul {
                activation,
                alpha,
                beta,
            } => {
                *activation = name.into();
                *alpha = a;
                *beta = b;
                Some(op)
            }
            _ => None,
        }
    }

    /// A fused op's activation (`None` for other ops or a malformed name).
    pub fn activation(&self) -> Option<Activation> {
        match self {
            Op::FusedConv {
                activation,
                alpha,
                beta,
                ..
            }
            | Op::FusedMatMul {
                activation,
                alpha,
                beta,
            } => Activation::from_attrs(activation, *alpha, *beta).ok(),
            _ => None,
        }
    }
}

/// A scalar tensor of `dtype` holding `v`, for [`Operand::Scalar`].
pub fn scalar_like(v: f64, dtype: super::DType) -> Tensor {
    Tensor::scalar(v).cast(dtype)
}
