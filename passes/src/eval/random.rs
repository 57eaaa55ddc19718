//! Seeded pseudo-random inputs for numeric checks (tests of rewrites and kernels).

use crate::ir::{Graph, Op, Tensor};

/// Seeded pseudo-random values in [-2, 2) for the graph inputs without a default (`None` for
/// those with one). An LCG, so the values are the same on every platform. Inputs must have
/// static shapes.
pub fn random_inputs(g: &Graph, seed: u64) -> Result<Vec<Option<Tensor>>, String> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) * 4.0 - 2.0
    };
    g.inputs
        .iter()
        .map(|&id| {
            let node = g.node(id);
            if matches!(node.op, Op::Input { default: Some(_) }) {
                return Ok(None);
            }
            let ty = &node.outputs[0].ty;
            let dims = ty
                .shape
                .as_known()
                .ok_or_else(|| format!("input '{}' has no static shape", node.outputs[0].name))?;
            let n: usize = dims.iter().product();
            let data: Vec<f64> = (0..n).map(|_| next()).collect();
            Ok(Some(Tensor::from_vec(&dims, data)?.cast(ty.dtype)))
        })
        .collect()
}
