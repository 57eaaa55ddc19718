//! Tests of the N-D pools (`pool_nd`) against the reference: 1-D, 3-D and 4-D windows with
//! pads, strides, dilations, ceil_mode, auto_pad and count_include_pad; MaxPool's Indices
//! (both storage orders, ties from small integers); u8/i8 MaxPool; NaN order.

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
