//! Tests of the sampling kernels (GridSample, RoiAlign) against the reference evaluator.

use graphc_passes::ir::Tensor;

use crate::codegen::testing::check_text;

/// A one-node graph over graph inputs `ins`.
fn graph(ins: &str, node: &str) -> String {
    format!("graph \"g\" ({ins}) {{\n  {node}\n  return %y\n}}\n")
}

/// Runs a one-node graph on given inputs and compares with the reference exactly.
fn exact_on(text: &str, inputs: Vec<Option<Tensor>>) {
    let g = graphc_passes::ir::text::parse(text).unwrap();
    let node = crate::codegen::testing::single_compute_node(&g).unwrap();
    let want = graphc_passes::eval::eval_graph(&g, &inputs).unwrap();
    let got = crate::codegen::testing::run_node(
        &g,
        node,
        &inputs,
        crate::codegen::kernel::Target::host(),
    )
    .unwrap()
    .unwrap_or_else(|| panic!("no kernel\n{text}"));
    graphc_passes::eval::compare(&got[0], &want[0], 0.0, 0.0)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
}

fn grid_sample_text(xs: &[usize], out: &[usize], attrs: &str) -> String {
    let k = xs.len() - 2;
    let dims = |d: &[usize]| {
        d.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut gs = vec![xs[0]];
    gs.extend(out);
    gs.push(k);
    let mut ys = vec![xs[0], xs[1]];
    ys.extend(out);
    graph(
        &format!("%x: f32[{}], %g: f32[{}]", dims(xs), dims(&gs)),
        &format!("%y: f32[{}] = grid_sample {{{attrs}}} (%x, %g)", dims(&ys)),
    )
}

const MODES: [&str; 3] = ["nearest", "linear", "cubic"];
const PADS: [&str; 3] = ["zeros", "border", "reflection"];

// The kernel does the reference's f64 arithmetic in the same order and rounds once: exact.
// Random grid values are in [-2, 2): positions inside, near and well outside the input.
#[test]
fn grid_sample_modes_paddings_ranks() {
    let shapes: [(&[usize], &[usize]); 7] = [
        (&[1, 1, 4, 4], &[3, 5]),
        (&[2, 3, 5, 7], &[6, 9]),
        (&[1, 2, 1, 6], &[2, 3]),
        (&[2, 1, 3, 1], &[4, 1]),
        (&[1, 2, 3, 4, 5], &[2, 3, 3]),
        (&[2, 1, 1, 2, 3], &[3, 1, 2]),
        (&[2, 3, 9], &[7]),
    ];
    for (xs, out) in shapes {
        for mode in MODES {
            for pad in PADS {
                for align in [0, 1] {
                    let attrs = format!(
                        "mode: \"{mode}\", padding_mode: \"{pad}\", align_corners: {align}"
                    );
                    let text = grid_sample_text(xs, out, &attrs);
                    for seed in [1, 2] {
                        check_text(&text, seed, 0.0, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
                    }
                }
            }
        }
    }
}

// NaN and infinite grid values: the reference's saturating conversions, skipped taps and
// reflections are followed; nothing reads outside X (the buffers are exactly sized). Huge
// and infinite values with zeros padding (linear, cubic) overflow the reference's index
// arithmetic (`i64::MAX + 1`), so those only go through nearest.
#[test]
fn grid_sample_non_finite_grid() {
    let xs = [1usize, 2, 3, 4];
    let x: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 2.0).collect();
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -1e30,
        0.3,
        -0.7,
        1.0,
        -1.0,
        f32::NAN,
    ];
    // 5 points x 2 coordinates = 10 values; rotate so every pairing appears.
    for rot in 0..specials.len() {
        let g: Vec<f32> = (0..10).map(|i| specials[(i + rot) % 10]).collect();
        let finite_only = g.iter().all(|v| v.is_nan() || v.abs() < 1e6);
        for mode in MODES {
            for pad in PADS {
                if pad == "zeros" && mode != "nearest" && !finite_only {
                    continue;
                }
                for align in [0, 1] {
                    let attrs = format!(
                        "mode: \"{mode}\", padding_mode: \"{pad}\", align_corners: {align}"
                    );
                    let text = grid_sample_text(&xs, &[1, 5], &attrs);
                    let xt = Tensor::from_vec(&xs, x.clone()).unwrap();
                    let gt = Tensor::from_vec(&[1, 1, 5, 2], g.clone()).unwrap();
                    exact_on(&text, vec![Some(xt), Some(gt)]);
                }
            }
        }
    }
}

#[test]
fn grid_sample_declines_other_types() {
    let text = graph(
        "%x: f64[1,1,3,3], %g: f64[1,2,2,2]",
        "%y: f64[1,1,2,2] = grid_sample (%x, %g)",
    );
    let g = graphc_passes::ir::text::parse(&text).unwrap();
    let node = crate::codegen::testing::single_compute_node(&g).unwrap();
    let inputs = graphc_passes::eval::random_inputs(&g, 1).unwrap();
    let got = crate::codegen::testing::run_node(
        &g,
        node,
        &inputs,
        crate::codegen::kernel::Target::host(),
    )
    .unwrap();
    assert!(got.is_none());
}

// AffineGrid: the reference's f64 sums in the same order, rounded once: exact.
#[test]
fn affine_grid_2d_3d() {
    for (size, align) in [
        (vec![2, 3, 5, 7], 0),
        (vec![2, 3, 5, 7], 1),
        (vec![1, 1, 1, 6], 1),
        (vec![3, 2, 4, 1], 0),
        (vec![1, 2, 3, 4, 5], 0),
        (vec![2, 1, 2, 1, 3], 1),
        (vec![1, 1, 1, 1, 1], 1),
    ] {
        let k = size.len() - 2;
        let mut ys = vec![size[0]];
        ys.extend(&size[2..]);
        ys.push(k);
        let join = |v: &[usize]| {
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let text = format!(
            "graph \"g\" (%t: f32[{},{k},{}]) {{\n  %s: i64[{}] = constant {{value: i64[{}] [{}]}}\n  %y: f32[{}] = affine_grid {{align_corners: {align}}} (%t, %s)\n  return %y\n}}\n",
            size[0],
            k + 1,
            size.len(),
            size.len(),
            join(&size),
            join(&ys)
        );
        for seed in [1, 2] {
            check_text(&text, seed, 0.0, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }
}

fn roi_text(xs: [usize; 4], nr: usize, oh: usize, ow: usize, attrs: &str) -> String {
    graph(
        &format!(
            "%x: f32[{},{},{},{}], %r: f32[{nr},4], %b: i64[{nr}]",
            xs[0], xs[1], xs[2], xs[3]
        ),
        &format!(
            "%y: f32[{nr},{},{oh},{ow}] = roi_align {{output_height: {oh}, output_width: {ow}, {attrs}}} (%x, %r, %b)",
            xs[1]
        ),
    )
}

/// Deterministic values in `[lo, hi)`.
fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

// RoiAlign: the reference's f64 samples and sums in its order: exact. Rois inside, partly
// and fully outside the image, reversed (negative extents), tiny and large (many samples
// per bin), with NaN and infinite coordinates.
#[test]
fn roi_align_modes_and_awkward_rois() {
    let rois: Vec<f32> = vec![
        0.0,
        0.0,
        4.0,
        3.0, // inside
        1.5,
        0.5,
        6.5,
        5.5, // partly outside
        -3.0,
        -2.0,
        -1.5,
        -1.2, // outside
        5.0,
        4.0,
        1.0,
        2.0, // reversed
        2.2,
        1.1,
        2.3,
        1.15, // tiny
        -0.7,
        -0.4,
        30.0,
        25.0, // large
        f32::NAN,
        1.0,
        3.0,
        4.0, // NaN
        0.0,
        f32::INFINITY,
        2.0,
        3.0, // infinite
        1.0,
        1.0,
        f32::NEG_INFINITY,
        3.0, // infinite extent
    ];
    let nr = rois.len() / 4;
    for xs in [[2, 3, 6, 7], [1, 1, 1, 5], [3, 2, 9, 4]] {
        for (oh, ow) in [(2, 3), (1, 1), (5, 4)] {
            for mode in ["avg", "max"] {
                for ctm in ["half_pixel", "output_half_pixel"] {
                    for (sr, scale) in [(0, 1.0), (2, 0.5), (3, 1.5)] {
                        let attrs = format!(
                            "mode: \"{mode}\", coordinate_transformation_mode: \"{ctm}\", sampling_ratio: {sr}, spatial_scale: {scale}"
                        );
                        let text = roi_text(xs, nr, oh, ow, &attrs);
                        let n: usize = xs.iter().product();
                        let x = Tensor::from_vec(&xs, values(n, 7, -2.0, 2.0)).unwrap();
                        let r = Tensor::from_vec(&[nr, 4], rois.clone()).unwrap();
                        let b: Vec<i64> = (0..nr as i64).map(|i| i % xs[0] as i64).collect();
                        let b = Tensor::from_vec(&[nr], b).unwrap();
                        exact_on(&text, vec![Some(x), Some(r), Some(b)]);
                    }
                }
            }
        }
    }
}

// Batch indices outside `0..N` (the reference rejects them) are clamped: the output is the
// reference's for the clamped indices, and nothing is read outside X.
#[test]
fn roi_align_clamps_batch_indices() {
    let xs = [3usize, 2, 5, 5];
    let text = roi_text(xs, 4, 2, 2, "mode: \"avg\"");
    let g = graphc_passes::ir::text::parse(&text).unwrap();
    let node = crate::codegen::testing::single_compute_node(&g).unwrap();
    let x = Tensor::from_vec(&xs, values(150, 3, -2.0, 2.0)).unwrap();
    let r = Tensor::from_vec(&[4, 4], values(16, 4, 0.0, 4.0)).unwrap();
    let raw = Tensor::from_vec(&[4], vec![-5i64, 7, i64::MAX, i64::MIN]).unwrap();
    let clamped = Tensor::from_vec(&[4], vec![0i64, 2, 2, 0]).unwrap();
    let want =
        graphc_passes::eval::eval_graph(&g, &[Some(x.clone()), Some(r.clone()), Some(clamped)])
            .unwrap();
    let got = crate::codegen::testing::run_node(
        &g,
        node,
        &[Some(x), Some(r), Some(raw)],
        crate::codegen::kernel::Target::host(),
    )
    .unwrap()
    .expect("a kernel");
    graphc_passes::eval::compare(&got[0], &want[0], 0.0, 0.0).unwrap();
}
