//! Elementwise ops: unary, binary with multidirectional broadcasting, variadic, comparison, logical, bitwise, activations, Cast, Clip, Where.
//!
//! Semantics are numpy's, as in the ONNX reference: integers wrap, integer division
//! truncates toward zero, `Max`/`Min` propagate NaN. Float math is done in f64 and rounded
//! once to the element type (so f16/bf16 results are correctly rounded where f64 is exact).

mod cast;
mod num;

use ndarray::{ArrayD, IxDyn};

use super::util;
use crate::ir::{DType, Elem, Op, Tensor};
use num::Num;

/// Dispatches on the integer tensors; `$other` handles the rest.
macro_rules! dispatch_int {
    ($t:expr, $a:ident => $body:expr, _ => $other:expr) => {
        match $t {
            Tensor::I8($a) => {
                #[allow(dead_code)]
                type T = i8;
                $body
            }
            Tensor::I16($a) => {
                #[allow(dead_code)]
                type T = i16;
                $body
            }
            Tensor::I32($a) => {
                #[allow(dead_code)]
                type T = i32;
                $body
            }
            Tensor::I64($a) => {
                #[allow(dead_code)]
                type T = i64;
                $body
            }
            Tensor::U8($a) => {
                #[allow(dead_code)]
                type T = u8;
                $body
            }
            Tensor::U16($a) => {
                #[allow(dead_code)]
                type T = u16;
                $body
            }
            Tensor::U32($a) => {
                #[allow(dead_code)]
                type T = u32;
                $body
            }
            Tensor::U64($a) => {
                #[allow(dead_code)]
                type T = u64;
                $body
            }
            _ => $other,
        }
    };
}

/// Maps every element of a numeric tensor with `$f: T -> T`.
macro_rules! num_map {
    ($x:expr, $f:expr) => {
        crate::dispatch_numeric!($x, a => Ok(<T as Elem>::wrap(a.mapv($f))), _ => Err(unsupported($x, "a numeric")))
    };
}

/// Combines two numeric tensors of the same type, broadcast, with
/// `|p, q| -> Result<T, String>` on `T` values.
macro_rules! num_zip {
    ($x:expr, $y:expr, |$p:ident, $q:ident| $body:expr) => {
        crate::dispatch_numeric!($x, a => {
            let b = same::<T>($y, 1)?;
            Ok(<T as Elem>::wrap(zip2(a, b, |&$p: &T, &$q: &T| $body)?))
        }, _ => Err(unsupported($x, "a numeric")))
    };
}

/// Compares two tensors of the same type (any type), broadcast, into a bool tensor.
macro_rules! cmp_zip {
    ($x:expr, $y:expr, |$p:ident, $q:ident| $body:expr) => {
        crate::dispatch!($x, a => {
            let b = same::<T>($y, 1)?;
            Ok(Tensor::Bool(zip2(a, b, |$p: &T, $q: &T| Ok($body))?))
        })
    };
}

/// Combines two integer tensors of the same type, broadcast, with `|p, q| -> T`.
macro_rules! int_zip {
    ($x:expr, $y:expr, |$p:ident, $q:ident| $body:expr) => {
        dispatch_int!($x, a => {
            let b = same::<T>($y, 1)?;
            Ok(<T as Elem>::wrap(zip2(a, b, |&$p: &T, &$q: &T| Ok($body))?))
        }, _ => Err(unsupported($x, "an integer")))
    };
}

/// Evaluates an op of this family.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    if n_outputs != 1 {
        return Err(format!(
            "the op has one output, the node declares {n_outputs}"
        ));
    }
    Ok(vec![eval_one(op, inputs)?])
}

fn eval_one(op: &Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, String> {
    use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_PI};
    let x = util::req(inputs, 0)?;
    let y = || util::req(inputs, 1);
    match op {
        Op::Identity {} => Ok(x.clone()),
        Op::Abs {} => num_map!(x, Num::abs),
        Op::Neg {} => num_map!(x, Num::neg),
        Op::Sign {} => num_map!(x, Num::sign),
        Op::Relu {} => num_map!(x, |v: T| if v < T::zero() { T::zero() } else { v }),
        Op::Exp {} => float_map(x, f64::exp),
        Op::Log {} => float_map(x, f64::ln),
        Op::Sqrt {} => float_map(x, f64::sqrt),
        Op::Reciprocal {} => float_map(x, f64::recip),
        Op::Floor {} => float_map(x, f64::floor),
        Op::Ceil {} => float_map(x, f64::ceil),
        Op::Round {} => float_map(x, f64::round_ties_even),
        Op::Sin {} => float_map(x, f64::sin),
        Op::Cos {} => float_map(x, f64::cos),
        Op::Tan {} => float_map(x, f64::tan),
        Op::Asin {} => float_map(x, f64::asin),
        Op::Acos {} => float_map(x, f64::acos),
        Op::Atan {} => float_map(x, f64::atan),
        Op::Sinh {} => float_map(x, f64::sinh),
        Op::Cosh {} => float_map(x, f64::cosh),
        Op::Asinh {} => float_map(x, f64::asinh),
        Op::Acosh {} => float_map(x, f64::acosh),
        Op::Atanh {} => float_map(x, f64::atanh),
        Op::Tanh {} => float_map(x, f64::tanh),
        Op::Sigmoid {} => float_map(x, sigmoid),
        Op::Erf {} => float_map(x, num::erf),
        Op::Softplus {} => float_map(x, softplus),
        Op::Softsign {} => float_map(x, |v| v / (1.0 + v.abs())),
        Op::Mish {} => float_map(x, |v| v * softplus(v).tanh()),
        Op::HardSwish {} => float_map(x, |v| v * clamp01(v / 6.0 + 0.5)),
        Op::LeakyRelu { alpha } => {
            let a = *alpha as f64;
            float_map(x, |v| if v < 0.0 { a * v } else { v })
        }
        Op::Elu { alpha } => {
            let a = *alpha as f64;
            float_map(x, |v| if v < 0.0 { a * v.exp_m1() } else { v })
        }
        Op::Selu { alpha, gamma } => {
            let (a, g) = (*alpha as f64, *gamma as f64);
            float_map(x, |v| if v > 0.0 { g * v } else { g * a * v.exp_m1() })
        }
        Op::Celu { alpha } => {
            let a = *alpha as f64;
            float_map(x, |v| if v >= 0.0 { v } else { a * (v / a).exp_m1() })
        }
        Op::HardSigmoid { alpha, beta } => {
            let (a, b) = (*alpha as f64, *beta as f64);
            float_map(x, |v| clamp01(a * v + b))
        }
        Op::ThresholdedRelu { alpha } => {
            let a = *alpha as f64;
            float_map(x, |v| if v > a { v } else { 0.0 })
        }
        Op::Shrink { bias, lambd } => {
            let (b, l) = (*bias as f64, *lambd as f64);
            num_map!(x, |v: T| {
                let f = v.to_f();
                T::from_f64r(if f < -l {
                    f + b
                } else if f > l {
                    f - b
                } else {
                    0.0
                })
            })
        }
        Op::Gelu { approximate } => match approximate.as_str() {
            "none" => float_map(x, |v| 0.5 * v * (1.0 + num::erf(v * FRAC_1_SQRT_2))),
            "tanh" => {
                let k = FRAC_2_PI.sqrt();
                float_map(x, |v| {
                    0.5 * v * (1.0 + (k * (v + 0.044_715 * v * v * v)).tanh())
                })
            }
            other => Err(format!(
                "unknown gelu approximation '{other}' (expected 'none' or 'tanh')"
            )),
        },
        Op::Swish { alpha } => {
            let a = *alpha as f64;
            float_map(x, |v| v * sigmoid(a * v))
        }
        Op::Not {} => match x {
            Tensor::Bool(a) => Ok(Tensor::Bool(a.mapv(|v| !v))),
            _ => Err(unsupported(x, "a bool")),
        },
        Op::BitwiseNot {} => {
            dispatch_int!(x, a => Ok(<T as Elem>::wrap(a.mapv(|v| !v))), _ => Err(unsupported(x, "an integer")))
        }
        Op::IsNaN {} => {
            crate::dispatch_float!(x, a => Ok(Tensor::Bool(a.map(|v| v.to_f().is_nan()))), _ => Err(unsupported(x, "a float")))
        }
        Op::IsInf {
            detect_negative,
            detect_positive,
        } => {
            let (neg, pos) = (*detect_negative != 0, *detect_positive != 0);
            crate::dispatch_float!(x, a => Ok(Tensor::Bool(a.map(|v| {
                let f = v.to_f();
                f.is_infinite() && if f > 0.0 { pos } else { neg }
            }))), _ => Err(unsupported(x, "a float")))
        }
        Op::Clip {} => clip(x, util::opt(inputs, 1), util::opt(inputs, 2)),
        Op::Cast { to, .. } => Ok(cast::cast(x, *to)),
        Op::CastLike { .. } => Ok(cast::cast(x, y()?.dtype())),
        Op::BitCast { to } => cast::bitcast(x, *to),
        Op::Add {} => add(x, y()?),
        Op::Sub {} => num_zip!(x, y()?, |p, q| Ok(Num::sub(p, q))),
        Op::Mul {} => num_zip!(x, y()?, |p, q| Ok(Num::mul(p, q))),
        Op::Div {} => num_zip!(x, y()?, |p, q| Num::div(p, q)),
        Op::Mod { fmod } => {
            let fmod = match fmod {
                0 => false,
                1 => true,
                f => return Err(format!("fmod must be 0 or 1, got {f}")),
            };
            num_zip!(x, y()?, |p, q| Num::rem(p, q, fmod))
        }
        Op::Pow {} => pow(x, y()?),
        Op::Max {} => variadic(inputs, max),
        Op::Min {} => variadic(inputs, min),
        Op::Sum {} => variadic(inputs, add),
        Op::Mean {} => {
            let n = inputs.len() as f64;
            float_map(&variadic(inputs, add)?, |v| v / n)
        }
        Op::And {} => logical(x, y()?, |p, q| p & q),
        Op::Or {} => logical(x, y()?, |p, q| p | q),
        Op::Xor {} => logical(x, y()?, |p, q| p ^ q),
        Op::Equal {} => cmp_zip!(x, y()?, |p, q| p == q),
        Op::Less {} => cmp_zip!(x, y()?, |p, q| p < q),
        Op::LessOrEqual {} => cmp_zip!(x, y()?, |p, q| p <= q),
        Op::Greater {} => cmp_zip!(x, y()?, |p, q| p > q),
        Op::GreaterOrEqual {} => cmp_zip!(x, y()?, |p, q| p >= q),
        Op::BitwiseAnd {} => int_zip!(x, y()?, |p, q| p & q),
        Op::BitwiseOr {} => int_zip!(x, y()?, |p, q| p | q),
        Op::BitwiseXor {} => int_zip!(x, y()?, |p, q| p ^ q),
        Op::BitShift { direction } => {
            let left = match direction.as_str() {
                "LEFT" => true,
                "RIGHT" => false,
                d => {
                    return Err(format!(
                        "unknown bitshift direction '{d}' (expected 'LEFT' or 'RIGHT')"
                    ))
                }
            };
            int_zip!(x, y()?, |p, q| {
                let bits = u64::from(T::BITS);
                // A shift by the width or more (or by a negative amount) leaves no bits.
                match q.to_u64() {
                    n if n >= bits && left => 0,
                    n if n >= bits => p >> (bits - 1) >> 1,
                    n if left => p << n,
                    n => p >> n,
                }
            })
        }
        Op::PRelu {} => prelu(x, y()?),
        Op::Where {} => where_(x, y()?, util::req(inputs, 2)?),
        _ => Err(format!("{} is not an elementwise op", op.onnx_name())),
    }
}

/// The error for an input of an element type the op does not take.
fn unsupported(t: &Tensor, what: &str) -> String {
    format!(
        "element type {} is not supported (expected {what} type)",
        t.dtype()
    )
}

/// Input `i` as an array of `T`, the type of input 0.
fn same<T: Elem>(t: &Tensor, i: usize) -> Result<&ArrayD<T>, String> {
    T::unwrap(t).ok_or_else(|| {
        format!(
            "input {i} has type {}, expected {} like input 0",
            t.dtype(),
            T::DTYPE
        )
    })
}

/// Maps a float tensor elementwise through `f` computed in f64, rounding once.
fn float_map(t: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor, String> {
    crate::dispatch_float!(t, a => Ok(<T as Elem>::wrap(a.map(|v| T::from_f64r(f(v.to_f()))))), _ => Err(unsupported(t, "a float")))
}

/// `a` and `b` broadcast together, as views of the common shape.
fn broadcast2<'a, A: Elem, B: Elem>(
    a: &'a ArrayD<A>,
    b: &'a ArrayD<B>,
) -> Result<(ndarray::ArrayViewD<'a, A>, ndarray::ArrayViewD<'a, B>), String> {
    let shape = util::broadcast_shape(a.shape(), b.shape())?;
    util::checked_size(&shape)?;
    let err = || {
        format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        )
    };
    Ok((
        a.broadcast(IxDyn(&shape)).ok_or_else(err)?,
        b.broadcast(IxDyn(&shape)).ok_or_else(err)?,
    ))
}

/// Applies `f` to `a` and `b` broadcast together (numpy rules), in row-major order.
fn zip2<A: Elem, B: Elem, O>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    mut f: impl FnMut(&A, &B) -> Result<O, String>,
) -> Result<ArrayD<O>, String> {
    let (av, bv) = broadcast2(a, b)?;
    let data = av
        .iter()
        .zip(bv.iter())
        .map(|(p, q)| f(p, q))
        .collect::<Result<Vec<O>, String>>()?;
    ArrayD::from_shape_vec(av.raw_dim(), data).map_err(|e| e.to_string())
}

fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

fn softplus(v: f64) -> f64 {
    if v > 0.0 {
        v + (-v).exp().ln_1p()
    } else {
        v.exp().ln_1p()
    }
}

/// Clamps into [0, 1], keeping NaN.
fn clamp01(v: f64) -> f64 {
    v.clamp(0.0, 1.0)
}

fn add(x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    num_zip!(x, y, |p, q| Ok(Num::add(p, q)))
}

fn max(x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    num_zip!(x, y, |p, q| Ok(Num::max_nan(p, q)))
}

fn min(x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    num_zip!(x, y, |p, q| Ok(Num::min_nan(p, q)))
}

/// Folds `f` over all inputs (at least one, all present), broadcasting as it goes.
fn variadic(
    inputs: &[Option<&Tensor>],
    f: fn(&Tensor, &Tensor) -> Result<Tensor, String>,
) -> Result<Tensor, String> {
    let mut acc = util::req(inputs, 0)?.clone();
    for i in 1..inputs.len() {
        acc = f(&acc, util::req(inputs, i)?)
            .map_err(|e| e.replace("input 1", &format!("input {i}")))?;
    }
    Ok(acc)
}

/// Bool-only binary op.
fn logical(x: &Tensor, y: &Tensor, f: fn(bool, bool) -> bool) -> Result<Tensor, String> {
    match (x, y) {
        (Tensor::Bool(a), Tensor::Bool(b)) => Ok(Tensor::Bool(zip2(a, b, |p, q| Ok(f(*p, *q)))?)),
        _ => Err(format!(
            "expected bool inputs, got {} and {}",
            x.dtype(),
            y.dtype()
        )),
    }
}

/// Pow: the output has the base's type; the exponent may be any numeric type. Integer
/// bases with integer exponents multiply exactly (wrapping); otherwise the power is taken in
/// f64 and converted (truncating toward zero for integer bases, as numpy's `astype`).
fn pow(x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    if y.dtype().is_float() {
        let e = cast::cast(y, DType::F64);
        let e = e.as_array::<f64>().expect("cast to f64");
        crate::dispatch_numeric!(x, a => Ok(<T as Elem>::wrap(zip2(a, e, |p, q| Ok(T::from_f64r(p.to_f().powf(*q))))?)),
            _ => Err(unsupported(x, "a numeric")))
    } else if y.dtype().is_int() {
        let e: ArrayD<i64> = match y {
            Tensor::U64(a) => a.mapv(|v| i64::try_from(v).unwrap_or(i64::MAX)),
            _ => cast::cast(y, DType::I64)
                .as_array::<i64>()
                .expect("cast to i64")
                .clone(),
        };
        crate::dispatch_numeric!(x, a => Ok(<T as Elem>::wrap(zip2(a, &e, |p, q| Ok(Num::powi(*p, *q)))?)),
            _ => Err(unsupported(x, "a numeric")))
    } else {
        Err(format!(
            "exponent type {} is not supported (expected a numeric type)",
            y.dtype()
        ))
    }
}

/// One clip bound: absent, or a one-element tensor of the input's type (an empty tensor
/// counts as absent).
fn bound<T: Elem + Copy>(t: Option<&Tensor>, i: usize) -> Result<Option<T>, String> {
    let Some(t) = t else { return Ok(None) };
    let a = same::<T>(t, i)?;
    match a.len() {
        0 => Ok(None),
        1 => Ok(a.iter().next().copied()),
        _ => Err(format!(
            "clip bound (input {i}) must have one element, got shape {:?}",
            a.shape()
        )),
    }
}

/// Clip: numpy `minimum(maximum(x, lo), hi)`, so `lo > hi` gives `hi` and NaN propagates.
fn clip(x: &Tensor, lo: Option<&Tensor>, hi: Option<&Tensor>) -> Result<Tensor, String> {
    crate::dispatch_numeric!(x, a => {
        let (lo, hi) = (bound::<T>(lo, 1)?, bound::<T>(hi, 2)?);
        Ok(<T as Elem>::wrap(a.mapv(|v| {
            let v = lo.map_or(v, |l| Num::max_nan(v, l));
            hi.map_or(v, |h| Num::min_nan(v, h))
        })))
    }, _ => Err(unsupported(x, "a numeric")))
}

/// PRelu: `x < 0 ? x * slope : x`, the slope broadcasting to the shape of `x`.
fn prelu(x: &Tensor, slope: &Tensor) -> Result<Tensor, String> {
    if util::broadcast_shape(x.shape(), slope.shape())? != x.shape() {
        return Err(format!(
            "slope shape {:?} does not broadcast to input shape {:?}",
            slope.shape(),
            x.shape()
        ));
    }
    num_zip!(x, slope, |p, q| Ok(if p < T::zero() {
        Num::mul(p, q)
    } else {
        p
    }))
}

/// Where: `cond ? x : y`, all three broadcast together.
fn where_(cond: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, String> {
    let Tensor::Bool(c) = cond else {
        return Err(format!(
            "condition has type {}, expected bool",
            cond.dtype()
        ));
    };
    crate::dispatch!(x, a => {
        let b = T::unwrap(y).ok_or_else(|| format!("input 2 has type {}, expected {} like input 1", y.dtype(), x.dtype()))?;
        select(c, a, b).map(<T as Elem>::wrap)
    })
}

/// `c ? a : b` elementwise, the three broadcast together.
fn select<T: Elem>(c: &ArrayD<bool>, a: &ArrayD<T>, b: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    let shape = util::broadcast_shape(&util::broadcast_shape(c.shape(), a.shape())?, b.shape())?;
    util::checked_size(&shape)?;
    let dim = IxDyn(&shape);
    let err = || {
        format!(
            "shapes {:?}, {:?} and {:?} do not broadcast",
            c.shape(),
            a.shape(),
            b.shape()
        )
    };
    let cv = c.broadcast(dim.clone()).ok_or_else(err)?;
    let (av, bv) = (
        a.broadcast(dim.clone()).ok_or_else(err)?,
        b.broadcast(dim.clone()).ok_or_else(err)?,
    );
    let data = cv
        .iter()
        .zip(av.iter().zip(bv.iter()))
        .map(|(&c, (p, q))| if c { p.clone() } else { q.clone() });
    ArrayD::from_shape_vec(dim, data.collect()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

    use super::*;

    fn t<T: Elem>(shape: &[usize], v: Vec<T>) -> Tensor {
        Tensor::from_vec(shape, v).expect("test tensor")
    }

    fn run(op: Op, inputs: &[&Tensor]) -> Result<Tensor, String> {
        let args: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
        eval(&op, &args, 1).map(|mut v| v.remove(0))
    }

    fn f32s(t: &Tensor) -> Vec<f32> {
        t.as_array::<f32>()
            .expect("f32 tensor")
            .iter()
            .copied()
            .collect()
    }

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            let g = *g as f64;
            assert!(
                (g - w).abs() <= 2e-7 * w.abs().max(1e-6),
                "got {got:?}, want {want:?}"
            );
        }
    }

    const XS: [f32; 6] = [-2.5, -0.5, 0.0, 0.5, 1.0, 2.5];

    #[test]
    fn float_unary_match_numpy() {
        let x = t(&[2, 3], XS.to_vec());
        // Expected values computed by numpy (f64 math rounded to f32).
        #[rustfmt::skip]
        let cases: Vec<(Op, [f64; 6])> = vec![
            (Op::Exp {}, [0.0820850059390068, 0.6065306663513184, 1.0, 1.6487212181091309, 2.7182819843292236, 12.182493209838867]),
            (Op::Tanh {}, [-0.9866142868995667, -0.46211719512939453, 0.0, 0.46211719512939453, 0.7615941762924194, 0.9866142868995667]),
            (Op::Sigmoid {}, [0.07585818320512772, 0.3775406777858734, 0.5, 0.622459352016449, 0.7310585975646973, 0.9241418242454529]),
            (Op::Softplus {}, [0.07888973504304886, 0.4740769863128662, 0.6931471824645996, 0.9740769863128662, 1.31326162815094, 2.578889846801758]),
            (Op::Mish {}, [-0.19681620597839355, -0.22074377536773682, 0.0, 0.37524521350860596, 0.8650984168052673, 2.4713923931121826]),
            (Op::Erf {}, [-0.9995930194854736, -0.5204998850822449, 0.0, 0.5204998850822449, 0.8427007794380188, 0.9995930194854736]),
            (Op::Gelu { approximate: "none".into() }, [-0.015524162910878658, -0.1542687714099884, 0.0, 0.3457312285900116, 0.8413447737693787, 2.48447585105896]),
            (Op::Elu { alpha: 1.0 }, [-0.9179149866104126, -0.39346933364868164, 0.0, 0.5, 1.0, 2.5]),
            (Op::HardSwish {}, [-0.208333358168602, -0.2083333283662796, 0.0, 0.2916666567325592, 0.6666666865348816, 2.2916665077209473]),
            (Op::Atan {}, [-1.1902899742126465, -0.46364760398864746, 0.0, 0.46364760398864746, 0.7853981852531433, 1.1902899742126465]),
            (Op::Asinh {}, [-1.647231101989746, -0.4812118113040924, 0.0, 0.4812118113040924, 0.8813735842704773, 1.647231101989746]),
            (Op::Round {}, [-2.0, -0.0, 0.0, 0.0, 1.0, 2.0]),
            (Op::Floor {}, [-3.0, -1.0, 0.0, 0.0, 1.0, 2.0]),
            (Op::Ceil {}, [-2.0, -0.0, 0.0, 1.0, 1.0, 3.0]),
            (Op::Relu {}, [0.0, 0.0, 0.0, 0.5, 1.0, 2.5]),
            (Op::Abs {}, [2.5, 0.5, 0.0, 0.5, 1.0, 2.5]),
            (Op::Neg {}, [2.5, 0.5, -0.0, -0.5, -1.0, -2.5]),
            (Op::Sign {}, [-1.0, -1.0, 0.0, 1.0, 1.0, 1.0]),
            (Op::Softsign {}, [-2.5 / 3.5, -0.5 / 1.5, 0.0, 0.5 / 1.5, 0.5, 2.5 / 3.5]),
            (Op::LeakyRelu { alpha: 0.5 }, [-1.25, -0.25, 0.0, 0.5, 1.0, 2.5]),
            (Op::ThresholdedRelu { alpha: 1.0 }, [0.0, 0.0, 0.0, 0.0, 0.0, 2.5]),
            (Op::Shrink { bias: 0.5, lambd: 0.5 }, [-2.0, 0.0, 0.0, 0.0, 0.5, 2.0]),
            (Op::HardSigmoid { alpha: 0.2, beta: 0.5 }, [0.0, 0.4, 0.5, 0.6, 0.7, 1.0]),
            (Op::Celu { alpha: 2.0 }, [-2.0 * 0.7134952031398099, -2.0 * 0.22119921692859512, 0.0, 0.5, 1.0, 2.5]),
        ];
        for (op, want) in cases {
            let name = op.onnx_name();
            let got = run(op, &[&x]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.shape(), &[2, 3], "{name}");
            close(&f32s(&got), &want);
        }
        // Round is half to even; Selu with its defaults (numpy).
        let r = run(
            Op::Round {},
            &[&t(&[4], vec![1.5f32, 2.5, -3.5, 0.49999997])],
        )
        .unwrap();
        assert_eq!(f32s(&r), [2.0, 2.0, -4.0, 0.0]);
        let s = run(
            Op::Selu {
                alpha: 1.673_263_2,
                gamma: 1.050_701,
            },
            &[&t(&[2], vec![-1.0f32, 2.0])],
        )
        .unwrap();
        close(&f32s(&s), &[-1.1113307, 2.101402]);
        let g = run(
            Op::Gelu {
                approximate: "tanh".into(),
            },
            &[&t(&[3], vec![-1.0f32, 0.0, 1.0])],
        )
        .unwrap();
        close(&f32s(&g), &[-0.15880800939172324, 0.0, 0.8411919906082768]);
        assert!(run(
            Op::Gelu {
                approximate: "fast".into()
            },
            &[&x]
        )
        .is_err());
    }

    #[test]
    fn special_values() {
        let x = t(
            &[5],
            vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0],
        );
        let sig = f32s(&run(Op::Sigmoid {}, &[&x]).unwrap());
        assert!(sig[0].is_nan());
        assert_eq!(&sig[1..], &[1.0, 0.0, 0.5, 0.5]);
        let sp = f32s(&run(Op::Softplus {}, &[&x]).unwrap());
        assert!(sp[0].is_nan());
        assert_eq!(&sp[1..3], &[f32::INFINITY, 0.0]);
        let relu = f32s(&run(Op::Relu {}, &[&x]).unwrap());
        assert!(relu[0].is_nan());
        assert_eq!(&relu[1..], &[f32::INFINITY, 0.0, 0.0, 0.0]);
        let erf = f32s(&run(Op::Erf {}, &[&x]).unwrap());
        assert!(erf[0].is_nan() && erf[3].is_sign_negative());
        assert_eq!(&erf[1..3], &[1.0, -1.0]);
        let hs = f32s(
            &run(
                Op::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
                &[&x],
            )
            .unwrap(),
        );
        assert!(hs[0].is_nan());
        let rec = f32s(&run(Op::Reciprocal {}, &[&x]).unwrap());
        assert_eq!(&rec[1..], &[0.0, -0.0, f32::NEG_INFINITY, f32::INFINITY]);
        assert!(f32s(&run(Op::Log {}, &[&t(&[1], vec![-1.0f32])]).unwrap())[0].is_nan());
        assert_eq!(
            f32s(&run(Op::Log {}, &[&t(&[1], vec![0.0f32])]).unwrap()),
            [f32::NEG_INFINITY]
        );
        assert_eq!(
            run(Op::IsNaN {}, &[&x]).unwrap(),
            t(&[5], vec![true, false, false, false, false])
        );
        assert_eq!(
            run(
                Op::IsInf {
                    detect_negative: 1,
                    detect_positive: 1
                },
                &[&x]
            )
            .unwrap(),
            t(&[5], vec![false, true, true, false, false])
        );
        assert_eq!(
            run(
                Op::IsInf {
                    detect_negative: 0,
                    detect_positive: 1
                },
                &[&x]
            )
            .unwrap(),
            t(&[5], vec![false, true, false, false, false])
        );
        assert_eq!(
            run(
                Op::IsInf {
                    detect_negative: 1,
                    detect_positive: 0
                },
                &[&x]
            )
            .unwrap(),
            t(&[5], vec![false, false, true, false, false])
        );
    }

    #[test]
    fn half_types_compute_and_round() {
        let x = t(
            &[3],
            vec![f16::from_f32(0.5), f16::from_f32(-1.0), f16::from_f32(2.0)],
        );
        let got = run(Op::Exp {}, &[&x]).unwrap();
        // np.exp(np.array([0.5, -1, 2], np.float16)) == [1.648, 0.3679, 7.39]
        let want = [1.6484375f32, 0.36791992, 7.390625];
        assert_eq!(
            got.as_array::<f16>()
                .unwrap()
                .iter()
                .map(|v| f16::to_f32(*v))
                .collect::<Vec<_>>(),
            want
        );
        let b = t(&[2], vec![bf16::from_f32(1.0), bf16::from_f32(3.0)]);
        let got = run(Op::Add {}, &[&b, &b]).unwrap();
        assert_eq!(got, t(&[2], vec![bf16::from_f32(2.0), bf16::from_f32(6.0)]));
        assert!(run(Op::IsNaN {}, &[&t(&[1], vec![f16::NAN])]).unwrap() == t(&[1], vec![true]));
    }

    #[test]
    fn integer_unary() {
        let x = t(&[4], vec![i8::MIN, -3, 0, 7]);
        assert_eq!(
            run(Op::Abs {}, &[&x]).unwrap(),
            t(&[4], vec![i8::MIN, 3, 0, 7])
        );
        assert_eq!(
            run(Op::Neg {}, &[&x]).unwrap(),
            t(&[4], vec![i8::MIN, 3, 0, -7])
        );
        assert_eq!(
            run(Op::Sign {}, &[&x]).unwrap(),
            t(&[4], vec![-1i8, -1, 0, 1])
        );
        assert_eq!(
            run(Op::Relu {}, &[&x]).unwrap(),
            t(&[4], vec![0i8, 0, 0, 7])
        );
        assert_eq!(
            run(Op::BitwiseNot {}, &[&x]).unwrap(),
            t(&[4], vec![127i8, 2, -1, -8])
        );
        assert_eq!(
            run(Op::BitwiseNot {}, &[&t(&[1], vec![5u16])]).unwrap(),
            t(&[1], vec![65530u16])
        );
        assert_eq!(run(Op::Identity {}, &[&x]).unwrap(), x);
        assert!(run(Op::Exp {}, &[&x]).is_err());
        assert!(run(Op::Not {}, &[&x]).is_err());
        assert_eq!(
            run(Op::Not {}, &[&t(&[2], vec![true, false])]).unwrap(),
            t(&[2], vec![false, true])
        );
        let s = t(&[1], vec!["a".to_string()]);
        assert_eq!(run(Op::Identity {}, &[&s]).unwrap(), s);
        assert!(run(Op::Abs {}, &[&s]).is_err());
    }

    #[test]
    fn arithmetic_broadcasts() {
        // [2,1,3] with [4,1] -> [2,4,3]; numpy: (a + b)[1, 2, :] == [13, 14, 15].
        let a = t(&[2, 1, 3], (0..6).map(|v| v as f32).collect());
        let b = t(&[4, 1], vec![0.0f32, 10.0, 20.0, 30.0]);
        let s = run(Op::Add {}, &[&a, &b]).unwrap();
        assert_eq!(s.shape(), &[2, 4, 3]);
        assert_eq!(&f32s(&s)[18..21], &[23.0, 24.0, 25.0]);
        assert_eq!(&f32s(&s)[0..3], &[0.0, 1.0, 2.0]);
        // Scalars and empty tensors.
        let sc = Tensor::scalar(2.0f32);
        assert_eq!(
            f32s(&run(Op::Mul {}, &[&sc, &b]).unwrap()),
            [0.0, 20.0, 40.0, 60.0]
        );
        assert_eq!(
            run(Op::Sub {}, &[&sc, &sc]).unwrap(),
            Tensor::scalar(0.0f32)
        );
        let e = t::<f32>(&[0, 3], vec![]);
        assert_eq!(
            run(Op::Add {}, &[&e, &t(&[1], vec![1.0f32])])
                .unwrap()
                .shape(),
            &[0, 3]
        );
        // Mismatched shapes and types are errors.
        assert!(run(
            Op::Add {},
            &[
                &t(&[2], vec![1.0f32, 2.0]),
                &t(&[3], vec![1.0f32, 2.0, 3.0])
            ]
        )
        .is_err());
        assert!(run(Op::Add {}, &[&sc, &Tensor::scalar(1.0f64)]).is_err());
        assert!(run(Op::Add {}, &[&t(&[1], vec![true]), &t(&[1], vec![true])]).is_err());
        assert!(eval(&Op::Add {}, &[Some(&sc)], 1).is_err());
        assert!(eval(&Op::Add {}, &[Some(&sc), Some(&sc)], 2).is_err());
        // Float division by zero follows IEEE.
        let d = run(
            Op::Div {},
            &[&t(&[3], vec![1.0f32, -1.0, 0.0]), &Tensor::scalar(0.0f32)],
        )
        .unwrap();
        let d = f32s(&d);
        assert_eq!(&d[..2], &[f32::INFINITY, f32::NEG_INFINITY]);
        assert!(d[2].is_nan());
    }

    #[test]
    fn integer_arithmetic() {
        // test_div_int32_trunc: [-3, 3, -3, 3] / [2, 2, -2, -2] == [-1, 1, 1, -1].
        let a = t(&[4], vec![-3i32, 3, -3, 3]);
        let b = t(&[4], vec![2i32, 2, -2, -2]);
        assert_eq!(
            run(Op::Div {}, &[&a, &b]).unwrap(),
            t(&[4], vec![-1i32, 1, 1, -1])
        );
        assert!(run(Op::Div {}, &[&a, &Tensor::scalar(0i32)]).is_err());
        assert_eq!(
            run(Op::Add {}, &[&t(&[1], vec![250u8]), &t(&[1], vec![10u8])]).unwrap(),
            t(&[1], vec![4u8])
        );
        assert_eq!(
            run(
                Op::Mul {},
                &[&t(&[1], vec![i64::MAX]), &Tensor::scalar(2i64)]
            )
            .unwrap(),
            t(&[1], vec![-2i64])
        );
        // test_mod_mixed_sign_int8 and test_mod_int64_fmod.
        let x = t(&[6], vec![-4i8, 7, 5, 4, -7, 8]);
        let y = t(&[6], vec![2i8, -3, 8, -2, 3, 5]);
        assert_eq!(
            run(Op::Mod { fmod: 0 }, &[&x, &y]).unwrap(),
            t(&[6], vec![0i8, -2, 5, 0, 2, 3])
        );
        assert_eq!(
            run(Op::Mod { fmod: 1 }, &[&x, &y]).unwrap(),
            t(&[6], vec![0i8, 1, 5, 0, -1, 3])
        );
        assert!(run(Op::Mod { fmod: 2 }, &[&x, &y]).is_err());
        // np.fmod on float32: test_mod_mixed_sign_float32 values.
        let x = t(&[3], vec![-4.3f32, 7.2, 5.0]);
        let y = t(&[3], vec![2.1f32, -3.4, 8.0]);
        close(
            &f32s(&run(Op::Mod { fmod: 1 }, &[&x, &y]).unwrap()),
            &[-0.10000038146972656, 0.39999961853027344, 5.0],
        );
        // np.mod (sign of divisor) on float32.
        close(
            &f32s(&run(Op::Mod { fmod: 0 }, &[&x, &y]).unwrap()),
            &[1.9999995231628418, -3.000000476837158, 5.0],
        );
    }

    #[test]
    fn pow_mixed_types() {
        // test_pow_types_*: the output has the base's type.
        let bi = t(&[3], vec![1i32, 2, 3]);
        let ef = t(&[3], vec![4.0f32, 5.0, 6.0]);
        assert_eq!(
            run(Op::Pow {}, &[&bi, &ef]).unwrap(),
            t(&[3], vec![1i32, 32, 729])
        );
        let bf = t(&[3], vec![1.0f32, 2.0, 3.0]);
        let ei = t(&[3], vec![4i64, 5, 6]);
        assert_eq!(
            run(Op::Pow {}, &[&bf, &ei]).unwrap(),
            t(&[3], vec![1.0f32, 32.0, 729.0])
        );
        assert_eq!(
            run(Op::Pow {}, &[&bf, &t(&[1], vec![2u64])]).unwrap(),
            t(&[3], vec![1.0f32, 4.0, 9.0])
        );
        assert_eq!(
            run(Op::Pow {}, &[&bi, &Tensor::scalar(-1i32)]).unwrap(),
            t(&[3], vec![1i32, 0, 0])
        );
        // Fractional powers: np.power(2**0.5 rounded to f32... ) and int bases truncate.
        assert_eq!(
            run(Op::Pow {}, &[&t(&[1], vec![2i32]), &Tensor::scalar(0.5f32)]).unwrap(),
            t(&[1], vec![1i32])
        );
        let r = f32s(
            &run(
                Op::Pow {},
                &[&t(&[2], vec![-8.0f32, 4.0]), &Tensor::scalar(0.5f32)],
            )
            .unwrap(),
        );
        assert!(r[0].is_nan());
        assert_eq!(r[1], 2.0);
        assert!(run(Op::Pow {}, &[&bf, &t(&[1], vec![true])]).is_err());
    }

    #[test]
    fn variadic_ops() {
        let a = t(&[3], vec![1.0f32, f32::NAN, 5.0]);
        let b = t(&[2, 1], vec![2.0f32, 4.0]);
        let c = Tensor::scalar(3.0f32);
        // numpy: np.maximum(np.maximum(a, b), c) == [[3, nan, 5], [4, nan, 5]].
        let m = f32s(&run(Op::Max {}, &[&a, &b, &c]).unwrap());
        assert_eq!([m[0], m[2], m[3], m[5]], [3.0, 5.0, 4.0, 5.0]);
        assert!(m[1].is_nan() && m[4].is_nan());
        let m = f32s(&run(Op::Min {}, &[&a, &b, &c]).unwrap());
        assert_eq!([m[0], m[2], m[3], m[5]], [1.0, 2.0, 1.0, 3.0]);
        assert!(m[1].is_nan());
        let s = run(Op::Sum {}, &[&b, &c]).unwrap();
        assert_eq!(f32s(&s), [5.0, 7.0]);
        assert_eq!(run(Op::Sum {}, &[&b]).unwrap(), b);
        assert_eq!(
            f32s(&run(Op::Mean {}, &[&b, &c, &c]).unwrap()),
            [8.0 / 3.0, 10.0 / 3.0]
        );
        let i = t(&[2], vec![3u32, 9]);
        assert_eq!(
            run(Op::Max {}, &[&i, &Tensor::scalar(5u32)]).unwrap(),
            t(&[2], vec![5u32, 9])
        );
        assert!(run(Op::Mean {}, &[&i]).is_err());
        assert!(eval(&Op::Sum {}, &[Some(&b), None], 1).is_err());
        assert!(eval(&Op::Max {}, &[], 1).is_err());
        let err = run(Op::Max {}, &[&b, &b, &i]).unwrap_err();
        assert!(err.contains("input 2"), "{err}");
    }

    #[test]
    fn comparisons_and_logic() {
        let a = t(&[3], vec![1.0f32, f32::NAN, -0.0]);
        let b = t(&[3], vec![2.0f32, f32::NAN, 0.0]);
        assert_eq!(
            run(Op::Equal {}, &[&a, &b]).unwrap(),
            t(&[3], vec![false, false, true])
        );
        assert_eq!(
            run(Op::Less {}, &[&a, &b]).unwrap(),
            t(&[3], vec![true, false, false])
        );
        assert_eq!(
            run(Op::LessOrEqual {}, &[&a, &b]).unwrap(),
            t(&[3], vec![true, false, true])
        );
        assert_eq!(
            run(Op::Greater {}, &[&a, &b]).unwrap(),
            t(&[3], vec![false, false, false])
        );
        assert_eq!(
            run(Op::GreaterOrEqual {}, &[&a, &b]).unwrap(),
            t(&[3], vec![false, false, true])
        );
        let s = t(&[2, 1], vec!["ab".to_string(), "cd".to_string()]);
        let u = t(&[2], vec!["ab".to_string(), "x".to_string()]);
        assert_eq!(
            run(Op::Equal {}, &[&s, &u]).unwrap(),
            t(&[2, 2], vec![true, false, false, false])
        );
        let i = t(&[2], vec![-1i16, 5]);
        assert_eq!(
            run(Op::Greater {}, &[&i, &Tensor::scalar(0i16)]).unwrap(),
            t(&[2], vec![false, true])
        );
        assert!(run(Op::Equal {}, &[&i, &a]).is_err());
        let p = t(&[4], vec![true, true, false, false]);
        let q = t(&[4], vec![true, false, true, false]);
        assert_eq!(
            run(Op::And {}, &[&p, &q]).unwrap(),
            t(&[4], vec![true, false, false, false])
        );
        assert_eq!(
            run(Op::Or {}, &[&p, &q]).unwrap(),
            t(&[4], vec![true, true, true, false])
        );
        assert_eq!(
            run(Op::Xor {}, &[&p, &q]).unwrap(),
            t(&[4], vec![false, true, true, false])
        );
        assert_eq!(run(Op::And {}, &[&p, &Tensor::scalar(true)]).unwrap(), p);
        assert!(run(Op::And {}, &[&p, &i]).is_err());
    }

    #[test]
    fn bitwise_ops() {
        let a = t(&[3], vec![16u8, 4, 1]);
        let b = t(&[3], vec![1u8, 2, 3]);
        let left = |d: &str| Op::BitShift {
            direction: d.to_string(),
        };
        assert_eq!(
            run(left("LEFT"), &[&a, &b]).unwrap(),
            t(&[3], vec![32u8, 16, 8])
        );
        assert_eq!(
            run(left("RIGHT"), &[&a, &b]).unwrap(),
            t(&[3], vec![8u8, 1, 0])
        );
        assert_eq!(
            run(left("LEFT"), &[&a, &Tensor::scalar(8u8)]).unwrap(),
            t(&[3], vec![0u8, 0, 0])
        );
        assert_eq!(
            run(
                left("RIGHT"),
                &[&t(&[1], vec![-16i32]), &Tensor::scalar(40i32)]
            )
            .unwrap(),
            t(&[1], vec![-1i32])
        );
        assert!(run(left("UP"), &[&a, &b]).is_err());
        let x = t(&[2], vec![0b1100u64, 0b1010]);
        let y = Tensor::scalar(0b0110u64);
        assert_eq!(
            run(Op::BitwiseAnd {}, &[&x, &y]).unwrap(),
            t(&[2], vec![0b0100u64, 0b0010])
        );
        assert_eq!(
            run(Op::BitwiseOr {}, &[&x, &y]).unwrap(),
            t(&[2], vec![0b1110u64, 0b1110])
        );
        assert_eq!(
            run(Op::BitwiseXor {}, &[&x, &y]).unwrap(),
            t(&[2], vec![0b1010u64, 0b1100])
        );
        assert!(run(
            Op::BitwiseAnd {},
            &[&t(&[1], vec![1.0f32]), &t(&[1], vec![1.0f32])]
        )
        .is_err());
    }

    #[test]
    fn clip_bounds() {
        let x = t(&[4], vec![-2.0f32, 0.0, 6.0, f32::NAN]);
        let lo = Tensor::scalar(-1.0f32);
        let hi = Tensor::scalar(5.0f32);
        let c = f32s(&run(Op::Clip {}, &[&x, &lo, &hi]).unwrap());
        assert_eq!(&c[..3], &[-1.0, 0.0, 5.0]);
        assert!(c[3].is_nan());
        // test_clip_min_greater_than_max: min 2, max 1 gives 1 everywhere.
        let c = run(
            Op::Clip {},
            &[&x, &Tensor::scalar(2.0f32), &Tensor::scalar(1.0f32)],
        )
        .unwrap();
        assert_eq!(&f32s(&c)[..3], &[1.0, 1.0, 1.0]);
        // Only a max, and none at all.
        let c = eval(&Op::Clip {}, &[Some(&x), None, Some(&hi)], 1)
            .unwrap()
            .remove(0);
        assert_eq!(&f32s(&c)[..3], &[-2.0, 0.0, 5.0]);
        assert_eq!(
            &f32s(&run(Op::Clip {}, &[&x]).unwrap())[..3],
            &[-2.0, 0.0, 6.0]
        );
        let i = t(&[3], vec![-100i8, 0, 100]);
        assert_eq!(
            run(Op::Clip {}, &[&i, &Tensor::scalar(-5i8)]).unwrap(),
            t(&[3], vec![-5i8, 0, 100])
        );
        assert!(run(Op::Clip {}, &[&i, &Tensor::scalar(-5.0f32)]).is_err());
        assert!(run(Op::Clip {}, &[&i, &t(&[2], vec![1i8, 2])]).is_err());
    }

    #[test]
    fn prelu_and_where() {
        // Slope [3] broadcasts to X [2, 3].
        let x = t(&[2, 3], vec![-1.0f32, 2.0, -3.0, 4.0, -5.0, 0.0]);
        let s = t(&[3], vec![0.1f32, 0.2, 0.3]);
        close(
            &f32s(&run(Op::PRelu {}, &[&x, &s]).unwrap()),
            &[
                -0.10000000149011612,
                2.0,
                -0.9000000357627869,
                4.0,
                -1.0,
                0.0,
            ],
        );
        assert!(run(Op::PRelu {}, &[&s, &x]).is_err());
        let xi = t(&[2], vec![-4i32, 4]);
        assert_eq!(
            run(Op::PRelu {}, &[&xi, &Tensor::scalar(3i32)]).unwrap(),
            t(&[2], vec![-12i32, 4])
        );
        // Where broadcasts all three: cond [2,1], x [3], y scalar -> [2, 3].
        let c = t(&[2, 1], vec![true, false]);
        let a = t(&[3], vec![1i64, 2, 3]);
        let w = run(Op::Where {}, &[&c, &a, &Tensor::scalar(9i64)]).unwrap();
        assert_eq!(w, t(&[2, 3], vec![1i64, 2, 3, 9, 9, 9]));
        let sa = t(&[1], vec!["yes".to_string()]);
        let sb = t(&[1], vec!["no".to_string()]);
        assert_eq!(
            run(Op::Where {}, &[&c, &sa, &sb]).unwrap(),
            t(&[2, 1], vec!["yes".to_string(), "no".to_string()])
        );
        assert!(run(Op::Where {}, &[&a, &a, &a]).is_err());
        assert!(run(Op::Where {}, &[&c, &a, &Tensor::scalar(9i32)]).is_err());
        assert!(run(Op::Where {}, &[&t(&[2], vec![true, false]), &a, &a]).is_err());
    }

    #[test]
    fn cast_ops() {
        let x = t(&[3], vec![1.7f32, -1.7, 300.0]);
        assert_eq!(
            run(
                Op::Cast {
                    to: DType::I16,
                    saturate: 1,
                    round_mode: "up".into()
                },
                &[&x]
            )
            .unwrap(),
            t(&[3], vec![1i16, -1, 300])
        );
        let like = Tensor::scalar(0u8);
        assert_eq!(
            run(
                Op::CastLike {
                    saturate: 1,
                    round_mode: "up".into()
                },
                &[&x, &like]
            )
            .unwrap(),
            t(&[3], vec![1u8, 255, 44])
        );
        assert_eq!(
            run(Op::BitCast { to: DType::U32 }, &[&Tensor::scalar(1.0f32)]).unwrap(),
            Tensor::scalar(0x3f80_0000u32)
        );
        assert!(run(Op::BitCast { to: DType::F64 }, &[&x]).is_err());
    }
}
