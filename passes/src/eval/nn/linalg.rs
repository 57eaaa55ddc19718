//! Matrix products and friends: MatMul, Gemm, Einsum, MatMulInteger, QLinearMatMul, Det.
//!
//! 2-D products go through [`Dot`]: ndarray's GEMM for f32/f64 (f16/bf16 via f32), exact
//! wrapping i64 loops for integers. Quantized products subtract zero points and multiply in
//! f64, which is exact for 8- and 16-bit operands.

use half::{bf16, f16};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Ix2, IxDyn};

use super::{from_f64, to_f64};
use crate::eval::util::{arr, broadcast_shape, checked_size, opt, req};
use crate::ir::{DType, Elem, Tensor};

/// A numeric element type with a 2-D matrix product.
pub(super) trait Dot: Elem + Copy + std::ops::Add<Output = Self> {
    /// `a · b` for `a: [n, k]`, `b: [k, m]` (the caller checks `k`).
    fn dot2(a: ArrayView2<Self>, b: ArrayView2<Self>) -> Array2<Self>;
}

impl Dot for f32 {
    fn dot2(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
        a.dot(&b)
    }
}

impl Dot for f64 {
    fn dot2(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
        a.dot(&b)
    }
}

macro_rules! dot_via_f32 {
    ($($t:ty),*) => {$(
        impl Dot for $t {
            fn dot2(a: ArrayView2<$t>, b: ArrayView2<$t>) -> Array2<$t> {
                let p = a.mapv(|x| x.to_f32()).dot(&b.mapv(|x| x.to_f32()));
                p.mapv(<$t>::from_f32)
            }
        }
    )*};
}
dot_via_f32!(f16, bf16);

macro_rules! dot_int {
    ($($t:ty),*) => {$(
        impl Dot for $t {
            fn dot2(a: ArrayView2<$t>, b: ArrayView2<$t>) -> Array2<$t> {
                let (n, k) = a.dim();
                let m = b.dim().1;
                Array2::from_shape_fn((n, m), |(i, j)| {
                    let mut acc = 0i64;
                    for p in 0..k {
                        acc = acc.wrapping_add((a[[i, p]] as i64).wrapping_mul(b[[p, j]] as i64));
                    }
                    acc as $t
                })
            }
        }
    )*};
}
dot_int!(i8, i16, i32, i64, u8, u16, u32, u64);

/// numpy `matmul`: 1-D operands are promoted (and the added dim dropped), batch dims broadcast.
pub(super) fn matmul_nd<T: Dot>(a: &ArrayD<T>, b: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err("matmul operands must have rank 1 or more".into());
    }
    let a2 = if a.ndim() == 1 {
        a.view().insert_axis(Axis(0))
    } else {
        a.view()
    };
    let b2 = if b.ndim() == 1 {
        b.view().insert_axis(Axis(1))
    } else {
        b.view()
    };
    let (ra, rb) = (a2.ndim(), b2.ndim());
    let (n, k) = (a2.shape()[ra - 2], a2.shape()[ra - 1]);
    let (k2, m) = (b2.shape()[rb - 2], b2.shape()[rb - 1]);
    if k != k2 {
        return Err(format!(
            "matmul inner dims differ: {:?} and {:?}",
            a.shape(),
            b.shape()
        ));
    }
    let batch = broadcast_shape(&a2.shape()[..ra - 2], &b2.shape()[..rb - 2])?;
    let mut full = batch.clone();
    full.extend([n, m]);
    let total = checked_size(&full)?;
    let mut a_shape = batch.clone();
    a_shape.extend([n, k]);
    let mut b_shape = batch.clone();
    b_shape.extend([k, m]);
    let ab = a2
        .broadcast(IxDyn(&a_shape))
        .ok_or("matmul batch dims do not broadcast")?;
    let bb = b2
        .broadcast(IxDyn(&b_shape))
        .ok_or("matmul batch dims do not broadcast")?;
    let mut out = Vec::with_capacity(total);
    let nb: usize = batch.iter().product();
    let mut idx = vec![0usize; batch.len()];
    for _ in 0..nb {
        let p = T::dot2(matrix(&ab, &idx), matrix(&bb, &idx));
        out.extend(p.iter().copied());
        super::odometer(&mut idx, &batch);
    }
    let mut shape = full;
    if b.ndim() == 1 {
        shape.remove(shape.len() - 1);
    }
    if a.ndim() == 1 {
        shape.remove(shape.len() - if b.ndim() == 1 { 1 } else { 2 });
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| e.to_string())
}

/// The matrix at batch index `idx` of a `[batch..., r, c]` view.
fn matrix<'a, T>(v: &ArrayViewD<'a, T>, idx: &[usize]) -> ArrayView2<'a, T> {
    let mut m = v.clone();
    for &i in idx {
        m = m.index_axis_move(Axis(0), i);
    }
    m.into_dimensionality::<Ix2>()
        .expect("batch dims stripped leave a matrix")
}

/// MatMul.
pub(super) fn matmul(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let a = req(inputs, 0)?;
    let b = req(inputs, 1)?;
    if a.dtype() != b.dtype() {
        return Err(format!(
            "operands have types {} and {}",
            a.dtype(),
            b.dtype()
        ));
    }
    crate::dispatch_numeric!(a, x => {
        let y = arr::<T>(inputs, 1)?;
        Ok(vec![T::wrap(matmul_nd(x, y)?)])
    }, _ => Err(format!("matmul does not support {}", a.dtype())))
}

/// Gemm: `alpha * A' · B' + beta * C`, with C unidirectionally broadcast to the result.
pub(super) fn gemm(
    inputs: &[Option<&Tensor>],
    alpha: f64,
    beta: f64,
    ta: bool,
    tb: bool,
) -> Result<Vec<Tensor>, String> {
    let a = req(inputs, 0)?;
    let dt = a.dtype();
    if req(inputs, 1)?.dtype() != dt {
        return Err("A and B have different types".into());
    }
    crate::dispatch_numeric!(a, x => {
        let y = arr::<T>(inputs, 1)?;
        let (x, y) = (as_matrix(x, "A")?, as_matrix(y, "B")?);
        let x = if ta { x.t() } else { x };
        let y = if tb { y.t() } else { y };
        if x.dim().1 != y.dim().0 {
            return Err(format!("inner dims differ: A' is {:?}, B' is {:?}", x.dim(), y.dim()));
        }
        checked_size(&[x.dim().0, y.dim().1])?;
        let p = T::dot2(x, y).into_dyn();
        let mut out = p.mapv(|v| v.to_f64() * alpha);
        if let Some(c) = opt(inputs, 2) {
            let c = to_f64(c, true).map_err(|e| format!("C: {e}"))?;
            let cb = c.broadcast(out.raw_dim()).ok_or_else(|| {
                format!("C of shape {:?} does not broadcast to {:?}", c.shape(), out.shape())
            })?;
            out.zip_mut_with(&cb, |o, &c| *o += beta * c);
        }
        Ok(vec![if dt.is_float() { Tensor::F64(out).cast(dt) } else { from_f64(out, dt) }])
    }, _ => Err(format!("gemm does not support {dt}")))
}

fn as_matrix<'a, T>(a: &'a ArrayD<T>, what: &str) -> Result<ArrayView2<'a, T>, String> {
    a.view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| format!("{what} must be 2-D, got shape {:?}", a.shape()))
}

/// `x - zero_point`, as f64. A 1-D zero point of length `per_row` (when the operand has rank
/// 2 or more) applies per row; otherwise it broadcasts like numpy.
fn shifted(x: &Tensor, zp: Option<&Tensor>, per_row: bool) -> Result<ArrayD<f64>, String> {
    let x = to_f64(x, true)?;
    let Some(zp) = zp else { return Ok(x) };
    let mut z = to_f64(zp, true)?;
    if per_row && z.ndim() == 1 && z.len() > 1 && x.ndim() >= 2 {
        z = z.insert_axis(Axis(1));
    }
    let shape = broadcast_shape(x.shape(), z.shape())?;
    let zb = z
        .broadcast(IxDyn(&shape))
        .ok_or("zero point does not broadcast")?;
    Ok(&x
        .broadcast(IxDyn(&shape))
        .ok_or("zero point does not broadcast")?
        - &zb)
}

/// MatMulInteger: `(A - a_zp) · (B - b_zp)` in i32.
pub(super) fn matmul_integer(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let a = shifted(req(inputs, 0)?, opt(inputs, 2), true)?;
    let b = shifted(req(inputs, 1)?, opt(inputs, 3), false)?;
    let p = matmul_nd(&a, &b)?;
    Ok(vec![Tensor::I32(p.mapv(|v| v as i64 as i32))])
}

/// QLinearMatMul: the integer product rescaled by `a_scale * b_scale / y_scale`, rounded half
/// to even, shifted by `y_zero_point` and wrapped to its type.
pub(super) fn qlinear_matmul(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let a = shifted(req(inputs, 0)?, opt(inputs, 2), true)?;
    let b = shifted(req(inputs, 3)?, opt(inputs, 5), false)?;
    let p = matmul_nd(&a, &b)?;
    // The scale factor is computed in the scales' own type, rounding after each operation.
    let sdt = req(inputs, 1)?.dtype();
    let round: fn(f64) -> f64 = match sdt {
        DType::F16 => |v| f16::from_f64(v).to_f64(),
        DType::BF16 => |v| bf16::from_f64(v).to_f64(),
        DType::F64 => |v| v,
        _ => |v| v as f32 as f64,
    };
    let (sa, sb, sy) = (
        to_f64(req(inputs, 1)?, false)?,
        to_f64(req(inputs, 4)?, false)?,
        to_f64(req(inputs, 6)?, false)?,
    );
    let factor = (&(&sa * &sb).mapv(round) / &sy).mapv(round);
    let shape = broadcast_shape(p.shape(), factor.shape())?;
    let fb = factor
        .broadcast(IxDyn(&shape))
        .ok_or("scales do not broadcast")?;
    let mut d = p
        .broadcast(IxDyn(&shape))
        .ok_or("scales do not broadcast")?
        .to_owned();
    d.zip_mut_with(&fb, |v, &f| *v *= f);
    let out_dt = opt(inputs, 7)
        .map(|t| t.dtype())
        .unwrap_or(req(inputs, 0)?.dtype());
    if let Some(zp) = opt(inputs, 7) {
        let z = to_f64(zp, true)?;
        let zb = z
            .broadcast(d.raw_dim())
            .ok_or("y_zero_point does not broadcast")?;
        d.zip_mut_with(&zb, |v, &z| *v = v.round_ties_even() + z);
    }
    if !out_dt.is_int() {
        return Err(format!(
            "quantized output type {out_dt} is not an integer type"
        ));
    }
    // The ONNX node tests expect out-of-range results to wrap (numpy `astype`), not saturate.
    Ok(vec![
        Tensor::I64(d.mapv(|v| v.round_ties_even() as i64)).cast(out_dt)
    ])
}

/// Det: determinants of the trailing `[n, n]` matrices, by LU with partial pivoting in f64.
pub(super) fn det(inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let t = req(inputs, 0)?;
    let x = to_f64(t, false)?;
    let r = x.ndim();
    if r < 2 || x.shape()[r - 1] != x.shape()[r - 2] {
        return Err(format!(
            "det needs square matrices in the last two dims, got {:?}",
            x.shape()
        ));
    }
    let n = x.shape()[r - 1];
    let batch = &x.shape()[..r - 2];
    let flat = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((batch.iter().product::<usize>(), n, n))
        .map_err(|e| e.to_string())?;
    let dets: Vec<f64> = flat.outer_iter().map(|m| lu_det(m.to_owned())).collect();
    let out = ArrayD::from_shape_vec(IxDyn(batch), dets).map_err(|e| e.to_string())?;
    Ok(vec![Tensor::F64(out).cast(t.dtype())])
}

fn lu_det(mut m: Array2<f64>) -> f64 {
    let n = m.nrows();
    let mut det = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[[i, c]].abs().total_cmp(&m[[j, c]].abs()))
            .expect("non-empty pivot range");
        if m[[p, c]] == 0.0 {
            return 0.0;
        }
        if p != c {
            for j in 0..n {
                m.swap([p, j], [c, j]);
            }
            det = -det;
        }
        let piv = m[[c, c]];
        det *= piv;
        for i in c + 1..n {
            let f = m[[i, c]] / piv;
            for j in c..n {
                m[[i, j]] -= f * m[[c, j]];
            }
        }
    }
    det
}

/// One parsed einsum operand: a label per dim (letters as their code point, ellipsis dims
/// as `ELLIPSIS_BASE + i` counted from the end of the ellipsis).
type Labels = Vec<u32>;
const ELLIPSIS_BASE: u32 = 0x1_0000;

/// Parses an operand term against its rank, expanding `...`.
fn parse_term(term: &str, rank: Option<usize>, ell_rank: &mut usize) -> Result<Labels, String> {
    let term = term.trim();
    let (pre, post, has_ell) = match term.find("...") {
        Some(i) => (&term[..i], &term[i + 3..], true),
        None => (term, "", false),
    };
    let letters = |s: &str| -> Result<Vec<u32>, String> {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    Ok(c as u32)
                } else {
                    Err(format!("bad einsum label '{c}'"))
                }
            })
            .collect()
    };
    let (pre, post) = (letters(pre)?, letters(post)?);
    let n_ell = match (has_ell, rank) {
        (false, _) => 0,
        (true, Some(r)) => r
            .checked_sub(pre.len() + post.len())
            .ok_or("einsum term has more labels than dims")?,
        (true, None) => *ell_rank,
    };
    if let (true, Some(_)) = (has_ell, rank) {
        *ell_rank = (*ell_rank).max(n_ell);
    }
    let mut out = pre;
    out.extend((0..n_ell).map(|i| ELLIPSIS_BASE + (n_ell - 1 - i) as u32));
    out.extend(post);
    if let Some(r) = rank {
        if out.len() != r {
            return Err(format!(
                "einsum term '{term}' has {} labels for rank {r}",
                out.len()
            ));
        }
    }
    Ok(out)
}

/// Einsum with repeated labels (diagonals), ellipsis broadcasting and implicit output.
pub(super) fn einsum(equation: &str, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>, String> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != inputs.len() {
        return Err(format!(
            "einsum equation has {} operands, the node has {}",
            terms.len(),
            inputs.len()
        ));
    }
    let first = req(inputs, 0)?;
    let dt = first.dtype();
    let ops: Vec<&Tensor> = (0..inputs.len())
        .map(|i| req(inputs, i))
        .collect::<Result<_, _>>()?;
    if ops.iter().any(|t| t.dtype() != dt) {
        return Err("einsum operands have different types".into());
    }
    let mut ell_rank = 0;
    let labels: Vec<Labels> = terms
        .iter()
        .zip(&ops)
        .map(|(t, x)| parse_term(t, Some(x.shape().len()), &mut ell_rank))
        .collect::<Result<_, _>>()?;
    // Sizes per label, broadcasting size-1 ellipsis dims.
    let mut sizes: std::collections::BTreeMap<u32, usize> = Default::default();
    for (ls, x) in labels.iter().zip(&ops) {
        for (&l, &d) in ls.iter().zip(x.shape()) {
            let e = sizes.entry(l).or_insert(d);
            if *e != d {
                if *e == 1 && l >= ELLIPSIS_BASE {
                    *e = d;
                } else if !(d == 1 && l >= ELLIPSIS_BASE) {
                    return Err(format!(
                        "einsum label '{}' has sizes {} and {d}",
                        label_name(l),
                        *e
                    ));
                }
            }
        }
    }
    let out_labels: Labels = match rhs {
        Some(r) => parse_term(r, None, &mut ell_rank)?,
        None => {
            let mut counts: std::collections::BTreeMap<u32, usize> = Default::default();
            for l in labels.iter().flatten() {
                *counts.entry(*l).or_default() += 1;
            }
            let mut out: Labels = (0..ell_rank)
                .rev()
                .map(|i| ELLIPSIS_BASE + i as u32)
                .collect();
            out.extend(
                counts
                    .iter()
                    .filter(|&(&l, &c)| c == 1 && l < ELLIPSIS_BASE)
                    .map(|(&l, _)| l),
            );
            out
        }
    };
    for l in &out_labels {
        if !sizes.contains_key(l) {
            return Err(format!(
                "einsum output label '{}' is not in any operand",
                label_name(*l)
            ));
        }
    }
    let mut all = out_labels.clone();
    all.extend(sizes.keys().filter(|l| !out_labels.contains(l)));
    let dims: Vec<usize> = all.iter().map(|l| sizes[l]).collect();
    let out_shape: Vec<usize> = out_labels.iter().map(|l| sizes[l]).collect();
    checked_size(&out_shape)?;
    // Strides of each operand along every label (0 for absent or broadcast dims; summed for
    // repeated labels, which walks the diagonal).
    let strides: Vec<Vec<isize>> = labels
        .iter()
        .zip(&ops)
        .map(|(ls, x)| {
            let shape = x.shape();
            let mut st = vec![1isize; shape.len()];
            for d in (0..shape.len().saturating_sub(1)).rev() {
                st[d] = st[d + 1] * shape[d + 1] as isize;
            }
            all.iter()
                .map(|l| {
                    ls.iter()
                        .enumerate()
                        .filter(|&(d, m)| m == l && shape[d] != 1)
                        .map(|(d, _)| st[d])
                        .sum()
                })
                .collect()
        })
        .collect();
    if dt.is_float() {
        let xs: Vec<Vec<f64>> = ops.iter().map(|t| t.to_f64_vec()).collect();
        let out = contract(&xs, &strides, &dims, out_labels.len(), 0.0, 1.0)?;
        let a = ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| e.to_string())?;
        Ok(vec![Tensor::F64(a).cast(dt)])
    } else if dt.is_int() {
        let xs: Vec<Vec<i64>> = ops
            .iter()
            .map(|t| t.to_i64_vec())
            .collect::<Result<_, _>>()?;
        let out = contract(&xs, &strides, &dims, out_labels.len(), 0i64, 1i64)?;
        let a = ArrayD::from_shape_vec(IxDyn(&out_shape), out).map_err(|e| e.to_string())?;
        Ok(vec![Tensor::I64(a).cast(dt)])
    } else {
        Err(format!("einsum does not support {dt}"))
    }
}

fn label_name(l: u32) -> String {
    if l >= ELLIPSIS_BASE {
        "...".into()
    } else {
        char::from_u32(l).map(String::from).unwrap_or_default()
    }
}

trait Acc: Copy {
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
}
impl Acc for f64 {
    fn add(self, o: f64) -> f64 {
        self + o
    }
    fn mul(self, o: f64) -> f64 {
        self * o
    }
}
impl Acc for i64 {
    fn add(self, o: i64) -> i64 {
        self.wrapping_add(o)
    }
    fn mul(self, o: i64) -> i64 {
        self.wrapping_mul(o)
    }
}

/// Sums the product of the operands over the trailing `dims.len() - n_out` labels for every
/// position of the leading `n_out` labels.
fn contract<A: Acc>(
    xs: &[Vec<A>],
    strides: &[Vec<isize>],
    dims: &[usize],
    n_out: usize,
    zero: A,
    one: A,
) -> Result<Vec<A>, String> {
    let (out_dims, sum_dims) = dims.split_at(n_out);
    let n_o: usize = checked_size(out_dims)?;
    let n_s: usize = sum_dims.iter().product();
    let mut out = Vec::with_capacity(n_o);
    let mut oi = vec![0usize; out_dims.len()];
    for _ in 0..n_o {
        let bases: Vec<isize> = strides
            .iter()
            .map(|st| oi.iter().zip(st).map(|(&i, &s)| i as isize * s).sum())
            .collect();
        let mut acc = zero;
        let mut si = vec![0usize; sum_dims.len()];
        for _ in 0..n_s {
            let mut p = one;
            for (k, x) in xs.iter().enumerate() {
                let off: isize = bases[k]
                    + si.iter()
                        .zip(&strides[k][n_out..])
                        .map(|(&i, &s)| i as isize * s)
                        .sum::<isize>();
                p = p.mul(x[off as usize]);
            }
            acc = acc.add(p);
            super::odometer(&mut si, sum_dims);
        }
        out.push(acc);
        super::odometer(&mut oi, out_dims);
    }
    Ok(out)
}
