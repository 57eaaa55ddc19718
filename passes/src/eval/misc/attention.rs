//! Attention (opset 23/24: 3-D and 4-D inputs, grouped-query heads, boolean or additive
//! masks, KV cache, causal masking, softcap, the optional QK output) and RotaryEmbedding.

use ndarray::{concatenate, s, Array2, Array4, ArrayD, Axis, Ix4, IxDyn};

use super::{c, from_real, real_input, real_opt, with_real, Real};
use crate::eval::util::{checked_size, opt, req};
use crate::ir::{Op, Tensor};

/// Evaluates Attention or RotaryEmbedding.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let dtype = req(inputs, 0)?.dtype();
    match op {
        Op::Attention {
            is_causal,
            kv_num_heads,
            q_num_heads,
            qk_matmul_output_mode,
            scale,
            softcap,
            ..
        } => {
            if n_outputs == 0 || n_outputs > 4 {
                return Err(format!(
                    "{n_outputs} outputs requested, Attention has 1..=4"
                ));
            }
            let attrs = AttnAttrs {
                causal: *is_causal != 0,
                q_heads: *q_num_heads,
                kv_heads: *kv_num_heads,
                mode: *qk_matmul_output_mode,
                scale: scale.map(f64::from),
                softcap: *softcap as f64,
            };
            with_real!(dtype, F => {
                let outs = attention::<F>(&attrs, inputs)?;
                Ok(outs.into_iter().take(n_outputs).map(|a| from_real(a, dtype)).collect())
            })
        }
        Op::RotaryEmbedding {
            interleaved,
            num_heads,
            rotary_embedding_dim,
        } => {
            if n_outputs != 1 {
                return Err(format!(
                    "{n_outputs} outputs requested, RotaryEmbedding has 1"
                ));
            }
            with_real!(dtype, F => {
                let out = rotary::<F>(inputs, *interleaved != 0, *num_heads, *rotary_embedding_dim)?;
                Ok(vec![from_real(out, dtype)])
            })
        }
        _ => Err("not an attention op".into()),
    }
}

struct AttnAttrs {
    causal: bool,
    q_heads: Option<i64>,
    kv_heads: Option<i64>,
    mode: i64,
    scale: Option<f64>,
    softcap: f64,
}

/// A 3-D [batch, seq, heads * head] input as 4-D [batch, heads, seq, head], or a 4-D one as is.
fn to_heads<F: Real>(a: ArrayD<F>, heads: Option<i64>, what: &str) -> Result<Array4<F>, String> {
    match a.ndim() {
        4 => Ok(a.into_dimensionality::<Ix4>().expect("rank checked")),
        3 => {
            let heads = heads
                .ok_or_else(|| format!("{what} is 3-D, so the number of heads must be given"))?;
            let (b, sq, hidden) = (a.shape()[0], a.shape()[1], a.shape()[2]);
            let h = usize::try_from(heads)
                .ok()
                .filter(|&h| h > 0 && hidden % h == 0)
                .ok_or_else(|| {
                    format!("{what} hidden size {hidden} is not divisible into {heads} heads")
                })?;
            let a = a.as_standard_layout().to_owned();
            let a = a
                .into_shape_with_order((b, sq, h, hidden / h))
                .expect("sizes checked");
            Ok(a.permuted_axes([0, 2, 1, 3])
                .as_standard_layout()
                .to_owned())
        }
        r => Err(format!("{what} must have rank 3 or 4, got {r}")),
    }
}

/// Computes [Y, present_key, present_value, qk_matmul_output].
fn attention<F: Real>(a: &AttnAttrs, inputs: &[Option<&Tensor>]) -> Result<Vec<ArrayD<F>>, String> {
    let q_in = real_input::<F>(inputs, 0)?;
    let three_d = q_in.ndim() == 3;
    let q = to_heads(q_in, a.q_heads, "Q")?;
    let k = to_heads(real_input::<F>(inputs, 1)?, a.kv_heads, "K")?;
    let v = to_heads(real_input::<F>(inputs, 2)?, a.kv_heads, "V")?;
    let (b, hq, sq, d) = q.dim();
    let (kb, hkv, _, kd) = k.dim();
    if kb != b || v.dim().0 != b {
        return Err(format!(
            "batch sizes differ: Q {b}, K {kb}, V {}",
            v.dim().0
        ));
    }
    if kd != d {
        return Err(format!("Q head size {d} differs from K head size {kd}"));
    }
    if v.dim().1 != hkv || v.dim().2 != k.dim().2 {
        return Err(format!(
            "V shape {:?} does not match K shape {:?}",
            v.shape(),
            k.shape()
        ));
    }
    let cat = |past: Option<ArrayD<F>>, cur: Array4<F>, what: &str| -> Result<Array4<F>, String> {
        match past {
            None => Ok(cur),
            Some(p) => {
                let p = p
                    .into_dimensionality::<Ix4>()
                    .map_err(|_| format!("{what} must have rank 4"))?;
                if p.dim().0 != cur.dim().0 || p.dim().1 != cur.dim().1 || p.dim().3 != cur.dim().3
                {
                    return Err(format!(
                        "{what} shape {:?} does not match {:?}",
                        p.shape(),
                        cur.shape()
                    ));
                }
                concatenate(Axis(2), &[p.view(), cur.view()]).map_err(|e| e.to_string())
            }
        }
    };
    let past_len = opt(inputs, 4).map_or(0, |t| t.shape().get(2).copied().unwrap_or(0));
    let k = cat(real_opt::<F>(inputs, 4)?, k, "past_key")?;
    let v = cat(real_opt::<F>(inputs, 5)?, v, "past_value")?;
    let total = k.dim().2;
    let dv = v.dim().3;
    if hkv == 0 || hq % hkv != 0 {
        return Err(format!(
            "{hq} query heads cannot be grouped over {hkv} key/value heads"
        ));
    }
    let group = hq / hkv;
    checked_size(&[b, hq, sq, total])?;
    checked_size(&[b, hq, sq, dv])?;

    // Additive bias [b, hq, sq, total] from the mask, causality and padding.
    let mut bias = Array4::<F>::zeros((b, hq, sq, total));
    if let Some(m) = opt(inputs, 3) {
        let ms = m.shape();
        let last = *ms.last().ok_or("attn_mask must have rank >= 1")?;
        if last > total || ms.len() > 4 {
            return Err(format!(
                "attn_mask shape {ms:?} does not fit [{b}, {hq}, {sq}, {total}]"
            ));
        }
        let add: ArrayD<F> = match m {
            Tensor::Bool(mb) => mb.mapv(|x| if x { F::zero() } else { F::neg_infinity() }),
            _ => real_input::<F>(inputs, 3)?,
        };
        // Keys past the mask's end are masked out.
        let mut padded_shape = ms.to_vec();
        *padded_shape.last_mut().expect("rank >= 1") = total;
        let mut padded = ArrayD::from_elem(IxDyn(&padded_shape), F::neg_infinity());
        padded
            .slice_each_axis_mut(|ax| {
                if ax.axis.index() + 1 == ms.len() {
                    ndarray::Slice::from(..last)
                } else {
                    ndarray::Slice::from(..)
                }
            })
            .assign(&add);
        let bcast = padded
            .broadcast(IxDyn(&[b, hq, sq, total]))
            .ok_or_else(|| {
                format!("attn_mask shape {ms:?} does not broadcast to [{b}, {hq}, {sq}, {total}]")
            })?;
        bias += &bcast;
    }
    if a.causal {
        for ((_, _, i, j), x) in bias.indexed_iter_mut() {
            if j > i + past_len {
                *x = F::neg_infinity();
            }
        }
    }
    if let Some(t) = opt(inputs, 6) {
        let lens = t.to_i64_vec()?;
        if lens.len() != b {
            return Err(format!(
                "nonpad_kv_seqlen has {} entries, expected {b}",
                lens.len()
            ));
        }
        for ((bi, _, _, j), x) in bias.indexed_iter_mut() {
            if (j as i64) >= lens[bi] {
                *x = F::neg_infinity();
            }
        }
    }

    let scale = a.scale.unwrap_or(1.0 / (d as f64).sqrt());
    let root = c::<F>(scale.sqrt());
    let mut y = Array4::<F>::zeros((b, hq, sq, dv));
    let mut qk_out = Array4::<F>::zeros((b, hq, sq, total));
    for bi in 0..b {
        for h in 0..hq {
            let qh = q.slice(s![bi, h, .., ..]).mapv(|x| x * root);
            let kh = k.slice(s![bi, h / group, .., ..]).mapv(|x| x * root);
            let mut sc: Array2<F> = qh.dot(&kh.t());
            let mut record = |m: i64, sc: &Array2<F>| {
                if a.mode == m {
                    qk_out.slice_mut(s![bi, h, .., ..]).assign(sc);
                }
            };
            record(0, &sc);
            sc += &bias.slice(s![bi, h, .., ..]);
            record(1, &sc);
            if a.softcap > 0.0 {
                let cap = c::<F>(a.softcap);
                sc.mapv_inplace(|x| cap * (x / cap).tanh());
            }
            record(2, &sc);
            for mut row in sc.rows_mut() {
                let m = row.iter().fold(F::neg_infinity(), |acc, &x| acc.max(x));
                row.mapv_inplace(|x| (x - m).exp());
                let sum = row.sum();
                row.mapv_inplace(|x| x / sum);
            }
            record(3, &sc);
            y.slice_mut(s![bi, h, .., ..])
                .assign(&sc.dot(&v.slice(s![bi, h / group, .., ..])));
        }
    }
    if !(0..=3).contains(&a.mode) {
        return Err(format!(
            "qk_matmul_output_mode must be in 0..=3, got {}",
            a.mode
        ));
    }
    let y = if three_d {
        y.permuted_axes([0, 2, 1, 3])
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[b, sq, hq * dv]))
            .expect("same size")
    } else {
        y.into_dyn()
    };
    Ok(vec![y, k.into_dyn(), v.into_dyn(), qk_out.into_dyn()])
}

/// RotaryEmbedding on [batch, seq, heads * head] or [batch, heads, seq, head] input.
fn rotary<F: Real>(
    inputs: &[Option<&Tensor>],
    interleaved: bool,
    num_heads: Option<i64>,
    rot_dim: i64,
) -> Result<ArrayD<F>, String> {
    let x = real_input::<F>(inputs, 0)?;
    let cos = real_input::<F>(inputs, 1)?;
    let sin = real_input::<F>(inputs, 2)?;
    let pos = opt(inputs, 3).map(|t| t.to_i64_vec()).transpose()?;
    let sh = x.shape().to_vec();
    // (batch, seq, heads, head) and the flat index of an element in x's own layout.
    let (b, sq, nh, hs, four_d) = match sh.len() {
        4 => (sh[0], sh[2], sh[1], sh[3], true),
        3 => {
            let nh = num_heads
                .and_then(|h| usize::try_from(h).ok())
                .filter(|&h| h > 0 && sh[2] % h == 0)
                .ok_or_else(|| {
                    format!(
                        "3-D input needs num_heads dividing the hidden size {}",
                        sh[2]
                    )
                })?;
            (sh[0], sh[1], nh, sh[2] / nh, false)
        }
        r => return Err(format!("input must have rank 3 or 4, got {r}")),
    };
    let at = |bi: usize, si: usize, h: usize, k: usize| {
        if four_d {
            ((bi * nh + h) * sq + si) * hs + k
        } else {
            ((bi * sq + si) * nh + h) * hs + k
        }
    };
    let rd = if rot_dim == 0 {
        hs
    } else {
        usize::try_from(rot_dim).map_err(|_| format!("bad rotary_embedding_dim {rot_dim}"))?
    };
    if rd > hs || rd % 2 != 0 {
        return Err(format!(
            "rotary_embedding_dim {rd} must be even and at most the head size {hs}"
        ));
    }
    let half = rd / 2;
    let want_cache: Vec<usize> = match &pos {
        Some(p) => {
            if p.len() != b * sq {
                return Err(format!(
                    "position_ids has {} entries, expected {}",
                    p.len(),
                    b * sq
                ));
            }
            vec![cos.shape().first().copied().unwrap_or(0), half]
        }
        None => vec![b, sq, half],
    };
    if cos.shape() != want_cache || sin.shape() != want_cache {
        return Err(format!(
            "cos/sin caches have shapes {:?}/{:?}, expected {want_cache:?}",
            cos.shape(),
            sin.shape()
        ));
    }
    let cos_f = cos.as_standard_layout().iter().copied().collect::<Vec<F>>();
    let sin_f = sin.as_standard_layout().iter().copied().collect::<Vec<F>>();
    let xs: Vec<F> = x.as_standard_layout().iter().copied().collect();
    let mut out = xs.clone();
    for bi in 0..b {
        for si in 0..sq {
            let row = match &pos {
                Some(p) => {
                    let id = p[bi * sq + si];
                    usize::try_from(id)
                        .ok()
                        .filter(|&r| r < want_cache[0])
                        .ok_or_else(|| {
                            format!("position id {id} is outside 0..{}", want_cache[0])
                        })?
                }
                None => bi * sq + si,
            };
            for h in 0..nh {
                for i in 0..half {
                    let (i1, i2) = if interleaved {
                        (2 * i, 2 * i + 1)
                    } else {
                        (i, half + i)
                    };
                    let (x1, x2) = (xs[at(bi, si, h, i1)], xs[at(bi, si, h, i2)]);
                    let (cs, sn) = (cos_f[row * half + i], sin_f[row * half + i]);
                    out[at(bi, si, h, i1)] = cs * x1 - sn * x2;
                    out[at(bi, si, h, i2)] = sn * x1 + cs * x2;
                }
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&sh), out).expect("same shape"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(t: &Tensor, want: &[f64], tol: f64) {
        let got = t.to_f64_vec();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
        }
    }

    fn attn(causal: i64, q: Option<i64>, kv: Option<i64>, mode: i64, softcap: f32) -> Op {
        Op::Attention {
            is_causal: causal,
            kv_num_heads: kv,
            q_num_heads: q,
            qk_matmul_output_mode: mode,
            scale: None,
            softcap,
            softmax_precision: None,
        }
    }

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn attention_matches_numpy() {
        // One head, q_seq 2, kv_seq 2, head 2. numpy (float64):
        // q=[[1,0],[0,1]], k=[[1,0],[1,1]], v=[[1,2],[3,4]], scale 1/sqrt(2)
        // s = q@k.T/sqrt(2) = [[.7071,.7071],[0,.7071]]
        // softmax rows: [.5,.5], [0.33023845, 0.66976155]
        // y = [[2,3],[2.3395231,3.3395231]]
        let q = t(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, 1.0]);
        let k = t(&[1, 1, 2, 2], &[1.0, 0.0, 1.0, 1.0]);
        let v = t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let r = eval(
            &attn(0, None, None, 3, 0.0),
            &[Some(&q), Some(&k), Some(&v)],
            4,
        )
        .unwrap();
        close(&r[0], &[2.0, 3.0, 2.3395231, 3.3395231], 1e-6);
        close(&r[3], &[0.5, 0.5, 0.33023845, 0.66976155], 1e-6);
        assert_eq!(r[1], k);
        // Causal: first query sees only the first key.
        let r = eval(
            &attn(1, None, None, 0, 0.0),
            &[Some(&q), Some(&k), Some(&v)],
            4,
        )
        .unwrap();
        close(&r[0], &[1.0, 2.0, 2.3395231, 3.3395231], 1e-6);
        let r2 = std::f64::consts::FRAC_1_SQRT_2;
        close(&r[3], &[r2, r2, 0.0, r2], 1e-6);
        // Boolean mask of 1 column (padded with false): every query sees key 0 only.
        let m = Tensor::from_vec(&[2, 1], vec![true, true]).unwrap();
        let r = eval(
            &attn(0, None, None, 0, 0.0),
            &[Some(&q), Some(&k), Some(&v), Some(&m)],
            1,
        )
        .unwrap();
        close(&r[0], &[1.0, 2.0, 1.0, 2.0], 1e-6);
        // Softcap 0.5: mode 2 records 0.5*tanh(s/0.5).
        let r = eval(
            &attn(0, None, None, 2, 0.5),
            &[Some(&q), Some(&k), Some(&v)],
            4,
        )
        .unwrap();
        let cap = |x: f64| 0.5 * (x / 0.5).tanh();
        close(&r[3], &[cap(r2), cap(r2), 0.0, cap(r2)], 1e-6);
    }

    #[test]
    fn attention_3d_gqa_and_past() {
        // 3-D: 2 query heads of size 1 share 1 kv head; past key/value of length 1.
        let q = t(&[1, 1, 2], &[1.0, -1.0]);
        let k = t(&[1, 1, 1], &[2.0]);
        let v = t(&[1, 1, 1], &[5.0]);
        let pk = t(&[1, 1, 1, 1], &[0.0]);
        let pv = t(&[1, 1, 1, 1], &[1.0]);
        let r = eval(
            &attn(0, Some(2), Some(1), 0, 0.0),
            &[Some(&q), Some(&k), Some(&v), None, Some(&pk), Some(&pv)],
            3,
        )
        .unwrap();
        // head 0: scores [0, 2] -> softmax [1/(1+e^2), e^2/(1+e^2)]; y = p0*1 + p1*5
        let p1 = 2f64.exp() / (1.0 + 2f64.exp());
        let p1n = (-2f64).exp() / (1.0 + (-2f64).exp());
        close(
            &r[0],
            &[(1.0 - p1) + 5.0 * p1, (1.0 - p1n) + 5.0 * p1n],
            1e-6,
        );
        assert_eq!(r[0].shape(), &[1, 1, 2]);
        close(&r[1], &[0.0, 2.0], 0.0);
        assert_eq!(r[2].shape(), &[1, 1, 2, 1]);
        // 3 query heads over 2 kv heads is an error; 3-D without heads is an error.
        let q3 = t(&[1, 1, 3], &[1.0, 1.0, 1.0]);
        let k2 = t(&[1, 1, 2], &[1.0, 1.0]);
        assert!(eval(
            &attn(0, Some(3), Some(2), 0, 0.0),
            &[Some(&q3), Some(&k2), Some(&k2)],
            1
        )
        .is_err());
        assert!(eval(
            &attn(0, None, None, 0, 0.0),
            &[Some(&q), Some(&k), Some(&v)],
            1
        )
        .is_err());
    }

    #[test]
    fn rotary_halves_interleaved_and_positions() {
        // [b=1, heads=1, seq=1, head=4], cos/sin caches of 2 positions, position id 1.
        let x = t(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
        let cos = t(&[2, 2], &[1.0, 1.0, 0.0, 0.5]);
        let sin = t(&[2, 2], &[0.0, 0.0, 1.0, 0.5]);
        let pos = Tensor::from_vec(&[1, 1], vec![1i64]).unwrap();
        let op = |il: i64, dim: i64| Op::RotaryEmbedding {
            interleaved: il,
            num_heads: None,
            rotary_embedding_dim: dim,
        };
        // halves: x1=[1,2], x2=[3,4]; real = cos*x1 - sin*x2 = [-3, -1]; imag = sin*x1 + cos*x2 = [1, 3]
        let r = eval(
            &op(0, 0),
            &[Some(&x), Some(&cos), Some(&sin), Some(&pos)],
            1,
        )
        .unwrap();
        close(&r[0], &[-3.0, -1.0, 1.0, 3.0], 1e-6);
        // interleaved: pairs (1,2), (3,4): (0*1-1*2, 1*1+0*2) = (-2, 1); (.5*3-.5*4, .5*3+.5*4) = (-.5, 3.5)
        let r = eval(
            &op(1, 0),
            &[Some(&x), Some(&cos), Some(&sin), Some(&pos)],
            1,
        )
        .unwrap();
        close(&r[0], &[-2.0, 1.0, -0.5, 3.5], 1e-6);
        // rotary dim 2 leaves the rest alone; cos/sin caches of one column.
        let cos1 = t(&[2, 1], &[1.0, 0.0]);
        let sin1 = t(&[2, 1], &[0.0, 1.0]);
        let r = eval(
            &op(0, 2),
            &[Some(&x), Some(&cos1), Some(&sin1), Some(&pos)],
            1,
        )
        .unwrap();
        close(&r[0], &[-2.0, 1.0, 3.0, 4.0], 1e-6);
        // out-of-range position id
        let bad = Tensor::from_vec(&[1, 1], vec![2i64]).unwrap();
        assert!(eval(
            &op(0, 0),
            &[Some(&x), Some(&cos), Some(&sin), Some(&bad)],
            1
        )
        .is_err());
    }
}
