//! Tests of the N-D pools (`pool_nd`) against the reference: 1-D, 3-D and 4-D windows with
//! pads, strides, dilations, ceil_mode, auto_pad and count_include_pad; MaxPool's Indices
//! (both storage orders, ties from small integers); u8/i8 MaxPool; NaN order. Then MaxUnpool
//! and Col2Im (`unpool`) with constant shape inputs.

use graphc_passes::ir::text::parse;

use crate::codegen::kernel::Target;
use crate::codegen::testing::check_graph;

/// Parses `text`, infers its `[..]` output shapes and checks its one node against the
/// reference within `atol + rtol * |expected|`.
fn check(text: &str, seed: u64, rtol: f64, atol: f64) {
    let mut g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    graphc_passes::infer::infer_graph(&mut g).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check_graph(&g, seed, rtol, atol, Target::host()).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

/// `(input shape, attributes)` of windows over 1, 3 and 4 spatial dims.
const WINDOWS: &[(&str, &str)] = &[
    ("[1,2,7,9,5]", "kernel_shape: [2,2,2]"),
    (
        "[2,3,6,7,9]",
        "kernel_shape: [3,3,3], strides: [2,2,2], pads: [1,1,1,1,1,1]",
    ),
    (
        "[1,1,9,8,11]",
        "kernel_shape: [3,2,3], strides: [2,3,2], pads: [1,0,2,1,1,0], ceil_mode: 1",
    ),
    (
        "[1,2,10,9,7]",
        "kernel_shape: [2,3,2], dilations: [2,2,3], pads: [1,2,0,2,1,3]",
    ),
    (
        "[1,1,16,16,16]",
        "kernel_shape: [3,3,3], strides: [3,3,3], dilations: [2,2,2], ceil_mode: 1",
    ),
    (
        "[1,3,5,6,7]",
        "kernel_shape: [3,2,4], auto_pad: \"SAME_UPPER\", strides: [2,1,3]",
    ),
    (
        "[1,3,5,6,7]",
        "kernel_shape: [3,2,4], auto_pad: \"SAME_LOWER\", strides: [2,2,2]",
    ),
    (
        "[2,2,5,6,7]",
        "kernel_shape: [2,3,3], auto_pad: \"VALID\", strides: [1,2,2]",
    ),
    ("[1,2,1,1,1]", "kernel_shape: [1,1,1]"),
    ("[1,1,1,5,1]", "kernel_shape: [1,3,1], pads: [0,1,0,0,1,0]"),
    (
        "[3,2,13]",
        "kernel_shape: [3], strides: [2], pads: [1,2], ceil_mode: 1",
    ),
    ("[1,1,17]", "kernel_shape: [4], dilations: [3]"),
    (
        "[1,2,4,3,5,6]",
        "kernel_shape: [2,2,3,2], strides: [1,2,1,3], pads: [0,1,1,0,1,0,1,1]",
    ),
];

#[test]
fn max_pool_nd_geometries() {
    for (i, (shape, attrs)) in WINDOWS.iter().enumerate() {
        check(
            &format!(
                "graph \"g\" (%x: f32{shape}) {{\n  %y: f32[..] = max_pool {{{attrs}}} (%x)\n  return %y\n}}\n"
            ),
            20 + i as u64,
            0.0,
            0.0,
        );
    }
}

// Sums of at most 64 values in [-2, 2) in f32 against f64: a few ulp of the sum of the
// magnitudes, which a cancelling sum can make large relative to the result: 1e-5 relative
// plus 1e-6 absolute.
#[test]
fn average_pool_nd_counts() {
    for (i, (shape, attrs)) in WINDOWS.iter().enumerate() {
        for incl in [0, 1] {
            check(
                &format!(
                    "graph \"g\" (%x: f32{shape}) {{\n  %y: f32[..] = average_pool {{{attrs}, count_include_pad: {incl}}} (%x)\n  return %y\n}}\n"
                ),
                40 + i as u64,
                1e-5,
                1e-6,
            );
        }
    }
}

/// Indices in both storage orders, over f32 (distinct values) and u8/i8 (values in a few
/// integers, so ties decide: the first maximum in row-major tap order wins).
#[test]
fn max_pool_indices_and_integers() {
    let cases: &[(&str, &str)] = &[
        (
            "[1,3,5,5]",
            "kernel_shape: [2,2], strides: [2,2], pads: [1,1,1,1]",
        ),
        (
            "[2,2,7,6]",
            "kernel_shape: [3,3], strides: [2,1], ceil_mode: 1",
        ),
        ("[1,1,4,4]", "kernel_shape: [2,2], auto_pad: \"SAME_UPPER\""),
        WINDOWS[1],
        WINDOWS[2],
        WINDOWS[3],
        WINDOWS[10],
    ];
    for (i, (shape, attrs)) in cases.iter().enumerate() {
        for dt in ["f32", "u8", "i8"] {
            for order in [0, 1] {
                check(
                    &format!(
                        "graph \"g\" (%x: {dt}{shape}) {{\n  %y: {dt}[..], %i: i64[..] = max_pool {{{attrs}, storage_order: {order}}} (%x)\n  return %y, %i\n}}\n"
                    ),
                    60 + i as u64,
                    0.0,
                    0.0,
                );
            }
            // The values alone (2-D integer pools go here too).
            check(
                &format!(
                    "graph \"g\" (%x: {dt}{shape}) {{\n  %y: {dt}[..] = max_pool {{{attrs}}} (%x)\n  return %y\n}}\n"
                ),
                80 + i as u64,
                0.0,
                0.0,
            );
        }
    }
}

/// The full u8 range (unsigned compare) and NaN order: a NaN first in its window stays, a NaN
/// later is skipped; an all-padding window gives -inf (f32) and 0 (u8) with index 0.
#[test]
fn max_pool_extremes() {
    let vals: Vec<String> = (0..27).map(|i| ((i * 97 + 13) % 256).to_string()).collect();
    check(
        &format!(
            "graph \"g\" () {{\n  %x: u8[1,1,3,3,3] = constant {{value: u8[1,1,3,3,3] [{}]}}\n  %y: u8[..], %i: i64[..] = max_pool {{kernel_shape: [2,2,2], pads: [1,1,1,1,1,1]}} (%x)\n  return %y, %i\n}}\n",
            vals.join(", ")
        ),
        1,
        0.0,
        0.0,
    );
    let f = "NaN, 1.0, 2.0, -1.0, 3.0, NaN, 0.5, -inf, inf, 2.0, NaN, 1.0";
    check(
        &format!(
            "graph \"g\" () {{\n  %x: f32[1,1,12] = constant {{value: f32[1,1,12] [{f}]}}\n  %y: f32[..], %i: i64[..] = max_pool {{kernel_shape: [3], strides: [2], pads: [2,2]}} (%x)\n  return %y, %i\n}}\n"
        ),
        1,
        0.0,
        0.0,
    );
    // Padding larger than the window: the first and last windows are empty.
    for dt in ["f32", "u8", "i8"] {
        check(
            &format!(
                "graph \"g\" (%x: {dt}[1,2,5]) {{\n  %y: {dt}[..], %i: i64[..] = max_pool {{kernel_shape: [2], pads: [3,3]}} (%x)\n  return %y, %i\n}}\n"
            ),
            2,
            0.0,
            0.0,
        );
    }
}

/// `n` deterministic indices in `[0, total)`, every fifth one repeating its predecessor (so
/// the later element must win).
fn indices(n: usize, total: usize, seed: u64) -> String {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<u64> = Vec::with_capacity(n);
    for i in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let x = if i % 5 == 4 {
            v[i - 1]
        } else {
            s % total as u64
        };
        v.push(x);
    }
    let v: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    v.join(", ")
}

fn dims(d: &[usize]) -> String {
    let v: Vec<String> = d.iter().map(|x| x.to_string()).collect();
    format!("[{}]", v.join(","))
}

/// X's shape, attributes, the unpooled shape, the output_shape input.
type UnpoolCase<'a> = (&'a [usize], &'a str, &'a [usize], Option<&'a [usize]>);

/// MaxUnpool over 1-D, 2-D and 3-D windows, with and without a constant output_shape, for
/// f32 and integer elements; duplicate indices (the later element wins).
#[test]
fn max_unpool_scatters() {
    let cases: &[UnpoolCase] = &[
        (
            &[1, 2, 2, 2],
            "kernel_shape: [2,2], strides: [2,2]",
            &[1, 2, 4, 4],
            None,
        ),
        (
            &[1, 2, 2, 2],
            "kernel_shape: [2,2], strides: [2,2]",
            &[1, 2, 4, 4],
            Some(&[1, 2, 5, 5]),
        ),
        (
            &[1, 1, 2, 2, 3],
            "kernel_shape: [2,2,2], strides: [2,2,2], pads: [0,0,1,0,0,0]",
            &[1, 1, 4, 4, 5],
            Some(&[2, 1, 5, 4, 6]),
        ),
        (
            &[2, 3, 4],
            "kernel_shape: [3], strides: [2], pads: [1,1]",
            &[2, 3, 7],
            None,
        ),
        (
            &[1, 3, 3, 5],
            "kernel_shape: [3,2]",
            &[1, 3, 5, 6],
            Some(&[1, 3, 5, 6]),
        ),
    ];
    for (i, &(xs, attrs, unpooled, out)) in cases.iter().enumerate() {
        let n: usize = xs.iter().product();
        let total: usize = unpooled.iter().product();
        let idx = format!(
            "%i: i64{} = constant {{value: i64{} [{}]}}",
            dims(xs),
            dims(xs),
            indices(n, total, i as u64 + 1)
        );
        for dt in ["f32", "u8", "i32"] {
            let (shape_const, args, ys) = match out {
                Some(o) => (
                    format!(
                        "\n  %s: i64[{}] = constant {{value: i64[{}] [{}]}}",
                        o.len(),
                        o.len(),
                        o.iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "%x, %i, %s",
                    dims(o),
                ),
                None => (String::new(), "%x, %i", dims(unpooled)),
            };
            check(
                &format!(
                    "graph \"g\" (%x: {dt}{}) {{\n  {idx}{shape_const}\n  %y: {dt}{ys} = max_unpool {{{attrs}}} ({args})\n  return %y\n}}\n",
                    dims(xs)
                ),
                100 + i as u64,
                0.0,
                0.0,
            );
        }
    }
}

/// Indices are data: out-of-range and negative ones are skipped (the reference rejects
/// them), in-range ones scattered with the later duplicate winning; a run-time output_shape
/// is declined.
#[test]
fn max_unpool_skips_bad_indices_and_declines_runtime_shapes() {
    use crate::codegen::testing::{run_node, single_compute_node};
    use graphc_passes::ir::Tensor;
    let text = "graph \"g\" (%x: f32[1,1,2,2], %i: i64[1,1,2,2]) {\n  %y: f32[1,1,4,4] = max_unpool {kernel_shape: [2,2], strides: [2,2]} (%x, %i)\n  return %y\n}\n";
    let g = parse(text).unwrap();
    let node = single_compute_node(&g).unwrap();
    let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1f32, 2.0, 3.0, 4.0]).unwrap();
    let i = Tensor::from_vec(&[1, 1, 2, 2], vec![-1i64, 3, 16, 3]).unwrap();
    let got = run_node(&g, node, &[Some(x), Some(i)], Target::host())
        .unwrap()
        .expect("compiled");
    let mut want = vec![0f64; 16];
    want[3] = 4.0;
    assert_eq!(got[0].shape(), &[1, 1, 4, 4]);
    assert_eq!(got[0].to_f64_vec(), want);
    let text = "graph \"g\" (%x: f32[1,1,2,2], %i: i64[1,1,2,2], %s: i64[4]) {\n  %y: f32[1,1,4,4] = max_unpool {kernel_shape: [2,2], strides: [2,2]} (%x, %i, %s)\n  return %y\n}\n";
    let g = parse(text).unwrap();
    let node = single_compute_node(&g).unwrap();
    let x = Tensor::from_vec(&[1, 1, 2, 2], vec![1f32, 2.0, 3.0, 4.0]).unwrap();
    let i = Tensor::from_vec(&[1, 1, 2, 2], vec![0i64, 1, 2, 3]).unwrap();
    let s = Tensor::from_vec(&[4], vec![1i64, 1, 4, 4]).unwrap();
    assert!(
        run_node(&g, node, &[Some(x), Some(i), Some(s)], Target::host())
            .unwrap()
            .is_none()
    );
}

/// Col2Im over 1-D, 2-D and 3-D images with pads, strides and dilations, constant
/// image_shape/block_shape; a run-time image_shape is declined.
#[test]
fn col2im_sums_blocks() {
    let cases: &[(&[usize], &[usize], &str)] = &[
        (&[5, 5], &[1, 5], ""),
        (&[5, 5], &[2, 2], "strides: [2,2]"),
        (&[6, 7], &[2, 3], "pads: [1,0,1,2], dilations: [2,1]"),
        (&[4, 5, 3], &[2, 2, 2], "pads: [1,1,0,0,1,1]"),
        (&[9], &[3], "strides: [2], dilations: [2], pads: [2,1]"),
        (&[3, 4], &[3, 4], ""),
    ];
    for (i, &(image, block, attrs)) in cases.iter().enumerate() {
        let r = image.len();
        let list = |v: &[i64], def: i64| -> Vec<i64> {
            if v.is_empty() {
                vec![def; r]
            } else {
                v.to_vec()
            }
        };
        let get = |key: &str| -> Vec<i64> {
            attrs
                .split(key)
                .nth(1)
                .map(|s| {
                    s.trim_start_matches(": [")
                        .split(']')
                        .next()
                        .unwrap()
                        .split(',')
                        .map(|x| x.trim().parse().unwrap())
                        .collect()
                })
                .unwrap_or_default()
        };
        let (st, dl, pd) = (list(&get("strides"), 1), list(&get("dilations"), 1), {
            let p = get("pads");
            if p.is_empty() {
                vec![0; 2 * r]
            } else {
                p
            }
        });
        let mut positions = 1;
        for d in 0..r {
            let ek = (block[d] as i64 - 1) * dl[d] + 1;
            positions *= ((image[d] as i64 + pd[d] + pd[d + r] - ek) / st[d] + 1) as usize;
        }
        let taps: usize = block.iter().product();
        let op = if attrs.is_empty() {
            "col2im".to_string()
        } else {
            format!("col2im {{{attrs}}}")
        };
        for (n, c) in [(1, 1), (2, 3)] {
            let text = format!(
                "graph \"g\" (%x: f32[{n},{},{positions}]) {{\n  %im: i64[{r}] = constant {{value: i64[{r}] [{}]}}\n  %bl: i64[{r}] = constant {{value: i64[{r}] [{}]}}\n  %y: f32[..] = {op} (%x, %im, %bl)\n  return %y\n}}\n",
                c * taps,
                image.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "),
                block.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "),
            );
            check(&text, 200 + i as u64, 1e-6, 1e-6);
        }
    }
    let text = "graph \"g\" (%x: f32[1,4,16], %im: i64[2]) {\n  %bl: i64[2] = constant {value: i64[2] [2, 2]}\n  %y: f32[1,1,5,5] = col2im (%x, %im, %bl)\n  return %y\n}\n";
    let g = parse(text).unwrap();
    let node = crate::codegen::testing::single_compute_node(&g).unwrap();
    let x = graphc_passes::ir::Tensor::from_vec(&[1, 4, 16], vec![0f32; 64]).unwrap();
    let im = graphc_passes::ir::Tensor::from_vec(&[2], vec![5i64, 5]).unwrap();
    assert!(
        crate::codegen::testing::run_node(&g, node, &[Some(x), Some(im)], Target::host())
            .unwrap()
            .is_none()
    );
}
