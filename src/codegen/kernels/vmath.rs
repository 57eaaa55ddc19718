//! Vectorized f32 math emitted inline into Cranelift IR: every function here takes and returns
//! an `f32x4` value and emits plain SSE-level instructions (no libm calls, no FMA, so the code
//! is the same on every x86-64 target and never turns into a libcall).
//!
//! Accuracy (measured against the f64 reference evaluator rounded to f32, see the tests):
//! `exp`, `log`, `sigmoid`, `tanh`, `expm1`, `softplus` within about 2 ulp (relative error
//! below 2.5e-7) on their whole range; `erf` within 2e-7 relative error (|x| < 1) and 4e-8 absolute
//! error elsewhere; `gelu` within 1e-6 relative error where its value is not tiny, and with
//! relative accuracy (about 4e-6) in its negative tail, where `1 + erf` would cancel.
//! Special values follow the reference: NaN in gives NaN out, `exp(-inf) = 0`,
//! `exp(x) = inf` beyond 88.72, subnormal results are produced, `log(0) = -inf`,
//! `log(x < 0) = NaN`, `tanh`, `sigmoid` and `erf` saturate to their limits without NaN.
//!
//! The comparison helpers ([`max_nan`], [`min_nan`], [`max_const`], [`min_const`]) implement
//! numpy's NaN-propagating `maximum`/`minimum` with the reference's tie rules.
//!
//! A second family works on f64x2 lanes ([`dexp`], [`dlog`], [`dlog1p`], [`datan`], [`dpow`]
//! and the functions behind [`F64Fn`]): the f32 trigonometric and hyperbolic functions and Pow
//! with a general exponent widen to f64 ([`via_f64`]), compute to about 1e-15 relative error
//! and round once, so they match the reference's f64-then-round results but for near-ties
//! (measured: within 2.5e-7 relative on whole-range sweeps). Sin, Cos and Tan reduce their
//! argument modulo pi/2 exactly enough for every f32 (a Payne-Hanek style reduction with
//! 24-bit pieces of 2/pi).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, ConstantData, Endianness, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::fused::Activation;

/// An f32x4 with every lane `v`.
pub fn splat(b: &mut FunctionBuilder, v: f32) -> Value {
    let c = b.ins().f32const(v);
    b.ins().splat(types::F32X4, c)
}

fn isplat(b: &mut FunctionBuilder, v: i32) -> Value {
    let c = b.ins().iconst(types::I32, v as i64);
    b.ins().splat(types::I32X4, c)
}

fn to_int(b: &mut FunctionBuilder, x: Value) -> Value {
    b.ins().bitcast(types::I32X4, MemFlagsData::new(), x)
}

fn to_float(b: &mut FunctionBuilder, x: Value) -> Value {
    b.ins().bitcast(types::F32X4, MemFlagsData::new(), x)
}

/// Lane-wise `cond(x, y)` as an all-ones/all-zeros i32x4 mask.
pub fn cmp(b: &mut FunctionBuilder, cond: FloatCC, x: Value, y: Value) -> Value {
    b.ins().fcmp(cond, x, y)
}

/// Lane-wise `mask ? t : f` for an i32x4 mask from [`cmp`] and f32x4 `t`, `f`.
pub fn select(b: &mut FunctionBuilder, mask: Value, t: Value, f: Value) -> Value {
    let m = to_float(b, mask);
    b.ins().bitselect(m, t, f)
}

/// `v < a ? a : v`: a max with a constant or non-NaN `a` that keeps a NaN `v` (one `maxps`).
/// Equals the reference's `max(v, a)` whenever `a` is not NaN.
pub fn max_const(b: &mut FunctionBuilder, a: Value, v: Value) -> Value {
    let m = b.ins().fcmp(FloatCC::LessThan, v, a);
    let m = to_float(b, m);
    b.ins().bitselect(m, a, v)
}

/// `a < v ? a : v`: a min with a non-NaN `a` that keeps a NaN `v` (one `minps`).
/// Equals the reference's `min(v, a)` whenever `a` is not NaN.
pub fn min_const(b: &mut FunctionBuilder, a: Value, v: Value) -> Value {
    let m = b.ins().fcmp(FloatCC::LessThan, a, v);
    let m = to_float(b, m);
    b.ins().bitselect(m, a, v)
}

/// numpy `maximum(p, q)` as the reference computes it: NaN if either is NaN, `p` on ties.
pub fn max_nan(b: &mut FunctionBuilder, p: Value, q: Value) -> Value {
    let m = max_const(b, q, p);
    let qnan = b.ins().fcmp(FloatCC::Unordered, q, q);
    select(b, qnan, q, m)
}

/// numpy `minimum(p, q)` as the reference computes it: NaN if either is NaN, `p` on ties.
pub fn min_nan(b: &mut FunctionBuilder, p: Value, q: Value) -> Value {
    let m = min_const(b, q, p);
    let qnan = b.ins().fcmp(FloatCC::Unordered, q, q);
    select(b, qnan, q, m)
}

/// `|x|` (clears the sign bit).
pub fn abs(b: &mut FunctionBuilder, x: Value) -> Value {
    let xi = to_int(b, x);
    let m = isplat(b, 0x7fff_ffff);
    let r = b.ins().band(xi, m);
    to_float(b, r)
}

/// `-x` (flips the sign bit, as the reference's f64 negation does).
pub fn neg(b: &mut FunctionBuilder, x: Value) -> Value {
    let xi = to_int(b, x);
    let m = isplat(b, i32::MIN);
    let r = b.ins().bxor(xi, m);
    to_float(b, r)
}

/// `mag` with the sign bit of `sign` (`mag` must have a clear sign bit).
fn with_sign_of(b: &mut FunctionBuilder, mag: Value, sign: Value) -> Value {
    let si = to_int(b, sign);
    let m = isplat(b, i32::MIN);
    let s = b.ins().band(si, m);
    let mi = to_int(b, mag);
    let r = b.ins().bor(mi, s);
    to_float(b, r)
}

/// Horner evaluation of `c[0] + c[1] x + c[2] x^2 + ...` (mul and add, no FMA).
fn poly(b: &mut FunctionBuilder, x: Value, c: &[f64]) -> Value {
    let mut r = splat(b, c[c.len() - 1] as f32);
    for &k in c[..c.len() - 1].iter().rev() {
        let kk = splat(b, k as f32);
        let t = b.ins().fmul(r, x);
        r = b.ins().fadd(t, kk);
    }
    r
}

/// `2^n` for i32x4 `n` in [-126, 127], as f32x4.
fn pow2i(b: &mut FunctionBuilder, n: Value) -> Value {
    let bias = isplat(b, 127);
    let e = b.ins().iadd(n, bias);
    let e = b.ins().ishl_imm_s(e, 23);
    to_float(b, e)
}

/// `e^x`. Range reduction `x = n ln2 + r`, |r| <= ln2/2, a degree-7 polynomial for `e^r`, and
/// `2^n` applied in two halves so results down to the smallest subnormal and up to overflow
/// come out rounded once. `exp(-inf) = 0`, `exp(inf) = inf`, NaN stays NaN.
pub fn exp(b: &mut FunctionBuilder, x: Value) -> Value {
    // Clamp (keeping NaN): below -104 the result rounds to 0, above 89 it overflows.
    let lo = splat(b, -104.0);
    let hi = splat(b, 89.0);
    let x = max_const(b, lo, x);
    let x = min_const(b, hi, x);
    // n = round(x / ln2) via the 1.5 * 2^23 trick (also gives n as an integer).
    let magic = splat(b, 12_582_912.0);
    let log2e = splat(b, std::f32::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let t = b.ins().fadd(t, magic);
    let nf = b.ins().fsub(t, magic);
    let ti = to_int(b, t);
    let mi = isplat(b, 0x4b40_0000);
    let n = b.ins().isub(ti, mi);
    // r = x - n ln2 in two steps (the high part of ln2 has few bits, so n * C1 is exact).
    let c1 = splat(b, 0.693_359_4);
    let c2 = splat(b, -2.121_944_4e-4);
    let u = b.ins().fmul(nf, c1);
    let r = b.ins().fsub(x, u);
    let u = b.ins().fmul(nf, c2);
    let r = b.ins().fsub(r, u);
    // e^r = 1 + r + r^2 P(r).
    let p = poly(
        b,
        r,
        &[
            5.000_000_120_1e-1,
            1.666_666_545_9e-1,
            4.166_579_589_4e-2,
            8.333_451_907_3e-3,
            1.398_199_950_7e-3,
            1.987_569_150_0e-4,
        ],
    );
    let r2 = b.ins().fmul(r, r);
    let p = b.ins().fmul(p, r2);
    let p = b.ins().fadd(p, r);
    let one = splat(b, 1.0);
    let p = b.ins().fadd(p, one);
    // 2^n = 2^(n>>1) * 2^(n - (n>>1)), each factor a normal number for n in [-150, 128].
    let n1 = b.ins().sshr_imm_s(n, 1);
    let n2 = b.ins().isub(n, n1);
    let s1 = pow2i(b, n1);
    let s2 = pow2i(b, n2);
    let p = b.ins().fmul(p, s1);
    b.ins().fmul(p, s2)
}

/// `e^x - 1`, accurate near 0 (a Taylor polynomial for |x| < ln2/2, `exp(x) - 1` elsewhere).
pub fn expm1(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = abs(b, x);
    let lim = splat(b, 0.346_573_6);
    let small = b.ins().fcmp(FloatCC::LessThan, ax, lim);
    let p = poly(
        b,
        x,
        &[
            1.0 / 2.0,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 720.0,
            1.0 / 5040.0,
        ],
    );
    let x2 = b.ins().fmul(x, x);
    let p = b.ins().fmul(p, x2);
    let p = b.ins().fadd(p, x);
    let e = exp(b, x);
    let one = splat(b, 1.0);
    let e = b.ins().fsub(e, one);
    select(b, small, p, e)
}

/// Natural logarithm: `log(0) = -inf`, `log(x < 0) = NaN`, `log(inf) = inf`, subnormals
/// handled. Mantissa in [sqrt(1/2), sqrt(2)) and a degree-9 polynomial for `log(1 + m)`.
pub fn log(b: &mut FunctionBuilder, x: Value) -> Value {
    // Scale subnormals into the normal range.
    let tiny = splat(b, f32::MIN_POSITIVE);
    let sub = b.ins().fcmp(FloatCC::LessThan, x, tiny);
    let big = splat(b, 8_388_608.0);
    let xs = b.ins().fmul(x, big);
    let xs = select(b, sub, xs, x);
    let zero = splat(b, 0.0);
    let k23 = splat(b, 23.0);
    let eadj = select(b, sub, k23, zero);
    // x = m * 2^e with m in [0.5, 1).
    let xi = to_int(b, xs);
    let e = b.ins().sshr_imm_s(xi, 23);
    let k126 = isplat(b, 126);
    let e = b.ins().isub(e, k126);
    let e = b.ins().fcvt_from_sint(types::F32X4, e);
    let e = b.ins().fsub(e, eadj);
    let mm = isplat(b, 0x007f_ffff);
    let mi = b.ins().band(xi, mm);
    let half = isplat(b, 0x3f00_0000);
    let mi = b.ins().bor(mi, half);
    let m = to_float(b, mi);
    // m < sqrt(1/2): use 2m - 1 and e - 1, else m - 1.
    let sqrthf = splat(b, std::f32::consts::FRAC_1_SQRT_2);
    let low = b.ins().fcmp(FloatCC::LessThan, m, sqrthf);
    let one = splat(b, 1.0);
    let em1 = b.ins().fsub(e, one);
    let e = select(b, low, em1, e);
    let m2 = b.ins().fadd(m, m);
    let m = select(b, low, m2, m);
    let m = b.ins().fsub(m, one);
    let z = b.ins().fmul(m, m);
    let p = poly(
        b,
        m,
        &[
            3.333_333_117_4e-1,
            -2.499_999_399_3e-1,
            2.000_071_476_5e-1,
            -1.666_805_766_5e-1,
            1.424_932_278_7e-1,
            -1.242_014_084_6e-1,
            1.167_699_874_0e-1,
            -1.151_461_031_0e-1,
            7.037_683_629_2e-2,
        ],
    );
    let y = b.ins().fmul(p, m);
    let y = b.ins().fmul(y, z);
    let c2 = splat(b, -2.121_944_4e-4);
    let t = b.ins().fmul(e, c2);
    let y = b.ins().fadd(y, t);
    let h = splat(b, 0.5);
    let t = b.ins().fmul(z, h);
    let y = b.ins().fsub(y, t);
    let r = b.ins().fadd(m, y);
    let c1 = splat(b, 0.693_359_4);
    let t = b.ins().fmul(e, c1);
    let r = b.ins().fadd(r, t);
    // Special values.
    let inf = splat(b, f32::INFINITY);
    let is_inf = b.ins().fcmp(FloatCC::Equal, x, inf);
    let r = select(b, is_inf, inf, r);
    let ninf = splat(b, f32::NEG_INFINITY);
    let is_zero = b.ins().fcmp(FloatCC::Equal, x, zero);
    let r = select(b, is_zero, ninf, r);
    let nan = splat(b, f32::NAN);
    let bad = b.ins().fcmp(FloatCC::UnorderedOrLessThan, x, zero);
    select(b, bad, nan, r)
}

/// `log(1 + y)` for `y >= 0` (or NaN), accurate for tiny `y`.
fn log1p_pos(b: &mut FunctionBuilder, y: Value) -> Value {
    // u = 1 + y; log(u) * y / (u - 1) corrects the rounding of u; u == 1 gives y.
    let one = splat(b, 1.0);
    let u = b.ins().fadd(one, y);
    let l = log(b, u);
    let d = b.ins().fsub(u, one);
    let q = b.ins().fdiv(y, d);
    let l2 = b.ins().fmul(l, q);
    let same = b.ins().fcmp(FloatCC::Equal, u, one);
    let r = select(b, same, y, l2);
    // For huge y (u = inf) the correction is inf/inf; log(u) alone is right there.
    let inf = splat(b, f32::INFINITY);
    let big = b.ins().fcmp(FloatCC::Equal, u, inf);
    select(b, big, l, r)
}

/// `log(1 + e^x)` (Softplus): `max(x, 0) + log1p(e^-|x|)`.
pub fn softplus(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = abs(b, x);
    let nax = neg(b, ax);
    let e = exp(b, nax);
    let l = log1p_pos(b, e);
    let zero = splat(b, 0.0);
    let m = max_const(b, zero, x);
    b.ins().fadd(m, l)
}

/// `1 / (1 + e^-x)`, without overflow: `e = e^-|x|`, `1/(1+e)` or `e/(1+e)`. Saturates to 0
/// and 1 (subnormal results kept), NaN stays NaN.
pub fn sigmoid(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = abs(b, x);
    let nax = neg(b, ax);
    let e = exp(b, nax);
    let one = splat(b, 1.0);
    let d = b.ins().fadd(one, e);
    let r = b.ins().fdiv(one, d);
    let er = b.ins().fdiv(e, d);
    let zero = splat(b, 0.0);
    let negx = b.ins().fcmp(FloatCC::LessThan, x, zero);
    select(b, negx, er, r)
}

/// `tanh(x)`: an odd polynomial for |x| < 0.625, `1 - 2 / (e^(2|x|) + 1)` beyond (saturating
/// to ±1), the sign of `x` restored.
pub fn tanh(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = abs(b, x);
    // Small: x + x z P(z), z = x^2.
    let z = b.ins().fmul(x, x);
    let p = poly(
        b,
        z,
        &[
            -3.333_328_194_22e-1,
            1.333_144_220_36e-1,
            -5.373_971_555_31e-2,
            2.063_908_879_54e-2,
            -5.704_988_727_45e-3,
        ],
    );
    let p = b.ins().fmul(p, z);
    let p = b.ins().fmul(p, x);
    let small = b.ins().fadd(p, x);
    // Large.
    let a2 = b.ins().fadd(ax, ax);
    let e = exp(b, a2);
    let one = splat(b, 1.0);
    let two = splat(b, 2.0);
    let d = b.ins().fadd(e, one);
    let q = b.ins().fdiv(two, d);
    let large = b.ins().fsub(one, q);
    let large = with_sign_of(b, large, x);
    let lim = splat(b, 0.625);
    let is_small = b.ins().fcmp(FloatCC::LessThan, ax, lim);
    select(b, is_small, small, large)
}

/// Coefficients of `erf(x) / x` as a polynomial in `x^2` on [0, 1] (Chebyshev interpolation of
/// the f64 `erf`, max relative error 1.7e-7 in f32 evaluation).
const ERF_SMALL: [f64; 7] = [
    1.128_379_165_848_350_4,
    -0.376_126_266_667_196_3,
    0.112_835_947_151_523_62,
    -0.026_854_212_010_276_41,
    0.005_189_087_422_780_045_6,
    -0.000_801_686_428_181_775_5,
    7.875_875_046_790_626e-5,
];

/// Coefficients of `log(erfc(a))` as a polynomial in `a - 3.5` on [1, 6] (Chebyshev
/// interpolation, relative error of `exp` of it about 4e-6 in f32 evaluation).
const ERFC_TAIL: [f64; 11] = [
    -14.112_437_402_148_19,
    -7.266_099_562_086_188,
    -0.966_753_082_472_870_2,
    -0.005_225_734_195_477_974,
    0.000_873_774_269_282_921_5,
    -0.000_147_248_073_850_949_52,
    2.431_254_595_453_951_5e-5,
    -3.894_899_471_872_487e-6,
    6.097_255_008_921_704e-7,
    -8.385_928_909_751_501e-8,
    6.605_460_046_096_282e-9,
];

/// `erf(a)` for |a| < 1 (odd polynomial; keeps the sign of `a`).
fn erf_small(b: &mut FunctionBuilder, a: Value) -> Value {
    let z = b.ins().fmul(a, a);
    let p = poly(b, z, &ERF_SMALL);
    b.ins().fmul(p, a)
}

/// `erfc(a)` for `a >= 1` (0 beyond 6, as the reference's `erf` is exactly 1 there).
fn erfc_tail(b: &mut FunctionBuilder, a: Value) -> Value {
    let six = splat(b, 6.0);
    let ac = min_const(b, six, a);
    let mid = splat(b, 3.5);
    let u = b.ins().fsub(ac, mid);
    let q = poly(b, u, &ERFC_TAIL);
    let r = exp(b, q);
    let zero = splat(b, 0.0);
    let beyond = b.ins().fcmp(FloatCC::GreaterThanOrEqual, a, six);
    select(b, beyond, zero, r)
}

/// The error function (saturates to ±1, NaN stays NaN).
pub fn erf(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = abs(b, x);
    let small = erf_small(b, x);
    let c = erfc_tail(b, ax);
    let one = splat(b, 1.0);
    let large = b.ins().fsub(one, c);
    let large = with_sign_of(b, large, x);
    let is_small = b.ins().fcmp(FloatCC::LessThan, ax, one);
    select(b, is_small, small, large)
}

/// `0.5 x (1 + erf(x / sqrt 2))` (Gelu, exact form), with `1 + erf(z) = erfc(-z)` for
/// `z <= -1` so the negative tail keeps its relative accuracy.
pub fn gelu(b: &mut FunctionBuilder, x: Value) -> Value {
    let k = splat(b, std::f32::consts::FRAC_1_SQRT_2);
    let z = b.ins().fmul(x, k);
    let az = abs(b, z);
    let small = erf_small(b, z);
    let one = splat(b, 1.0);
    let small = b.ins().fadd(one, small);
    let c = erfc_tail(b, az);
    let two = splat(b, 2.0);
    let pos = b.ins().fsub(two, c);
    let zero = splat(b, 0.0);
    let negz = b.ins().fcmp(FloatCC::LessThan, z, zero);
    let large = select(b, negz, c, pos);
    let is_small = b.ins().fcmp(FloatCC::LessThan, az, one);
    let onep = select(b, is_small, small, large);
    let h = splat(b, 0.5);
    let hx = b.ins().fmul(x, h);
    b.ins().fmul(hx, onep)
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (Gelu, tanh form), computed as
/// `x sigmoid(2 y)` so the negative tail does not cancel.
pub fn gelu_tanh(b: &mut FunctionBuilder, x: Value) -> Value {
    let x2 = b.ins().fmul(x, x);
    let c = splat(b, 0.044_715);
    let t = b.ins().fmul(x2, c);
    let one = splat(b, 1.0);
    let t = b.ins().fadd(t, one);
    let t = b.ins().fmul(t, x);
    let k = splat(b, (2.0 * std::f64::consts::FRAC_2_PI.sqrt()) as f32);
    let y = b.ins().fmul(t, k);
    let s = sigmoid(b, y);
    b.ins().fmul(x, s)
}

/// `x sigmoid(alpha x)` (Swish; SiLU for alpha 1).
pub fn swish(b: &mut FunctionBuilder, alpha: f32, x: Value) -> Value {
    let ax = if alpha == 1.0 {
        x
    } else {
        let a = splat(b, alpha);
        b.ins().fmul(x, a)
    };
    let s = sigmoid(b, ax);
    b.ins().fmul(x, s)
}

/// `x < 0 ? 0 : x` (NaN and -0 kept, as the reference).
pub fn relu(b: &mut FunctionBuilder, x: Value) -> Value {
    let zero = splat(b, 0.0);
    max_const(b, zero, x)
}

/// `x < 0 ? alpha x : x`.
pub fn leaky_relu(b: &mut FunctionBuilder, alpha: f32, x: Value) -> Value {
    let zero = splat(b, 0.0);
    let a = splat(b, alpha);
    let ax = b.ins().fmul(x, a);
    let m = b.ins().fcmp(FloatCC::LessThan, x, zero);
    select(b, m, ax, x)
}

/// numpy `minimum(maximum(x, lo), hi)` with constant bounds (NaN bounds give NaN, as in the
/// reference; `lo > hi` gives `hi`).
pub fn clip(b: &mut FunctionBuilder, lo: Option<f32>, hi: Option<f32>, x: Value) -> Value {
    let mut v = x;
    if let Some(lo) = lo {
        v = if lo.is_nan() {
            splat(b, f32::NAN)
        } else {
            let l = splat(b, lo);
            max_const(b, l, v)
        };
    }
    if let Some(hi) = hi {
        v = if hi.is_nan() {
            splat(b, f32::NAN)
        } else {
            let h = splat(b, hi);
            min_const(b, h, v)
        };
    }
    v
}

/// `clamp(x, 0, 1)` keeping NaN.
fn clamp01(b: &mut FunctionBuilder, x: Value) -> Value {
    clip(b, Some(0.0), Some(1.0), x)
}

/// `max(0, min(1, alpha x + beta))`.
pub fn hard_sigmoid(b: &mut FunctionBuilder, alpha: f32, beta: f32, x: Value) -> Value {
    let a = splat(b, alpha);
    let c = splat(b, beta);
    let t = b.ins().fmul(x, a);
    let t = b.ins().fadd(t, c);
    clamp01(b, t)
}

/// `x clamp((x + 3) / 6, 0, 1)` (HardSwish).
pub fn hard_swish(b: &mut FunctionBuilder, x: Value) -> Value {
    let three = splat(b, 3.0);
    let six = splat(b, 6.0);
    let t = b.ins().fadd(x, three);
    let t = b.ins().fdiv(t, six);
    let t = clamp01(b, t);
    b.ins().fmul(x, t)
}

/// `x tanh(softplus(x))` (Mish).
pub fn mish(b: &mut FunctionBuilder, x: Value) -> Value {
    let s = softplus(b, x);
    let t = tanh(b, s);
    b.ins().fmul(x, t)
}

// ---- f64x2 math -------------------------------------------------------------------------
//
// The functions below work on f64x2 lanes. The f32x4 trigonometric and hyperbolic functions
// widen their input to two f64x2 ([`via_f64`]), compute in f64 (relative error about 1e-15,
// so the f32 result is the reference's rounded f64 value but for rare near-ties) and round
// once. They also serve f64 Exp/Log and Pow with a float exponent.

/// An f64x2 with every lane `v`.
pub fn dsplat(b: &mut FunctionBuilder, v: f64) -> Value {
    let c = b.ins().f64const(v);
    b.ins().splat(types::F64X2, c)
}

fn lsplat(b: &mut FunctionBuilder, v: i64) -> Value {
    let c = b.ins().iconst(types::I64, v);
    b.ins().splat(types::I64X2, c)
}

fn dbits(b: &mut FunctionBuilder, x: Value) -> Value {
    b.ins().bitcast(types::I64X2, MemFlagsData::new(), x)
}

fn dfloat(b: &mut FunctionBuilder, x: Value) -> Value {
    b.ins().bitcast(types::F64X2, MemFlagsData::new(), x)
}

/// Lane-wise `mask ? t : f` for an i64x2 mask and f64x2 `t`, `f`.
pub fn dselect(b: &mut FunctionBuilder, mask: Value, t: Value, f: Value) -> Value {
    let m = dfloat(b, mask);
    b.ins().bitselect(m, t, f)
}

/// `|x|` on f64x2.
pub fn dabs(b: &mut FunctionBuilder, x: Value) -> Value {
    let xi = dbits(b, x);
    let m = lsplat(b, i64::MAX);
    let r = b.ins().band(xi, m);
    dfloat(b, r)
}

/// `mag` with its sign bit flipped where `sign` is negative-signed (copysign for `mag >= 0`).
fn dxor_sign(b: &mut FunctionBuilder, mag: Value, sign: Value) -> Value {
    let si = dbits(b, sign);
    let m = lsplat(b, i64::MIN);
    let s = b.ins().band(si, m);
    let mi = dbits(b, mag);
    let r = b.ins().bxor(mi, s);
    dfloat(b, r)
}

/// Horner evaluation on f64x2 (mul and add, no FMA).
fn dpoly(b: &mut FunctionBuilder, x: Value, c: &[f64]) -> Value {
    let mut r = dsplat(b, c[c.len() - 1]);
    for &k in c[..c.len() - 1].iter().rev() {
        let kk = dsplat(b, k);
        let t = b.ins().fmul(r, x);
        r = b.ins().fadd(t, kk);
    }
    r
}

/// `1 / k!` for `k` in `ks`, with alternating signs when `alt` (Taylor coefficients).
fn taylor(ks: impl Iterator<Item = u32>, alt: bool) -> Vec<f64> {
    ks.enumerate()
        .map(|(i, k)| {
            let f: f64 = (1..=k).map(f64::from).product();
            if alt && i % 2 == 1 {
                -1.0 / f
            } else {
                1.0 / f
            }
        })
        .collect()
}

/// Clamps f64x2 `x` into `[lo, hi]`, NaN kept.
fn dclamp(b: &mut FunctionBuilder, lo: f64, hi: f64, x: Value) -> Value {
    let l = dsplat(b, lo);
    let m = b.ins().fcmp(FloatCC::LessThan, x, l);
    let x = dselect(b, m, l, x);
    let h = dsplat(b, hi);
    let m = b.ins().fcmp(FloatCC::GreaterThan, x, h);
    dselect(b, m, h, x)
}

/// An integral f64x2 with |v| < 2^51 as i64x2 (the 1.5 * 2^52 trick).
fn dto_int(b: &mut FunctionBuilder, v: Value) -> Value {
    let magic = dsplat(b, 6_755_399_441_055_744.0);
    let t = b.ins().fadd(v, magic);
    let ti = dbits(b, t);
    let mi = lsplat(b, 0x4338_0000_0000_0000);
    b.ins().isub(ti, mi)
}

/// `2^k` for an integral f64x2 `k` in [-1022, 1023].
fn dpow2(b: &mut FunctionBuilder, k: Value) -> Value {
    let n = dto_int(b, k);
    let bias = lsplat(b, 1023);
    let n = b.ins().iadd(n, bias);
    let e = b.ins().ishl_imm_s(n, 52);
    dfloat(b, e)
}

/// ln 2 = `LN2_HI + LN2_LO` to about 2^-86: `LN2_HI` has 32 significant bits (so `n LN2_HI`
/// is exact for |n| < 2^21), `LN2_LO` is the f64 nearest to the rest.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `e^x` on f64x2 over the whole f64 range (subnormal results included, `exp(-inf) = 0`,
/// overflow to inf, NaN kept): `x = n ln2 + r`, a degree-13 Taylor polynomial for `e^r`, and
/// `2^n` applied in two halves.
pub fn dexp(b: &mut FunctionBuilder, x: Value) -> Value {
    let x = dclamp(b, -746.0, 710.0, x);
    let log2e = dsplat(b, std::f64::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    let n = b.ins().nearest(t);
    let hi = dsplat(b, LN2_HI);
    let lo = dsplat(b, LN2_LO);
    let u = b.ins().fmul(n, hi);
    let r = b.ins().fsub(x, u);
    let u = b.ins().fmul(n, lo);
    let r = b.ins().fsub(r, u);
    let p = dpoly(b, r, &taylor(0..=13, false));
    // A NaN n would make garbage scale factors: zero it (p is NaN then anyway).
    let ok = b.ins().fcmp(FloatCC::Equal, n, n);
    let z = dsplat(b, 0.0);
    let n = dselect(b, ok, n, z);
    let h = dsplat(b, 0.5);
    let n1 = b.ins().fmul(n, h);
    let n1 = b.ins().floor(n1);
    let n2 = b.ins().fsub(n, n1);
    let s1 = dpow2(b, n1);
    let s2 = dpow2(b, n2);
    let p = b.ins().fmul(p, s1);
    b.ins().fmul(p, s2)
}

/// Natural logarithm on f64x2: `log(0) = -inf`, `log(x < 0) = NaN`, `log(inf) = inf`,
/// subnormals handled. `x = m 2^e` with m in [sqrt(1/2), sqrt(2)), `log(m) = 2 atanh(s)`
/// with `s = (m - 1) / (m + 1)` as an odd series.
pub fn dlog(b: &mut FunctionBuilder, x: Value) -> Value {
    let tiny = dsplat(b, f64::MIN_POSITIVE);
    let sub = b.ins().fcmp(FloatCC::LessThan, x, tiny);
    let big = dsplat(b, 18_014_398_509_481_984.0); // 2^54
    let xs = b.ins().fmul(x, big);
    let xs = dselect(b, sub, xs, x);
    let z0 = dsplat(b, 0.0);
    let k54 = dsplat(b, 54.0);
    let eadj = dselect(b, sub, k54, z0);
    let xi = dbits(b, xs);
    // Exponent as a float: (bits >> 52) is in [0, 2047] (sign cleared below for x > 0).
    let e = b.ins().ushr_imm_s(xi, 52);
    let magic = lsplat(b, 0x4330_0000_0000_0000); // 2^52
    let e = b.ins().bor(e, magic);
    let e = dfloat(b, e);
    let k = dsplat(b, 4_503_599_627_370_496.0 + 1023.0);
    let e = b.ins().fsub(e, k);
    let e = b.ins().fsub(e, eadj);
    let mm = lsplat(b, 0x000f_ffff_ffff_ffff);
    let mi = b.ins().band(xi, mm);
    let one_bits = lsplat(b, 0x3ff0_0000_0000_0000);
    let mi = b.ins().bor(mi, one_bits);
    let m = dfloat(b, mi);
    // m in [1, 2): above sqrt(2) use m / 2 and e + 1.
    let sq2 = dsplat(b, std::f64::consts::SQRT_2);
    let high = b.ins().fcmp(FloatCC::GreaterThan, m, sq2);
    let h = dsplat(b, 0.5);
    let mh = b.ins().fmul(m, h);
    let m = dselect(b, high, mh, m);
    let one = dsplat(b, 1.0);
    let e1 = b.ins().fadd(e, one);
    let e = dselect(b, high, e1, e);
    let num = b.ins().fsub(m, one);
    let den = b.ins().fadd(m, one);
    let s = b.ins().fdiv(num, den);
    let z = b.ins().fmul(s, s);
    let c: Vec<f64> = (0..12).map(|k| 2.0 / (2 * k + 1) as f64).collect();
    let p = dpoly(b, z, &c);
    let lm = b.ins().fmul(p, s);
    let hi = dsplat(b, LN2_HI);
    let lo = dsplat(b, LN2_LO);
    let t = b.ins().fmul(e, lo);
    let r = b.ins().fadd(lm, t);
    let t = b.ins().fmul(e, hi);
    let r = b.ins().fadd(r, t);
    // Special values.
    let inf = dsplat(b, f64::INFINITY);
    let is_inf = b.ins().fcmp(FloatCC::Equal, x, inf);
    let r = dselect(b, is_inf, inf, r);
    let ninf = dsplat(b, f64::NEG_INFINITY);
    let is_zero = b.ins().fcmp(FloatCC::Equal, x, z0);
    let r = dselect(b, is_zero, ninf, r);
    let nan = dsplat(b, f64::NAN);
    let bad = b.ins().fcmp(FloatCC::UnorderedOrLessThan, x, z0);
    dselect(b, bad, nan, r)
}

/// `log(1 + y)` on f64x2, accurate for tiny `y` (`log1p(-1) = -inf`, NaN below -1).
pub fn dlog1p(b: &mut FunctionBuilder, y: Value) -> Value {
    let one = dsplat(b, 1.0);
    let u = b.ins().fadd(one, y);
    let l = dlog(b, u);
    // log(1 + y) = log(u) + (y - (u - 1)) / u to first order.
    let d = b.ins().fsub(u, one);
    let c = b.ins().fsub(y, d);
    let c = b.ins().fdiv(c, u);
    let r = b.ins().fadd(l, c);
    let same = b.ins().fcmp(FloatCC::Equal, u, one);
    let r = dselect(b, same, y, r);
    // u = 0 or inf: log(u) alone (the correction is NaN there).
    let au = dabs(b, u);
    let inf = dsplat(b, f64::INFINITY);
    let z = dsplat(b, 0.0);
    let e1 = b.ins().fcmp(FloatCC::Equal, au, inf);
    let e2 = b.ins().fcmp(FloatCC::Equal, u, z);
    let edge = b.ins().bor(e1, e2);
    dselect(b, edge, l, r)
}

/// The bits of 2/pi after the binary point, 24 at a time (chunk `i` weighs `2^(-24 (i + 1))`).
const TWO_OVER_PI: [u32; 9] = [
    0xa2f983, 0x6e4e44, 0x1529fc, 0x2757d1, 0xf534dd, 0xc0db62, 0x95993c, 0x439041, 0xfe5163,
];

/// `p - 4 round(p / 4)`, exact.
fn dmod4(b: &mut FunctionBuilder, p: Value) -> Value {
    let q = dsplat(b, 0.25);
    let f = dsplat(b, 4.0);
    let t = b.ins().fmul(p, q);
    let t = b.ins().nearest(t);
    let t = b.ins().fmul(t, f);
    b.ins().fsub(p, t)
}

/// Reduces f64x2 `x` holding f32 values (24 significant bits) modulo pi/2: `x = (4k + q)
/// pi/2 + r` with |r| <= pi/4 (a hair more after rounding), returning `r` and `q` (i64x2).
///
/// `x 2/pi` is summed from exact products of `x` with 24-bit pieces of 2/pi, each reduced
/// modulo 4 exactly (pieces whose product is a multiple of 4 drop out), with a compensated
/// sum, so even the largest f32 reduces to full f64 accuracy. inf and NaN give NaN.
fn reduce_pio2(b: &mut FunctionBuilder, x: Value) -> (Value, Value) {
    let mut acc = dsplat(b, 0.0);
    let mut err = dsplat(b, 0.0);
    for (i, &c) in TWO_OVER_PI.iter().enumerate() {
        let ci = dsplat(b, f64::from(c) * 2f64.powi(-24 * (i as i32 + 1)));
        let p = b.ins().fmul(x, ci);
        let p = dmod4(b, p);
        // Two-sum: s + e = acc + p exactly.
        let s = b.ins().fadd(acc, p);
        let t = b.ins().fsub(s, acc);
        let u = b.ins().fsub(s, t);
        let ea = b.ins().fsub(acc, u);
        let eb = b.ins().fsub(p, t);
        let e = b.ins().fadd(ea, eb);
        err = b.ins().fadd(err, e);
        acc = dmod4(b, s);
    }
    let q = b.ins().nearest(acc);
    let f = b.ins().fsub(acc, q);
    let f = b.ins().fadd(f, err);
    let pio2 = dsplat(b, std::f64::consts::FRAC_PI_2);
    let r = b.ins().fmul(f, pio2);
    // q in [-2, 2]; NaN lanes give garbage quadrants with a NaN r.
    let ok = b.ins().fcmp(FloatCC::Equal, q, q);
    let z = dsplat(b, 0.0);
    let q = dselect(b, ok, q, z);
    let qi = dto_int(b, q);
    (r, qi)
}

/// `(sin r, cos r)` for |r| <= pi/4 + a little (Taylor to degree 17 and 18).
fn dsincos_poly(b: &mut FunctionBuilder, r: Value) -> (Value, Value) {
    let z = b.ins().fmul(r, r);
    let ps = dpoly(b, z, &taylor((1..=17).step_by(2), true));
    let s = b.ins().fmul(ps, r);
    let pc = dpoly(b, z, &taylor((0..=18).step_by(2), true));
    (s, pc)
}

/// The quadrant `q` (i64x2) with bit `bit` set, as an i64x2 mask.
fn qbit(b: &mut FunctionBuilder, q: Value, bit: i64) -> Value {
    let m = lsplat(b, bit);
    let v = b.ins().band(q, m);
    b.ins().icmp(IntCC::Equal, v, m)
}

/// `sin x` (`cos x` when `cos`) on f64x2 holding f32 values.
fn dsin_cos(b: &mut FunctionBuilder, x: Value, cos: bool) -> Value {
    let (r, q) = reduce_pio2(b, x);
    let q = if cos {
        let one = lsplat(b, 1);
        b.ins().iadd(q, one)
    } else {
        q
    };
    let (s, c) = dsincos_poly(b, r);
    let odd = qbit(b, q, 1);
    let v = dselect(b, odd, c, s);
    let neg = qbit(b, q, 2);
    let nv = b.ins().fneg(v);
    let v = dselect(b, neg, nv, v);
    if cos {
        v
    } else {
        // sin x = x for tiny x (keeps -0 and subnormals).
        keep_tiny(b, x, v)
    }
}

/// `|x| < 2^-30 ? x : v`.
fn keep_tiny(b: &mut FunctionBuilder, x: Value, v: Value) -> Value {
    let ax = dabs(b, x);
    let t = dsplat(b, 2f64.powi(-30));
    let m = b.ins().fcmp(FloatCC::LessThan, ax, t);
    dselect(b, m, x, v)
}

/// `tan x` on f64x2 holding f32 values.
fn dtan(b: &mut FunctionBuilder, x: Value) -> Value {
    let (r, q) = reduce_pio2(b, x);
    let (s, c) = dsincos_poly(b, r);
    // Odd quadrants: tan = -cos r / sin r.
    let odd = qbit(b, q, 1);
    let num = dselect(b, odd, c, s);
    let den = dselect(b, odd, s, c);
    let t = b.ins().fdiv(num, den);
    let nt = b.ins().fneg(t);
    let t = dselect(b, odd, nt, t);
    keep_tiny(b, x, t)
}

/// `atan x` on f64x2: `pi/2 - atan(1/x)` beyond 1 (so ±inf give ±pi/2), two argument
/// halvings `t / (1 + sqrt(1 + t^2))` to |t| <= tan(pi/16), and an odd series.
pub fn datan(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = dabs(b, x);
    let one = dsplat(b, 1.0);
    let big = b.ins().fcmp(FloatCC::GreaterThan, ax, one);
    let inv = b.ins().fdiv(one, ax);
    let mut t = dselect(b, big, inv, ax);
    for _ in 0..2 {
        let t2 = b.ins().fmul(t, t);
        let s = b.ins().fadd(t2, one);
        let s = b.ins().sqrt(s);
        let d = b.ins().fadd(s, one);
        t = b.ins().fdiv(t, d);
    }
    let z = b.ins().fmul(t, t);
    let c: Vec<f64> = (0..12)
        .map(|k| {
            let v = 4.0 / (2 * k + 1) as f64;
            if k % 2 == 1 {
                -v
            } else {
                v
            }
        })
        .collect();
    let p = dpoly(b, z, &c);
    let a = b.ins().fmul(p, t);
    let pio2 = dsplat(b, std::f64::consts::FRAC_PI_2);
    let ab = b.ins().fsub(pio2, a);
    let a = dselect(b, big, ab, a);
    dxor_sign(b, a, x)
}

/// `asin x = atan(x / sqrt((1 - x)(1 + x)))` on f64x2 (NaN beyond ±1).
fn dasin(b: &mut FunctionBuilder, x: Value) -> Value {
    let one = dsplat(b, 1.0);
    let p = b.ins().fsub(one, x);
    let q = b.ins().fadd(one, x);
    let d = b.ins().fmul(p, q);
    let d = b.ins().sqrt(d);
    let t = b.ins().fdiv(x, d);
    datan(b, t)
}

/// `acos x = 2 atan(sqrt((1 - x) / (1 + x)))` on f64x2 (NaN beyond ±1).
fn dacos(b: &mut FunctionBuilder, x: Value) -> Value {
    let one = dsplat(b, 1.0);
    let p = b.ins().fsub(one, x);
    let q = b.ins().fadd(one, x);
    let t = b.ins().fdiv(p, q);
    let t = b.ins().sqrt(t);
    let a = datan(b, t);
    b.ins().fadd(a, a)
}

/// `sinh x` (`cosh x` when `cosh`) on f64x2: `(e^|x| ∓ e^-|x|) / 2`, and an odd Taylor
/// series for sinh below 1 (no cancellation).
fn dsinh_cosh(b: &mut FunctionBuilder, x: Value, cosh: bool) -> Value {
    let ax = dabs(b, x);
    let e = dexp(b, ax);
    let one = dsplat(b, 1.0);
    let ie = b.ins().fdiv(one, e);
    let h = dsplat(b, 0.5);
    if cosh {
        let s = b.ins().fadd(e, ie);
        return b.ins().fmul(s, h);
    }
    let d = b.ins().fsub(e, ie);
    let large = b.ins().fmul(d, h);
    let z = b.ins().fmul(ax, ax);
    let p = dpoly(b, z, &taylor((1..=17).step_by(2), false));
    let small = b.ins().fmul(p, ax);
    let is_small = b.ins().fcmp(FloatCC::LessThan, ax, one);
    let r = dselect(b, is_small, small, large);
    dxor_sign(b, r, x)
}

/// `asinh x = sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2)))` on f64x2.
fn dasinh(b: &mut FunctionBuilder, x: Value) -> Value {
    let ax = dabs(b, x);
    let one = dsplat(b, 1.0);
    let z = b.ins().fmul(ax, ax);
    let s = b.ins().fadd(z, one);
    let s = b.ins().sqrt(s);
    let s = b.ins().fadd(s, one);
    let q = b.ins().fdiv(z, s);
    let t = b.ins().fadd(ax, q);
    // |x| = inf: inf / inf above; the answer is inf.
    let inf = dsplat(b, f64::INFINITY);
    let is_inf = b.ins().fcmp(FloatCC::Equal, ax, inf);
    let t = dselect(b, is_inf, inf, t);
    let r = dlog1p(b, t);
    dxor_sign(b, r, x)
}

/// `acosh x = log1p((x - 1) + sqrt((x - 1)(x + 1)))` on f64x2 (NaN below 1).
fn dacosh(b: &mut FunctionBuilder, x: Value) -> Value {
    let one = dsplat(b, 1.0);
    let p = b.ins().fsub(x, one);
    let q = b.ins().fadd(x, one);
    let d = b.ins().fmul(p, q);
    let d = b.ins().sqrt(d);
    let t = b.ins().fadd(p, d);
    let r = dlog1p(b, t);
    // Below 1 (where (x - 1)(x + 1) may still be positive): NaN.
    let lt = b.ins().fcmp(FloatCC::LessThan, x, one);
    let nan = dsplat(b, f64::NAN);
    dselect(b, lt, nan, r)
}

/// `atanh x = log1p(2x / (1 - x)) / 2` on f64x2 (±inf at ±1, NaN beyond).
fn datanh(b: &mut FunctionBuilder, x: Value) -> Value {
    let one = dsplat(b, 1.0);
    let d = b.ins().fsub(one, x);
    let n = b.ins().fadd(x, x);
    let t = b.ins().fdiv(n, d);
    let l = dlog1p(b, t);
    let h = dsplat(b, 0.5);
    b.ins().fmul(l, h)
}

/// The lanes of an f32x4 as two f64x2 (lanes 0-1, lanes 2-3), exactly.
fn widen(b: &mut FunctionBuilder, x: Value) -> (Value, Value) {
    let lo = b.ins().fvpromote_low(x);
    let le = MemFlagsData::new().with_endianness(Endianness::Little);
    let bytes = b.ins().bitcast(types::I8X16, le, x);
    let mask: Vec<u8> = (8..16).chain(8..16).collect();
    let imm = b.func.dfg.immediates.push(ConstantData::from(mask));
    let hb = b.ins().shuffle(bytes, bytes, imm);
    let h = b.ins().bitcast(types::F32X4, le, hb);
    let hi = b.ins().fvpromote_low(h);
    (lo, hi)
}

/// Two f64x2 rounded to f32 and packed into one f32x4 (`lo` in lanes 0-1).
fn narrow(b: &mut FunctionBuilder, lo: Value, hi: Value) -> Value {
    let l = b.ins().fvdemote(lo);
    let h = b.ins().fvdemote(hi);
    let le = MemFlagsData::new().with_endianness(Endianness::Little);
    let lb = b.ins().bitcast(types::I8X16, le, l);
    let hb = b.ins().bitcast(types::I8X16, le, h);
    let mask: Vec<u8> = (0..8).chain(16..24).collect();
    let imm = b.func.dfg.immediates.push(ConstantData::from(mask));
    let v = b.ins().shuffle(lb, hb, imm);
    b.ins().bitcast(types::F32X4, le, v)
}

/// Applies the f64x2 function `f` to the lanes of f32x4 `x` and rounds the results to f32.
pub fn via_f64(
    b: &mut FunctionBuilder,
    x: Value,
    f: &dyn Fn(&mut FunctionBuilder, Value) -> Value,
) -> Value {
    let (lo, hi) = widen(b, x);
    let lo = f(b, lo);
    let hi = f(b, hi);
    narrow(b, lo, hi)
}

/// Applies the binary f64x2 function `f` to the lanes of f32x4 `x` and `y`, rounding to f32.
pub fn via_f64_2(
    b: &mut FunctionBuilder,
    x: Value,
    y: Value,
    f: &dyn Fn(&mut FunctionBuilder, Value, Value) -> Value,
) -> Value {
    let (xl, xh) = widen(b, x);
    let (yl, yh) = widen(b, y);
    let lo = f(b, xl, yl);
    let hi = f(b, xh, yh);
    narrow(b, lo, hi)
}

/// A function of the f64x2 family, by name (the f32x4 engine maps ONNX ops onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F64Fn {
    /// `sin`.
    Sin,
    /// `cos`.
    Cos,
    /// `tan`.
    Tan,
    /// `asin`.
    Asin,
    /// `acos`.
    Acos,
    /// `atan`.
    Atan,
    /// `sinh`.
    Sinh,
    /// `cosh`.
    Cosh,
    /// `asinh`.
    Asinh,
    /// `acosh`.
    Acosh,
    /// `atanh`.
    Atanh,
    /// `exp`.
    Exp,
    /// `log`.
    Log,
}

/// `f` on f64x2 `x`. Sin, Cos and Tan assume `x` holds f32 values (24 significant bits).
pub fn dapply(b: &mut FunctionBuilder, f: F64Fn, x: Value) -> Value {
    match f {
        F64Fn::Sin => dsin_cos(b, x, false),
        F64Fn::Cos => dsin_cos(b, x, true),
        F64Fn::Tan => dtan(b, x),
        F64Fn::Asin => dasin(b, x),
        F64Fn::Acos => dacos(b, x),
        F64Fn::Atan => datan(b, x),
        F64Fn::Sinh => dsinh_cosh(b, x, false),
        F64Fn::Cosh => dsinh_cosh(b, x, true),
        F64Fn::Asinh => dasinh(b, x),
        F64Fn::Acosh => dacosh(b, x),
        F64Fn::Atanh => datanh(b, x),
        F64Fn::Exp => dexp(b, x),
        F64Fn::Log => dlog(b, x),
    }
}

/// `x^y` on f64x2 as C `pow` (the reference's `powf`): `exp(y log|x|)` with the sign of an
/// odd integer power of a negative base, and the special cases: `x^0 = 1` and `1^y = 1` even
/// for NaN, `(-1)^±inf = 1`, NaN for a negative finite base and a non-integer finite
/// exponent, `0^y` and `inf^y` by the signs of `y` and `x`.
pub fn dpow(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let ax = dabs(b, x);
    let l = dlog(b, ax);
    let t = b.ins().fmul(y, l);
    let r = dexp(b, t);
    // y integer and odd (|y| >= 2^53 is even; inf counts as an even integer).
    let fy = b.ins().floor(y);
    let int = b.ins().fcmp(FloatCC::Equal, fy, y);
    let h = dsplat(b, 0.5);
    let hy = b.ins().fmul(y, h);
    let fhy = b.ins().floor(hy);
    let half_int = b.ins().fcmp(FloatCC::Equal, fhy, hy);
    let odd = b.ins().band_not(int, half_int);
    // Negative-signed base (-0 and -inf included) and odd y: negate.
    let one = dsplat(b, 1.0);
    let z = dsplat(b, 0.0);
    let sx = dxor_sign(b, one, x);
    let xneg = b.ins().fcmp(FloatCC::LessThan, sx, z);
    let flip = b.ins().band(xneg, odd);
    let nr = b.ins().fneg(r);
    let r = dselect(b, flip, nr, r);
    // Negative finite base, finite non-integer y: NaN.
    let ninf = dsplat(b, f64::NEG_INFINITY);
    let inf = dsplat(b, f64::INFINITY);
    let xlt = b.ins().fcmp(FloatCC::LessThan, x, z);
    let xfin = b.ins().fcmp(FloatCC::GreaterThan, x, ninf);
    let ay = dabs(b, y);
    let yfin = b.ins().fcmp(FloatCC::LessThan, ay, inf);
    let bad = b.ins().band(xlt, xfin);
    let bad = b.ins().band(bad, yfin);
    let bad = b.ins().band_not(bad, int);
    let nan = dsplat(b, f64::NAN);
    let r = dselect(b, bad, nan, r);
    // |x| = 1 with y = ±inf, x = 1, y = 0: 1.
    let ax1 = b.ins().fcmp(FloatCC::Equal, ax, one);
    let yinf = b.ins().fcmp(FloatCC::Equal, ay, inf);
    let m1 = b.ins().band(ax1, yinf);
    let x1 = b.ins().fcmp(FloatCC::Equal, x, one);
    let y0 = b.ins().fcmp(FloatCC::Equal, y, z);
    let m = b.ins().bor(m1, x1);
    let m = b.ins().bor(m, y0);
    dselect(b, m, one, r)
}

/// Applies a fused op's activation to an f32x4 (what the conv and GEMM epilogues call).
pub fn activation(b: &mut FunctionBuilder, act: &Activation, x: Value) -> Value {
    match *act {
        Activation::None => x,
        Activation::Relu => relu(b, x),
        Activation::LeakyRelu(alpha) => leaky_relu(b, alpha, x),
        Activation::Clip(lo, hi) => clip(b, Some(lo), Some(hi), x),
        Activation::Sigmoid => sigmoid(b, x),
        Activation::HardSigmoid(alpha, beta) => hard_sigmoid(b, alpha, beta, x),
        Activation::HardSwish => hard_swish(b, x),
        Activation::Silu => swish(b, 1.0, x),
        Activation::Gelu => gelu(b, x),
        Activation::Tanh => tanh(b, x),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codegen::kernel::{KernelCx, Target};
    use cranelift_codegen::ir::condcodes::IntCC;
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_jit::{JITBuilder, JITModule};
    use cranelift_module::default_libcall_names;
    use graphc_passes::eval::{compare, eval_graph};
    use graphc_passes::ir::text::parse;
    use graphc_passes::ir::Tensor;

    /// Maps `xs` through `f` in a JIT'd f32x4 loop.
    pub(crate) fn map_jit(
        f: &dyn Fn(&mut FunctionBuilder, Value) -> Value,
        xs: &[f32],
    ) -> Vec<f32> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").unwrap();
        let isa = cranelift_native::builder()
            .unwrap()
            .finish(settings::Flags::new(flags))
            .unwrap();
        let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        let n4 = xs.len().div_ceil(4);
        let id = {
            let mut cx = KernelCx::new(&mut module, Target::baseline(), "vm_");
            cx.define_kernel("map", |b, p| {
                let fl = MemFlagsData::trusted();
                let src = b.ins().load(types::I64, fl, p.bufs, 0);
                let dst = b.ins().load(types::I64, fl, p.bufs, 8);
                let head = b.create_block();
                let body = b.create_block();
                let exit = b.create_block();
                b.append_block_param(head, types::I64);
                b.ins().jump(head, &[p.begin.into()]);
                b.switch_to_block(head);
                let i = b.block_params(head)[0];
                let more = b.ins().icmp(IntCC::UnsignedLessThan, i, p.end);
                b.ins().brif(more, body, &[], exit, &[]);
                b.switch_to_block(body);
                let off = b.ins().imul_imm_s(i, 16);
                let s = b.ins().iadd(src, off);
                let d = b.ins().iadd(dst, off);
                // Vec<f32> is only 4-byte aligned: no `aligned` flag on element accesses.
                let em = MemFlagsData::new().with_notrap();
                let v = b.ins().load(types::F32X4, em, s, 0);
                let r = f(b, v);
                b.ins().store(em, r, d, 0);
                let i1 = b.ins().iadd_imm_s(i, 1);
                b.ins().jump(head, &[i1.into()]);
                b.switch_to_block(exit);
                b.ins().return_(&[]);
                Ok(())
            })
            .unwrap()
        };
        module.finalize_definitions().unwrap();
        let mut inp = xs.to_vec();
        inp.resize(n4 * 4, 0.0);
        let mut out = vec![0f32; n4 * 4];
        let ptrs = [inp.as_mut_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
        let code = module.get_finalized_function(id);
        // SAFETY: the kernel has the uniform ABI and reads/writes n4 vectors of each buffer.
        unsafe {
            let k: unsafe extern "C" fn(*const *mut u8, u64, u64) = std::mem::transmute(code);
            k(ptrs.as_ptr(), 0, n4 as u64);
            module.free_memory();
        }
        out.truncate(xs.len());
        out
    }

    /// Inputs spanning `[lo, hi]` densely, plus special values.
    pub(crate) fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect();
        v.extend([
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1e-40,
            -1e-40,
            1e-30,
            -1e-30,
            f32::MAX,
            f32::MIN,
            1e-7,
            -1e-7,
            3.4e38,
        ]);
        // Powers of two and their neighbours over the whole exponent range.
        for e in -149..=127 {
            let p = 2f32.powi(e);
            v.extend([p, -p, p * 1.3, -p * 1.7]);
        }
        v
    }

    /// Checks `f` against the reference evaluator's `op_text` (e.g. `exp`) on `xs`.
    pub(crate) fn check_unary(
        op_text: &str,
        f: &dyn Fn(&mut FunctionBuilder, Value) -> Value,
        xs: &[f32],
        rtol: f64,
        atol: f64,
    ) {
        let n = xs.len();
        let text = format!(
            "graph \"g\" (%x: f32[{n}]) {{\n  %y: f32[{n}] = {op_text} (%x)\n  return %y\n}}\n"
        );
        let g = parse(&text).unwrap();
        let x = Tensor::from_vec(&[n], xs.to_vec()).unwrap();
        let want = eval_graph(&g, &[Some(x)]).unwrap().remove(0);
        let got = Tensor::from_vec(&[n], map_jit(f, xs)).unwrap();
        if let Err(e) = compare(&got, &want, rtol, atol) {
            let (a, w) = (got.to_f64_vec(), want.to_f64_vec());
            let bad: Vec<String> = xs
                .iter()
                .zip(a.iter().zip(&w))
                .filter(|(_, (a, w))| {
                    !(a == w
                        || (a.is_nan() && w.is_nan())
                        || (*a - *w).abs() <= atol + rtol * w.abs())
                })
                .take(8)
                .map(|(x, (a, w))| format!("x={x:e}: got {a:e} want {w:e}"))
                .collect();
            panic!("{op_text}: {e}\n{}", bad.join("\n"));
        }
    }

    // Tolerances: one f32 ulp is a relative 6e-8 to 1.2e-7; rtol 2.5e-7 is about 2 ulp, and
    // every function here passes it on these sweeps (tanh, sigmoid, exp, log, softplus, elu
    // over their whole ranges, powers of two from 2^-149 to 2^127, ±0, ±inf, NaN, subnormals).
    // atol 1e-38 only forgives subnormal results (tiny absolute, large relative steps).
    const RTOL: f64 = 2.5e-7;
    const ATOL: f64 = 1e-38;

    #[test]
    fn exp_matches_reference() {
        check_unary(
            "exp",
            &|b, x| exp(b, x),
            &sweep(-110.0, 95.0, 20000),
            RTOL,
            ATOL,
        );
        check_unary(
            "exp",
            &|b, x| exp(b, x),
            &sweep(-1.0, 1.0, 20000),
            RTOL,
            ATOL,
        );
    }

    #[test]
    fn log_matches_reference() {
        let mut xs = sweep(0.0, 4.0, 20000);
        xs.extend(sweep(0.5, 1.5, 20000));
        xs.extend(sweep(-1.0, 1e6, 20000));
        check_unary("log", &|b, x| log(b, x), &xs, RTOL, 0.0);
    }

    #[test]
    fn tanh_sigmoid_match_reference() {
        let xs = sweep(-20.0, 20.0, 40000);
        check_unary("tanh", &|b, x| tanh(b, x), &xs, RTOL, ATOL);
        let xs2 = sweep(-110.0, 110.0, 40000);
        check_unary("tanh", &|b, x| tanh(b, x), &xs2, RTOL, ATOL);
        check_unary("sigmoid", &|b, x| sigmoid(b, x), &xs, RTOL, ATOL);
        check_unary("sigmoid", &|b, x| sigmoid(b, x), &xs2, RTOL, ATOL);
    }

    #[test]
    fn erf_gelu_match_reference() {
        let xs = sweep(-7.0, 7.0, 40000);
        // erf: relative 1e-6 near 0 and an absolute 1e-7 (below 1 ulp of 1) in the tails.
        check_unary("erf", &|b, x| erf(b, x), &xs, RTOL, 1e-7);
        // gelu: the reference's own `1 + erf` loses accuracy for x < -4 (f64 cancellation),
        // so below that only an absolute 1e-12 is meaningful.
        check_unary("gelu", &|b, x| gelu(b, x), &xs, 4e-6, 1e-12);
        check_unary(
            "gelu {approximate: \"tanh\"}",
            &|b, x| gelu_tanh(b, x),
            &xs,
            2e-6,
            1e-12,
        );
    }

    #[test]
    fn softplus_expm1_match_reference() {
        let xs = sweep(-120.0, 120.0, 40000);
        check_unary("softplus", &|b, x| softplus(b, x), &xs, RTOL, ATOL);
        let xs = sweep(-2.0, 2.0, 40000);
        check_unary("softplus", &|b, x| softplus(b, x), &xs, RTOL, ATOL);
        check_unary(
            "elu {alpha: 1.0}",
            &|b, x| {
                let e = expm1(b, x);
                let zero = splat(b, 0.0);
                let m = b.ins().fcmp(FloatCC::LessThan, x, zero);
                select(b, m, e, x)
            },
            &xs,
            RTOL,
            ATOL,
        );
    }

    /// `f` of the f64x2 family on f32x4 lanes.
    fn f64_fn(f: F64Fn) -> impl Fn(&mut FunctionBuilder, Value) -> Value {
        move |b: &mut FunctionBuilder, x: Value| via_f64(b, x, &|b, v| dapply(b, f, v))
    }

    #[test]
    fn trigonometric_match_reference() {
        // Computed in f64 and rounded once: the reference's f32 result but for near-ties.
        // The sweeps include every power of two up to 2^127, so the reduction modulo pi/2
        // is checked on the largest arguments; 1e4..1e5 dense.
        let mut xs = sweep(-10.0, 10.0, 40000);
        xs.extend(sweep(-1e5, 1e5, 40000));
        xs.extend(sweep(1e4, 1e4 + 40.0, 40000));
        // Close to multiples of pi/2 (the worst cancellation).
        for k in 1..2000 {
            let c = k as f64 * std::f64::consts::FRAC_PI_2;
            let f = c as f32;
            xs.extend([
                f,
                f32::from_bits(f.to_bits() + 1),
                f32::from_bits(f.to_bits() - 1),
            ]);
        }
        for (name, f) in [
            ("sin", F64Fn::Sin),
            ("cos", F64Fn::Cos),
            ("tan", F64Fn::Tan),
        ] {
            check_unary(name, &f64_fn(f), &xs, RTOL, ATOL);
        }
        let xs = sweep(-1.5, 1.5, 40000);
        check_unary("asin", &f64_fn(F64Fn::Asin), &xs, RTOL, ATOL);
        check_unary("acos", &f64_fn(F64Fn::Acos), &xs, RTOL, ATOL);
        let mut xs = sweep(-100.0, 100.0, 40000);
        xs.extend(sweep(-2.0, 2.0, 40000));
        check_unary("atan", &f64_fn(F64Fn::Atan), &xs, RTOL, ATOL);
    }

    #[test]
    fn hyperbolic_match_reference() {
        let mut xs = sweep(-100.0, 100.0, 40000);
        xs.extend(sweep(-2.0, 2.0, 40000));
        check_unary("sinh", &f64_fn(F64Fn::Sinh), &xs, RTOL, ATOL);
        check_unary("cosh", &f64_fn(F64Fn::Cosh), &xs, RTOL, ATOL);
        check_unary("asinh", &f64_fn(F64Fn::Asinh), &xs, RTOL, ATOL);
        let mut xs = sweep(0.5, 100.0, 40000);
        xs.extend(sweep(0.999, 1.01, 40000));
        check_unary("acosh", &f64_fn(F64Fn::Acosh), &xs, RTOL, ATOL);
        let xs = sweep(-1.2, 1.2, 40000);
        check_unary("atanh", &f64_fn(F64Fn::Atanh), &xs, RTOL, ATOL);
        // exp and log in f64, rounded to f32 here.
        let xs = sweep(-110.0, 95.0, 40000);
        check_unary("exp", &f64_fn(F64Fn::Exp), &xs, RTOL, ATOL);
        let mut xs = sweep(0.0, 4.0, 20000);
        xs.extend(sweep(-1.0, 1e6, 20000));
        check_unary("log", &f64_fn(F64Fn::Log), &xs, RTOL, 0.0);
    }

    #[test]
    fn mish_matches_reference() {
        // softplus then tanh, both ~2 ulp, and the product.
        let mut xs = sweep(-100.0, 100.0, 40000);
        xs.extend(sweep(-5.0, 5.0, 40000));
        check_unary("mish", &|b, x| mish(b, x), &xs, 1e-6, ATOL);
    }

    #[test]
    fn pow_matches_reference() {
        // Exponents: integers (odd and even, both signs), fractions, huge, ±inf, NaN, ±0.
        let mut xs = sweep(-20.0, 20.0, 4000);
        xs.extend(sweep(-1.5, 1.5, 4000));
        xs.extend([1.0, -1.0]);
        for e in [
            0.0f32,
            -0.0,
            1.0,
            2.0,
            3.0,
            -3.0,
            0.5,
            -0.5,
            1.5,
            -2.5,
            0.333,
            7.25,
            -40.0,
            41.0,
            1e10,
            -1e10,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ] {
            let text = format!(
                "graph \"g\" (%x: f32[{n}]) {{\n  %e: f32[] = constant {{value: f32[] [{e:?}]}}\n  %y: f32[{n}] = pow (%x, %e)\n  return %y\n}}\n",
                n = xs.len(),
            );
            let g = parse(&text).unwrap();
            let x = Tensor::from_vec(&[xs.len()], xs.clone()).unwrap();
            let want = eval_graph(&g, &[Some(x)]).unwrap().remove(0);
            let f = |b: &mut FunctionBuilder, x: Value| {
                let ev = splat(b, e);
                via_f64_2(b, x, ev, &|b, p, q| dpow(b, p, q))
            };
            let got = Tensor::from_vec(&[xs.len()], map_jit(&f, &xs)).unwrap();
            if let Err(err) = compare(&got, &want, RTOL, ATOL) {
                let (a, w) = (got.to_f64_vec(), want.to_f64_vec());
                let bad: Vec<String> = xs
                    .iter()
                    .zip(a.iter().zip(&w))
                    .filter(|(_, (a, w))| {
                        !(a == w
                            || (a.is_nan() && w.is_nan())
                            || (*a - *w).abs() <= ATOL + RTOL * w.abs())
                    })
                    .take(8)
                    .map(|(x, (a, w))| format!("x={x:e}: got {a:e} want {w:e}"))
                    .collect();
                panic!("pow {e}: {err}\n{}", bad.join("\n"));
            }
        }
    }

    #[test]
    fn activations_match_reference() {
        let xs = sweep(-10.0, 10.0, 4000);
        let cases: Vec<(&str, Activation)> = vec![
            ("relu", Activation::Relu),
            ("leaky_relu {alpha: 0.1}", Activation::LeakyRelu(0.1)),
            (
                "hard_sigmoid {alpha: 0.25, beta: 0.5}",
                Activation::HardSigmoid(0.25, 0.5),
            ),
            ("hard_swish", Activation::HardSwish),
            ("sigmoid", Activation::Sigmoid),
            ("tanh", Activation::Tanh),
            ("swish", Activation::Silu),
        ];
        for (text, act) in cases {
            check_unary(text, &|b, x| activation(b, &act, x), &xs, RTOL, 1e-30);
        }
    }
}
