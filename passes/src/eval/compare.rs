//! Comparing tensors within a tolerance (tests of rewrites, kernels and conformance).

use crate::ir::{DType, Tensor};

/// Compares an actual output with the expected one: same shape; same dtype (bf16 is
/// written to .npy as f32 and compared after rounding back); floats within
/// `atol + rtol * |expected|`, NaN where NaN is expected; everything else exactly.
pub fn compare(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    let actual = if expected.dtype() == DType::BF16 && actual.dtype() == DType::F32 {
        actual.cast(DType::BF16)
    } else {
        actual.clone()
    };
    if actual.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {} != expected {}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?} != expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    match (&actual, expected) {
        (Tensor::Str(a), Tensor::Str(b)) => {
            if let Some((i, (x, y))) = a
                .iter()
                .zip(b.iter())
                .enumerate()
                .find(|(_, (x, y))| x != y)
            {
                return Err(format!("element {i}: {x:?} != expected {y:?}"));
            }
            Ok(())
        }
        _ if expected.dtype().is_float() => {
            let (a, b) = (actual.to_f64_vec(), expected.to_f64_vec());
            let mut worst: Option<(usize, f64, f64)> = None;
            let mut bad = 0usize;
            for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                let ok = if y.is_nan() {
                    x.is_nan()
                } else if y.is_infinite() {
                    x == y
                } else {
                    (x - y).abs() <= atol + rtol * y.abs()
                };
                if !ok {
                    bad += 1;
                    if worst.is_none() {
                        worst = Some((i, x, y));
                    }
                }
            }
            match worst {
                None => Ok(()),
                Some((i, x, y)) => Err(format!(
                    "{bad} of {} elements differ; first at {i}: {x} vs expected {y}",
                    a.len()
                )),
            }
        }
        _ => {
            if actual == *expected {
                Ok(())
            } else {
                let (a, b) = (actual.to_f64_vec(), expected.to_f64_vec());
                let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
                Err(format!("element {i}: {} != expected {}", a[i], b[i]))
            }
        }
    }
}
