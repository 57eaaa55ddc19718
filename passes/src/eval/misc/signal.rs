//! Signal ops: the Hann, Hamming and Blackman windows and DFT (forward, inverse, one-sided,
//! the inverse of a one-sided spectrum, `dft_length`, axis as attribute or input).

use std::f64::consts::PI;

use ndarray::{ArrayD, Axis, IxDyn};

use super::{from_real, real_input, with_real, Real};
use crate::eval::util::{checked_size, opt, req};
use crate::ir::{DType, Elem, Op, Tensor};

/// Evaluates a window op or DFT.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    if n_outputs != 1 {
        return Err(format!("{n_outputs} outputs requested, the op has 1"));
    }
    match op {
        Op::HannWindow {
            output_datatype,
            periodic,
        } => window(inputs, *output_datatype, *periodic, |n, m| {
            (PI * n / m).sin().powi(2)
        }),
        Op::HammingWindow {
            output_datatype,
            periodic,
        } => window(inputs, *output_datatype, *periodic, |n, m| {
            25.0 / 46.0 - 21.0 / 46.0 * (2.0 * PI * n / m).cos()
        }),
        Op::BlackmanWindow {
            output_datatype,
            periodic,
        } => window(inputs, *output_datatype, *periodic, |n, m| {
            0.42 - 0.5 * (2.0 * PI * n / m).cos() + 0.08 * (4.0 * PI * n / m).cos()
        }),
        Op::Dft {
            inverse,
            onesided,
            axis,
        } => {
            let dtype = req(inputs, 0)?.dtype();
            with_real!(dtype, F => Ok(vec![from_real(dft::<F>(inputs, *inverse != 0, *onesided != 0, *axis)?, dtype)]))
        }
        _ => Err("not a signal op".into()),
    }
}

/// A scalar integer input.
fn scalar_int(t: &Tensor, what: &str) -> Result<i64, String> {
    match t.to_i64_vec()?[..] {
        [v] => Ok(v),
        _ => Err(format!(
            "{what} must have exactly one element, got shape {:?}",
            t.shape()
        )),
    }
}

/// A window of `size` samples, `w(n, N)` with N = size (periodic) or size - 1 (symmetric).
fn window(
    inputs: &[Option<&Tensor>],
    dtype: i64,
    periodic: i64,
    w: impl Fn(f64, f64) -> f64,
) -> Result<Vec<Tensor>, String> {
    let size = scalar_int(req(inputs, 0)?, "size")?;
    let size = usize::try_from(size)
        .map_err(|_| format!("window size must be non-negative, got {size}"))?;
    checked_size(&[size])?;
    let to = i32::try_from(dtype)
        .ok()
        .and_then(DType::from_onnx)
        .filter(|d| d.is_float() || d.is_int())
        .ok_or_else(|| format!("unsupported output_datatype {dtype}"))?;
    let m = if periodic != 0 {
        size as f64
    } else {
        size as f64 - 1.0
    };
    let v: Vec<f64> = (0..size).map(|n| w(n as f64, m)).collect();
    Ok(vec![Tensor::from_vec(&[size], v)?.cast(to)])
}

/// DFT over `axis` of a [..., 1 | 2] real or complex signal.
fn dft<F: Real>(
    inputs: &[Option<&Tensor>],
    inverse: bool,
    onesided: bool,
    axis_attr: i64,
) -> Result<ArrayD<F>, String> {
    let x = real_input::<F>(inputs, 0)?;
    let rank = x.ndim();
    let comps = *x.shape().last().ok_or("input must have rank >= 2")?;
    if rank < 2 || !(comps == 1 || comps == 2) {
        return Err(format!(
            "input must be [..., 1 or 2], got shape {:?}",
            x.shape()
        ));
    }
    let axis = match opt(inputs, 2) {
        Some(t) => scalar_int(t, "axis")?,
        None => axis_attr,
    };
    let r = rank as i64;
    let ax = if (-r..=-2).contains(&axis) {
        (axis + r) as usize
    } else if (0..r - 1).contains(&axis) {
        axis as usize
    } else {
        return Err(format!(
            "axis {axis} is out of range for a signal of rank {rank}"
        ));
    };
    let m = x.shape()[ax];
    let n = match opt(inputs, 1) {
        Some(t) => {
            let v = scalar_int(t, "dft_length")?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("dft_length must be positive, got {v}"))?
        }
        None if inverse && onesided => 2 * m.saturating_sub(1),
        None => m,
    };
    if n == 0 {
        return Err("the transform length is zero".into());
    }
    let out_len = match (inverse, onesided) {
        (false, true) => n / 2 + 1,
        _ => n,
    };
    let out_comps = if inverse && onesided { 1 } else { 2 };
    let mut shape = x.shape().to_vec();
    shape[ax] = out_len;
    shape[rank - 1] = out_comps;
    checked_size(&shape)?;
    checked_size(&[n, n])?;
    // Twiddles e^{-2πi jk/n} (forward) or e^{+2πi jk/n} (inverse), indexed by jk mod n.
    let sign = if inverse { 1.0 } else { -1.0 };
    let tw: Vec<(f64, f64)> = (0..n)
        .map(|k| {
            let a = sign * 2.0 * PI * k as f64 / n as f64;
            (a.cos(), a.sin())
        })
        .collect();
    let mut out = ArrayD::<F>::zeros(IxDyn(&shape));
    // Lanes along `ax` come in row-major order of the other axes, the component axis
    // innermost: lane o * comps + c is component c of signal o (likewise for the output).
    let lanes_in: Vec<_> = x.lanes(Axis(ax)).into_iter().collect();
    let mut out_lanes: Vec<_> = out.lanes_mut(Axis(ax)).into_iter().collect();
    let n_outer = lanes_in.len() / comps;
    for o in 0..n_outer {
        let re = &lanes_in[o * comps];
        let im = if comps == 2 {
            Some(&lanes_in[o * comps + 1])
        } else {
            None
        };
        // The signal, truncated or zero-padded to n.
        let mut sig: Vec<(f64, f64)> = (0..n)
            .map(|j| {
                if j < m {
                    (
                        Elem::to_f64(&re[j]),
                        im.map_or(0.0, |v| Elem::to_f64(&v[j])),
                    )
                } else {
                    (0.0, 0.0)
                }
            })
            .collect();
        if inverse && onesided {
            // Rebuild the full Hermitian spectrum from bins 0..=n/2.
            let half = n / 2 + 1;
            for j in 0..n {
                sig[j] = if j < half {
                    if j < m {
                        sig[j]
                    } else {
                        (0.0, 0.0)
                    }
                } else {
                    let (a, b) = if n - j < m { sig[n - j] } else { (0.0, 0.0) };
                    (a, -b)
                };
            }
        }
        let scale = if inverse { 1.0 / n as f64 } else { 1.0 };
        for k in 0..out_len {
            let (mut sr, mut si) = (0.0, 0.0);
            for (j, &(a, b)) in sig.iter().enumerate() {
                let (cr, ci) = tw[(j * k) % n];
                sr += a * cr - b * ci;
                si += a * ci + b * cr;
            }
            out_lanes[o * out_comps][k] = <F as Elem>::from_f64(sr * scale);
            if out_comps == 2 {
                out_lanes[o * out_comps + 1][k] = <F as Elem>::from_f64(si * scale);
            }
        }
    }
    drop(out_lanes);
    Ok(out)
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

    #[test]
    fn windows_match_numpy() {
        let size = Tensor::scalar(4i64);
        // numpy: np.sin(np.arange(4)*np.pi/4)**2 and /3
        let r = eval(
            &Op::HannWindow {
                output_datatype: 1,
                periodic: 1,
            },
            &[Some(&size)],
            1,
        )
        .unwrap();
        close(&r[0], &[0.0, 0.5, 1.0, 0.5], 1e-6);
        let r = eval(
            &Op::HannWindow {
                output_datatype: 11,
                periodic: 0,
            },
            &[Some(&size)],
            1,
        )
        .unwrap();
        close(&r[0], &[0.0, 0.75, 0.75, 0.0], 1e-12);
        assert_eq!(r[0].dtype(), DType::F64);
        // numpy: 25/46 - 21/46*cos(2*pi*n/4)
        let r = eval(
            &Op::HammingWindow {
                output_datatype: 1,
                periodic: 1,
            },
            &[Some(&size)],
            1,
        )
        .unwrap();
        close(&r[0], &[0.08695652, 0.54347826, 1.0, 0.54347826], 1e-6);
        // numpy: .42 - .5cos(2πn/3) + .08cos(4πn/3)
        let r = eval(
            &Op::BlackmanWindow {
                output_datatype: 1,
                periodic: 0,
            },
            &[Some(&size)],
            1,
        )
        .unwrap();
        close(&r[0], &[0.0, 0.63, 0.63, 0.0], 1e-6);
        let zero = Tensor::scalar(0i32);
        let r = eval(
            &Op::HannWindow {
                output_datatype: 1,
                periodic: 1,
            },
            &[Some(&zero)],
            1,
        )
        .unwrap();
        assert_eq!(r[0].shape(), &[0]);
        let neg = Tensor::scalar(-1i64);
        assert!(eval(
            &Op::HannWindow {
                output_datatype: 1,
                periodic: 1
            },
            &[Some(&neg)],
            1
        )
        .is_err());
    }

    fn dft_op(inverse: i64, onesided: i64, axis: i64) -> Op {
        Op::Dft {
            inverse,
            onesided,
            axis,
        }
    }

    #[test]
    fn dft_forward_inverse_onesided() {
        // real signal [1, 2, 3, 4] as [1, 4, 1]; numpy fft: [10, -2+2j, -2, -2-2j]
        let x = Tensor::from_vec(&[1, 4, 1], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let r = eval(&dft_op(0, 0, 1), &[Some(&x)], 1).unwrap();
        close(&r[0], &[10.0, 0.0, -2.0, 2.0, -2.0, 0.0, -2.0, -2.0], 1e-5);
        assert_eq!(r[0].shape(), &[1, 4, 2]);
        // onesided, axis given as input -2
        let ax = Tensor::scalar(-2i64);
        let r = eval(&dft_op(0, 1, 1), &[Some(&x), None, Some(&ax)], 1).unwrap();
        close(&r[0], &[10.0, 0.0, -2.0, 2.0, -2.0, 0.0], 1e-5);
        // dft_length 2 truncates: fft([1,2]) = [3, -1]
        let len = Tensor::scalar(2i64);
        let r = eval(&dft_op(0, 0, 1), &[Some(&x), Some(&len)], 1).unwrap();
        close(&r[0], &[3.0, 0.0, -1.0, 0.0], 1e-6);
        // inverse of the full spectrum returns the signal
        let spec = Tensor::from_vec(
            &[1, 4, 2],
            vec![10.0f64, 0.0, -2.0, 2.0, -2.0, 0.0, -2.0, -2.0],
        )
        .unwrap();
        let r = eval(&dft_op(1, 0, 1), &[Some(&spec)], 1).unwrap();
        close(&r[0], &[1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0], 1e-12);
        // irfft of the one-sided spectrum [10, -2+2j, -2] gives back [1,2,3,4] (length 4)
        let half = Tensor::from_vec(&[1, 3, 2], vec![10.0f64, 0.0, -2.0, 2.0, -2.0, 0.0]).unwrap();
        let r = eval(&dft_op(1, 1, 1), &[Some(&half)], 1).unwrap();
        close(&r[0], &[1.0, 2.0, 3.0, 4.0], 1e-12);
        assert_eq!(r[0].shape(), &[1, 4, 1]);
        // axis over the batch dim of a [2, 1, 1] signal; the complex axis is refused.
        let y = Tensor::from_vec(&[2, 1, 1], vec![1.0f32, -1.0]).unwrap();
        let r = eval(&dft_op(0, 0, 0), &[Some(&y)], 1).unwrap();
        close(&r[0], &[0.0, 0.0, 2.0, 0.0], 1e-6);
        assert!(eval(&dft_op(0, 0, 2), &[Some(&y)], 1).is_err());
        assert!(eval(&dft_op(0, 0, -1), &[Some(&y)], 1).is_err());
    }
}
