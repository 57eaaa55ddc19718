//! The losses NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (class weights,
//! `ignore_index`, reductions none/sum/mean, N-D inputs, the optional log-prob output).

use ndarray::{ArrayD, Axis, IxDyn};

use super::{from_real, real_input, real_opt, with_real, Real};
use crate::eval::util::{checked_size, req};
use crate::ir::{Op, Tensor};

/// Evaluates NegativeLogLikelihoodLoss or SoftmaxCrossEntropyLoss.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let (ignore_index, reduction, softmax) = match op {
        Op::NegativeLogLikelihoodLoss {
            ignore_index,
            reduction,
        } => (*ignore_index, reduction.as_str(), false),
        Op::SoftmaxCrossEntropyLoss {
            ignore_index,
            reduction,
        } => (*ignore_index, reduction.as_str(), true),
        _ => return Err("not a loss op".into()),
    };
    let max_out = if softmax { 2 } else { 1 };
    if n_outputs == 0 || n_outputs > max_out {
        return Err(format!(
            "{n_outputs} outputs requested, the op has 1..={max_out}"
        ));
    }
    if !matches!(reduction, "none" | "sum" | "mean") {
        return Err(format!("unknown reduction '{reduction}'"));
    }
    let dtype = req(inputs, 0)?.dtype();
    let target = req(inputs, 1)?;
    if !target.dtype().is_int() {
        return Err(format!(
            "target has type {}, expected an integer type",
            target.dtype()
        ));
    }
    let labels = target.to_i64_vec()?;
    with_real!(dtype, F => {
        let x = real_input::<F>(inputs, 0)?;
        let weight = real_opt::<F>(inputs, 2)?;
        let x = if softmax { log_softmax_axis1(&x)? } else { x };
        let loss = nll(&x, target.shape(), &labels, weight.as_ref(), ignore_index, reduction)?;
        let mut out = vec![from_real(loss, dtype)];
        if n_outputs == 2 {
            out.push(from_real(x, dtype));
        }
        Ok(out)
    })
}

/// Log-softmax over axis 1, computed stably (max-shifted).
fn log_softmax_axis1<F: Real>(x: &ArrayD<F>) -> Result<ArrayD<F>, String> {
    if x.ndim() < 2 {
        return Err(format!(
            "scores must have rank >= 2, got shape {:?}",
            x.shape()
        ));
    }
    let mut out = x.clone();
    for mut lane in out.lanes_mut(Axis(1)) {
        let m = lane.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
        let m = if m.is_finite() { m } else { F::zero() };
        let lse = lane.iter().map(|&v| (v - m).exp()).sum::<F>().ln() + m;
        lane.mapv_inplace(|v| v - lse);
    }
    Ok(out)
}

/// The negative log-likelihood of `x` [N, C, d...] at `labels` [N, d...].
fn nll<F: Real>(
    x: &ArrayD<F>,
    target_shape: &[usize],
    labels: &[i64],
    weight: Option<&ArrayD<F>>,
    ignore_index: Option<i64>,
    reduction: &str,
) -> Result<ArrayD<F>, String> {
    let shape = x.shape();
    if shape.len() < 2 {
        return Err(format!("input must have rank >= 2, got shape {shape:?}"));
    }
    let (n, classes) = (shape[0], shape[1]);
    let mut want: Vec<usize> = vec![n];
    want.extend(&shape[2..]);
    if target_shape != want {
        return Err(format!(
            "target has shape {target_shape:?}, expected {want:?}"
        ));
    }
    if let Some(w) = weight {
        if w.shape() != [classes] {
            return Err(format!(
                "weight has shape {:?}, expected [{classes}]",
                w.shape()
            ));
        }
    }
    let inner = checked_size(&shape[2..])?;
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    let mut loss = Vec::with_capacity(labels.len());
    let (mut total, mut wsum) = (F::zero(), F::zero());
    for (k, &t) in labels.iter().enumerate() {
        let (b, d) = (k / inner.max(1), k % inner.max(1));
        let (l, w) = if Some(t) == ignore_index {
            (F::zero(), F::zero())
        } else {
            let c = usize::try_from(t)
                .ok()
                .filter(|&c| c < classes)
                .ok_or_else(|| format!("target {t} is outside 0..{classes}"))?;
            let w = weight.map_or(F::one(), |w| w[[c]]);
            (-xs[(b * classes + c) * inner + d] * w, w)
        };
        loss.push(l);
        total += l;
        wsum += w;
    }
    Ok(match reduction {
        "none" => ArrayD::from_shape_vec(IxDyn(target_shape), loss).expect("one loss per target"),
        "sum" => ArrayD::from_elem(IxDyn(&[]), total),
        _ => ArrayD::from_elem(IxDyn(&[]), total / wsum),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nll_op(ii: Option<i64>, red: &str) -> Op {
        Op::NegativeLogLikelihoodLoss {
            ignore_index: ii,
            reduction: red.into(),
        }
    }
    fn sce_op(ii: Option<i64>, red: &str) -> Op {
        Op::SoftmaxCrossEntropyLoss {
            ignore_index: ii,
            reduction: red.into(),
        }
    }

    fn close(t: &Tensor, want: &[f64], tol: f64) {
        let got = t.to_f64_vec();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol || (g.is_nan() && w.is_nan()),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn nll_reductions_weights_and_ignore() {
        // x [2, 3, 2] (N, C, d1), target [2, 2]
        let x = Tensor::from_vec(&[2, 3, 2], (0..12).map(|v| v as f32 * 0.5).collect()).unwrap();
        let t = Tensor::from_vec(&[2, 2], vec![0i64, 2, 1, -1]).unwrap();
        let w = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 3.0]).unwrap();
        // x[0,0,0]=0, x[0,2,1]=2.5, x[1,1,0]=4.0, (1,d1=1) ignored
        let r = eval(&nll_op(Some(-1), "none"), &[Some(&x), Some(&t)], 1).unwrap();
        close(&r[0], &[0.0, -2.5, -4.0, 0.0], 1e-6);
        assert_eq!(r[0].shape(), &[2, 2]);
        let r = eval(&nll_op(Some(-1), "sum"), &[Some(&x), Some(&t), Some(&w)], 1).unwrap();
        close(&r[0], &[-(2.5 * 3.0 + 4.0 * 2.0)], 1e-6);
        let r = eval(
            &nll_op(Some(-1), "mean"),
            &[Some(&x), Some(&t), Some(&w)],
            1,
        )
        .unwrap();
        close(&r[0], &[-(2.5 * 3.0 + 4.0 * 2.0) / 6.0], 1e-6);
        let r = eval(&nll_op(Some(-1), "mean"), &[Some(&x), Some(&t)], 1).unwrap();
        close(&r[0], &[-(6.5) / 3.0], 1e-6);
        // Out-of-range targets are errors when not ignored.
        assert!(eval(&nll_op(None, "mean"), &[Some(&x), Some(&t)], 1).is_err());
        // Everything ignored: 0 / 0.
        let all = Tensor::from_vec(&[2, 2], vec![-1i32; 4]).unwrap();
        let r = eval(&nll_op(Some(-1), "mean"), &[Some(&x), Some(&all)], 1).unwrap();
        assert!(r[0].to_f64_vec()[0].is_nan());
        // Bad shapes.
        let bad = Tensor::from_vec(&[2], vec![0i64, 1]).unwrap();
        assert!(eval(&nll_op(None, "mean"), &[Some(&x), Some(&bad)], 1).is_err());
    }

    #[test]
    fn sce_matches_numpy() {
        // numpy: x = [[1,2,3],[1,1,1]], labels [2,0]; log_softmax rows:
        // [-2.40760596, -1.40760596, -0.40760596], [-1.09861229]*3
        let x = Tensor::from_vec(&[2, 3], vec![1.0f64, 2.0, 3.0, 1.0, 1.0, 1.0]).unwrap();
        let t = Tensor::from_vec(&[2], vec![2i64, 0]).unwrap();
        let r = eval(&sce_op(None, "mean"), &[Some(&x), Some(&t)], 2).unwrap();
        close(&r[0], &[(0.40760596 + 1.09861229) / 2.0], 1e-7);
        close(
            &r[1],
            &[
                -2.40760596,
                -1.40760596,
                -0.40760596,
                -1.09861229,
                -1.09861229,
                -1.09861229,
            ],
            1e-7,
        );
        assert_eq!(r[1].dtype(), crate::ir::DType::F64);
        // Large scores stay finite.
        let x = Tensor::from_vec(&[1, 2], vec![1000.0f32, 0.0]).unwrap();
        let t = Tensor::from_vec(&[1], vec![1i64]).unwrap();
        let r = eval(&sce_op(None, "none"), &[Some(&x), Some(&t)], 1).unwrap();
        close(&r[0], &[1000.0], 1e-3);
        assert!(eval(&sce_op(None, "avg"), &[Some(&x), Some(&t)], 1).is_err());
    }
}
