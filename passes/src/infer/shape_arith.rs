//! Direct evaluation of the small ops that carry shape arithmetic (`Shape -> Gather ->
//! Concat -> Reshape` and friends), so that constant propagation does not depend on the
//! reference evaluator. Only called on known inputs whose outputs are known to be small;
//! anything it does not handle returns `None` and falls back to `eval::eval_op`.

use ndarray::{ArrayD, Axis, IxDyn, Zip};

use super::dims::norm_axis;
use super::ops::slice_len;
use crate::ir::{DType, Elem, Op, Tensor, TypeInfo};

/// Evaluates `op` when it is one of the ops handled here. `outs` are the inferred output
/// types, fully known.
pub fn eval(op: &Op, ins: &[Option<&Tensor>], outs: &[TypeInfo]) -> Option<Vec<Tensor>> {
    let shape = outs.first()?.shape.as_known()?;
    let x = || ins.first().copied().flatten();
    let t = match op {
        Op::Identity {} => x()?.clone(),
        Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze {} | Op::Unsqueeze {} => {
            x()?.reshape(&shape).ok()?
        }
        Op::Cast { to, .. } => x()?.cast(*to),
        Op::CastLike { .. } => x()?.cast(ins.get(1).copied().flatten()?.dtype()),
        Op::Concat { axis } => concat(ins, *axis)?,
        Op::Gather { axis } => gather(x()?, ins.get(1).copied().flatten()?, *axis, &shape)?,
        Op::Slice {} => slice(ins)?,
        Op::Transpose { perm } => {
            let x = x()?;
            let p: Vec<usize> = match perm {
                Some(p) => p
                    .iter()
                    .map(|&a| norm_axis(a, x.shape().len()).ok())
                    .collect::<Option<_>>()?,
                None => (0..x.shape().len()).rev().collect(),
            };
            crate::dispatch!(x, a => <T as Elem>::wrap(a.view().permuted_axes(IxDyn(&p)).to_owned()))
        }
        Op::Expand {} => {
            crate::dispatch!(x()?, a => <T as Elem>::wrap(a.broadcast(IxDyn(&shape))?.to_owned()))
        }
        Op::ConstantOfShape { value } => {
            let v = value.clone().unwrap_or_else(|| Tensor::scalar(0f32));
            if v.len() != 1 {
                return None;
            }
            crate::dispatch!(&v, a => <T as Elem>::wrap(ArrayD::from_elem(IxDyn(&shape), a.iter().next().cloned()?)))
        }
        Op::Range {} => range(ins, outs[0].dtype, &shape)?,
        Op::Neg {} | Op::Abs {} | Op::Floor {} | Op::Ceil {} => unary(op, x()?)?,
        Op::Add {}
        | Op::Sub {}
        | Op::Mul {}
        | Op::Div {}
        | Op::Mod { .. }
        | Op::Max {}
        | Op::Min {} => binary(op, ins, &shape, outs[0].dtype)?,
        Op::Equal {}
        | Op::Less {}
        | Op::Greater {}
        | Op::LessOrEqual {}
        | Op::GreaterOrEqual {} => compare(op, ins, &shape)?,
        Op::Where {} => where_(ins, &shape)?,
        Op::Not {} => Tensor::Bool(x()?.as_array::<bool>()?.mapv(|b| !b)),
        Op::And {} | Op::Or {} | Op::Xor {} => logic(op, ins, &shape)?,
        _ => return None,
    };
    Some(vec![t])
}

/// Exact integer values (all integer types but u64, whose values may not fit in i64).
fn int_array(t: &Tensor) -> Option<ArrayD<i64>> {
    let d = t.dtype();
    if !(d.is_int() || d == DType::Bool) || d == DType::U64 {
        return None;
    }
    Some(crate::dispatch!(t, a => a.map(|v| v.to_i64())))
}

fn float_array(t: &Tensor) -> Option<ArrayD<f64>> {
    t.dtype()
        .is_float()
        .then(|| crate::dispatch!(t, a => a.map(|v| v.to_f64())))
}

fn concat(ins: &[Option<&Tensor>], axis: i64) -> Option<Tensor> {
    let all: Vec<&Tensor> = ins.iter().copied().collect::<Option<_>>()?;
    let first = *all.first()?;
    let a = norm_axis(axis, first.shape().len()).ok()?;
    crate::dispatch!(first, _f => {
        let views: Vec<_> = all.iter().map(|t| <T as Elem>::unwrap(t).map(|a| a.view())).collect::<Option<_>>()?;
        Some(<T as Elem>::wrap(ndarray::concatenate(Axis(a), &views).ok()?))
    })
}

fn gather(x: &Tensor, idx: &Tensor, axis: i64, shape: &[usize]) -> Option<Tensor> {
    let a = norm_axis(axis, x.shape().len()).ok()?;
    let n = x.shape()[a] as i64;
    let idx: Vec<usize> = idx
        .to_i64_vec()
        .ok()?
        .into_iter()
        .map(|i| {
            let i = if i < 0 { i + n } else { i };
            (0..n).contains(&i).then_some(i as usize)
        })
        .collect::<Option<_>>()?;
    crate::dispatch!(x, arr => Some(<T as Elem>::wrap(arr.select(Axis(a), &idx).into_shape_with_order(IxDyn(shape)).ok()?)))
}

fn slice(ins: &[Option<&Tensor>]) -> Option<Tensor> {
    let x = ins.first().copied().flatten()?;
    let get = |i: usize| ins.get(i).copied().flatten().map(|t| t.to_i64_vec().ok());
    let (starts, ends) = (get(1)??, get(2)??);
    let r = x.shape().len();
    let axes: Vec<usize> = match get(3) {
        None => (0..starts.len()).collect(),
        Some(a) => a?
            .iter()
            .map(|&v| norm_axis(v, r).ok())
            .collect::<Option<_>>()?,
    };
    let steps = match get(4) {
        None => vec![1; starts.len()],
        Some(s) => s?,
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return None;
    }
    let mut cur = x.clone();
    for (i, &a) in axes.iter().enumerate() {
        let d = x.shape()[a];
        let len = slice_len(d, starts[i], ends[i], steps[i]).ok()?;
        if len == 0 {
            cur = crate::dispatch!(&cur, arr => <T as Elem>::wrap(arr.select(Axis(a), &[])));
            continue;
        }
        let (di, step) = (d as i64, steps[i]);
        let s = if starts[i] < 0 {
            starts[i].saturating_add(di)
        } else {
            starts[i]
        };
        let s = if step > 0 {
            s.clamp(0, di)
        } else {
            s.clamp(0, di - 1)
        };
        let idx: Vec<usize> = (0..len as i64).map(|k| (s + k * step) as usize).collect();
        cur = crate::dispatch!(&cur, arr => <T as Elem>::wrap(arr.select(Axis(a), &idx)));
    }
    Some(cur)
}

fn range(ins: &[Option<&Tensor>], dtype: DType, shape: &[usize]) -> Option<Tensor> {
    let n = *shape.first()?;
    let s = ins.first().copied().flatten()?;
    let d = ins.get(2).copied().flatten()?;
    let t = if let (Some(s), Some(d)) = (int_array(s), int_array(d)) {
        let (s, d) = (*s.iter().next()?, *d.iter().next()?);
        Tensor::from_vec(
            &[n],
            (0..n as i64)
                .map(|i| s.wrapping_add(i.wrapping_mul(d)))
                .collect(),
        )
        .ok()?
    } else {
        let (s, d) = (float_array(s)?, float_array(d)?);
        let (s, d) = (*s.iter().next()?, *d.iter().next()?);
        Tensor::from_vec(&[n], (0..n).map(|i| s + i as f64 * d).collect()).ok()?
    };
    Some(t.cast(dtype))
}

fn unary(op: &Op, x: &Tensor) -> Option<Tensor> {
    if let Some(a) = int_array(x) {
        let r = match op {
            Op::Neg {} => a.map(|v| v.wrapping_neg()),
            Op::Abs {} => a.map(|v| v.wrapping_abs()),
            Op::Floor {} | Op::Ceil {} => a,
            _ => return None,
        };
        return Some(Tensor::I64(r).cast(x.dtype()));
    }
    let a = float_array(x)?;
    let f: fn(f64) -> f64 = match op {
        Op::Neg {} => |v| -v,
        Op::Abs {} => f64::abs,
        Op::Floor {} => f64::floor,
        Op::Ceil {} => f64::ceil,
        _ => return None,
    };
    Some(Tensor::F64(a.map(|v| f(*v))).cast(x.dtype()))
}

/// The two operands broadcast to `shape`, as exact integers or as floats.
enum Pair {
    Int(ArrayD<i64>, ArrayD<i64>),
    Float(ArrayD<f64>, ArrayD<f64>),
}

fn pair(a: &Tensor, b: &Tensor, shape: &[usize]) -> Option<Pair> {
    if a.dtype() != b.dtype() {
        return None;
    }
    let bc = |x: ArrayD<i64>| x.broadcast(IxDyn(shape)).map(|v| v.to_owned());
    let bf = |x: ArrayD<f64>| x.broadcast(IxDyn(shape)).map(|v| v.to_owned());
    match (int_array(a), int_array(b)) {
        (Some(x), Some(y)) => Some(Pair::Int(bc(x)?, bc(y)?)),
        _ => Some(Pair::Float(bf(float_array(a)?)?, bf(float_array(b)?)?)),
    }
}

fn binary(op: &Op, ins: &[Option<&Tensor>], shape: &[usize], dtype: DType) -> Option<Tensor> {
    let (a, b) = (
        ins.first().copied().flatten()?,
        ins.get(1).copied().flatten()?,
    );
    if ins.len() > 2 {
        return None;
    }
    let t = match pair(a, b, shape)? {
        Pair::Int(x, y) => {
            let f: fn(i64, i64) -> Option<i64> = match op {
                Op::Add {} => |p, q| Some(p.wrapping_add(q)),
                Op::Sub {} => |p, q| Some(p.wrapping_sub(q)),
                Op::Mul {} => |p, q| Some(p.wrapping_mul(q)),
                // Truncating and flooring division agree on non-negative operands only.
                Op::Div {} => |p, q| (p >= 0 && q > 0).then(|| p / q),
                Op::Max {} => |p, q| Some(p.max(q)),
                // Python's `%` (sign of the divisor) and C's fmod agree on non-negative operands.
                Op::Mod { .. } => |p, q| (p >= 0 && q > 0).then(|| p % q),
                Op::Min {} => |p, q| Some(p.min(q)),
                _ => return None,
            };
            let v: Vec<i64> = x
                .iter()
                .zip(y.iter())
                .map(|(p, q)| f(*p, *q))
                .collect::<Option<_>>()?;
            Tensor::from_vec(shape, v).ok()?
        }
        Pair::Float(x, y) => {
            let f: fn(f64, f64) -> f64 = match op {
                Op::Add {} => |p, q| p + q,
                Op::Sub {} => |p, q| p - q,
                Op::Mul {} => |p, q| p * q,
                Op::Div {} => |p, q| p / q,
                _ => return None,
            };
            Tensor::F64(Zip::from(&x).and(&y).map_collect(|p, q| f(*p, *q)))
        }
    };
    Some(t.cast(dtype))
}

fn compare(op: &Op, ins: &[Option<&Tensor>], shape: &[usize]) -> Option<Tensor> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let (a, b) = (
        ins.first().copied().flatten()?,
        ins.get(1).copied().flatten()?,
    );
    let want: fn(Option<std::cmp::Ordering>) -> bool = match op {
        Op::Equal {} => |o| o == Some(Equal),
        Op::Less {} => |o| o == Some(Less),
        Op::Greater {} => |o| o == Some(Greater),
        Op::LessOrEqual {} => |o| matches!(o, Some(Less | Equal)),
        Op::GreaterOrEqual {} => |o| matches!(o, Some(Greater | Equal)),
        _ => return None,
    };
    let out = match pair(a, b, shape)? {
        Pair::Int(x, y) => Zip::from(&x)
            .and(&y)
            .map_collect(|p, q| want(p.partial_cmp(q))),
        Pair::Float(x, y) => Zip::from(&x)
            .and(&y)
            .map_collect(|p, q| want(p.partial_cmp(q))),
    };
    Some(Tensor::Bool(out))
}

fn where_(ins: &[Option<&Tensor>], shape: &[usize]) -> Option<Tensor> {
    let c = ins
        .first()
        .copied()
        .flatten()?
        .as_array::<bool>()?
        .broadcast(IxDyn(shape))?
        .to_owned();
    let (x, y) = (
        ins.get(1).copied().flatten()?,
        ins.get(2).copied().flatten()?,
    );
    crate::dispatch!(x, xa => {
        let ya = <T as Elem>::unwrap(y)?;
        let (xb, yb) = (xa.broadcast(IxDyn(shape))?, ya.broadcast(IxDyn(shape))?);
        Some(<T as Elem>::wrap(Zip::from(&c).and(&xb).and(&yb).map_collect(|c, p, q| T::clone(if *c { p } else { q }))))
    })
}

fn logic(op: &Op, ins: &[Option<&Tensor>], shape: &[usize]) -> Option<Tensor> {
    let get = |i: usize| -> Option<ArrayD<bool>> {
        ins.get(i)
            .copied()
            .flatten()?
            .as_array::<bool>()?
            .broadcast(IxDyn(shape))
            .map(|v| v.to_owned())
    };
    let (a, b) = (get(0)?, get(1)?);
    let f: fn(bool, bool) -> bool = match op {
        Op::And {} => |p, q| p && q,
        Op::Or {} => |p, q| p || q,
        Op::Xor {} => |p, q| p != q,
        _ => return None,
    };
    Some(Tensor::Bool(
        Zip::from(&a).and(&b).map_collect(|p, q| f(*p, *q)),
    ))
}
