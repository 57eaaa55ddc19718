//! Tests of the Unique kernel against the reference evaluator: seeded inputs drawn from a
//! small set of values (many duplicates; −0 next to 0, NaN and ±inf for floats), awkward
//! shapes, with and without an axis, sorted or not, every subset of outputs the text format
//! can name. Outputs are compared exactly, shapes and bytes included (so a −0 kept where the
//! reference keeps 0 fails).

use graphc_passes::ir::text::parse;
use graphc_passes::ir::{DType, Tensor};

use crate::codegen::kernel::Target;
use crate::codegen::testing::{run_node, same_as_reference, single_compute_node, Lcg};

/// `n` values drawn from `pool`.
fn draw(rng: &mut Lcg, n: usize, pool: &[f64]) -> Vec<f64> {
    (0..n).map(|_| pool[rng.below(pool.len())]).collect()
}

/// The values inputs are drawn from: a few, with the floats' special ones.
fn pool(dt: DType, few: bool) -> Vec<f64> {
    let mut p = vec![3.0, -2.0, 0.0, 1.0, 100.0, -7.0];
    if few {
        p.truncate(2);
    }
    if dt.is_float() {
        // NaNs of either sign and two payloads: all equal, above everything.
        let payload = f64::from_bits(0x7FFC_0000_0000_0000);
        p.extend([
            -0.0,
            f64::NAN,
            -f64::NAN,
            payload,
            0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.25,
        ]);
    }
    p
}

fn shape_text(dims: &[usize]) -> String {
    let d: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(","))
}

/// [`same_as_reference`], failing the test with the graph text.
fn exact(text: &str, inputs: Vec<Option<Tensor>>) {
    same_as_reference(text, &inputs).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

/// The Unique node over `x` (dims `dims`, type `dt`) with `outputs` outputs (1 to 4), all
/// returned unless `returned` names some ports.
fn unique_text(
    dt: DType,
    dims: &[usize],
    axis: Option<i64>,
    sorted: i64,
    outputs: usize,
    returned: Option<&[usize]>,
) -> String {
    let rank = dims.len();
    let y_ty = match axis {
        Some(_) => format!("[{}]", vec!["?"; rank].join(",")),
        None => "[?]".to_string(),
    };
    let items = match axis {
        Some(a) => {
            dims[if a < 0 {
                (a + rank as i64) as usize
            } else {
                a as usize
            }]
        }
        None => dims.iter().product(),
    };
    let all = [
        format!("%y: {dt}{y_ty}"),
        "%i: i64[?]".to_string(),
        format!("%inv: i64[{items}]"),
        "%c: i64[?]".to_string(),
    ];
    let names = ["%y", "%i", "%inv", "%c"];
    let outs = all[..outputs].join(", ");
    let ret: Vec<&str> = match returned {
        Some(r) => r.iter().map(|&p| names[p]).collect(),
        None => names[..outputs].to_vec(),
    };
    let axis_attr = axis.map_or(String::new(), |a| format!("axis: {a}, "));
    format!(
        "graph \"g\" (%x: {dt}{}) {{\n  {outs} = unique {{{axis_attr}sorted: {sorted}}} (%x)\n  return {}\n}}\n",
        shape_text(dims),
        ret.join(", ")
    )
}

fn check(rng: &mut Lcg, dt: DType, dims: &[usize], axis: Option<i64>, sorted: i64, outputs: usize) {
    let n: usize = dims.iter().product();
    for few in [true, false] {
        let x = Tensor::from_vec(dims, draw(rng, n, &pool(dt, few)))
            .unwrap()
            .cast(dt);
        let text = unique_text(dt, dims, axis, sorted, outputs, None);
        exact(&text, vec![Some(x)]);
    }
}

const DTYPES: [DType; 12] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::I32,
    DType::I16,
    DType::I8,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::Bool,
];

#[test]
fn unique_flattened_matches_the_reference() {
    let mut rng = Lcg(5);
    let shapes: &[&[usize]] = &[&[], &[0], &[1], &[7], &[3, 1, 5], &[4, 0, 2], &[2, 3, 4, 5]];
    for dt in DTYPES {
        for dims in shapes {
            for sorted in [0, 1] {
                for outputs in [1, 2, 4] {
                    check(&mut rng, dt, dims, None, sorted, outputs);
                }
            }
        }
    }
}

#[test]
fn unique_along_an_axis_matches_the_reference() {
    let mut rng = Lcg(9);
    let cases: &[(&[usize], i64)] = &[
        (&[1], 0),
        (&[7], 0),
        (&[7], -1),
        (&[6, 2], 0),
        (&[2, 9], 1),
        (&[3, 1, 5], 0),
        (&[3, 1, 5], 1),
        (&[3, 1, 5], -1),
        (&[5, 3, 2], 1),
        (&[4, 6, 2], 1),
        (&[4, 0, 2], 0),
        (&[4, 0, 2], 1),
        (&[4, 0, 2], -1),
        (&[0, 3], 1),
    ];
    for dt in [
        DType::F32,
        DType::F64,
        DType::I64,
        DType::I32,
        DType::I8,
        DType::U8,
        DType::F16,
    ] {
        for &(dims, axis) in cases {
            for sorted in [0, 1] {
                for outputs in [1, 2, 3, 4] {
                    check(&mut rng, dt, dims, Some(axis), sorted, outputs);
                }
            }
        }
    }
}

/// Slices that differ only in a late element, or only in −0 against 0 (equal), or in NaN
/// (all NaNs equal whatever their sign, above everything): the lexicographic order and the equality the
/// reference uses.
#[test]
fn unique_slices_compare_lexicographically() {
    let nan = f64::NAN;
    let rows: Vec<f64> = [
        [1.0, 2.0, 3.0],
        [1.0, 2.0, -0.0],
        [1.0, 2.0, 0.0],
        [1.0, nan, 0.0],
        [1.0, 2.0, 3.0],
        [0.5, 9.0, 9.0],
        [1.0, -nan, -0.0],
        [1.0, 2.0, 2.0],
    ]
    .concat();
    for dt in [DType::F32, DType::F64] {
        let x = Tensor::from_vec(&[8, 3], rows.clone()).unwrap().cast(dt);
        let cols: Vec<f64> = (0..24).map(|k| rows[(k % 8) * 3 + k / 8]).collect();
        let xt = Tensor::from_vec(&[3, 8], cols).unwrap().cast(dt);
        for sorted in [0, 1] {
            let text = unique_text(dt, &[8, 3], Some(0), sorted, 4, None);
            exact(&text, vec![Some(x.clone())]);
            let text = unique_text(dt, &[3, 8], Some(1), sorted, 4, None);
            exact(&text, vec![Some(xt.clone())]);
        }
    }
}

/// Only some outputs returned: the others are still computed (into sinks) and the returned
/// ones match.
#[test]
fn unique_with_outputs_not_returned() {
    let mut rng = Lcg(3);
    let dims = [5, 4];
    let x = Tensor::from_vec(&dims, draw(&mut rng, 20, &pool(DType::F32, true)))
        .unwrap()
        .cast(DType::F32);
    for returned in [&[0usize, 3][..], &[2], &[3, 1]] {
        for axis in [None, Some(1)] {
            let text = unique_text(DType::F32, &dims, axis, 1, 4, Some(returned));
            exact(&text, vec![Some(x.clone())]);
        }
    }
}

/// The ONNX examples, spelled out.
#[test]
fn unique_onnx_examples() {
    let x = Tensor::from_vec(&[6], vec![2f32, 1., 1., 3., 4., 3.]).unwrap();
    let text = unique_text(DType::F32, &[6], None, 0, 4, None);
    let g = parse(&text).unwrap();
    let node = single_compute_node(&g).unwrap();
    let got = run_node(&g, node, &[Some(x)], Target::host())
        .unwrap()
        .unwrap();
    let i64t = |v: &[i64]| Tensor::from_vec(&[v.len()], v.to_vec()).unwrap();
    assert_eq!(
        got[0],
        Tensor::from_vec(&[4], vec![2f32, 1., 3., 4.]).unwrap()
    );
    assert_eq!(got[1], i64t(&[0, 1, 3, 4]));
    assert_eq!(got[2], i64t(&[0, 1, 1, 2, 3, 2]));
    assert_eq!(got[3], i64t(&[1, 2, 2, 1]));
}

/// Strings, and outputs not compiled with a bound, get no kernel.
#[test]
fn unique_declines_strings_and_unbounded_outputs() {
    use crate::codegen::kernel::KernelCx;
    use crate::codegen::kernels;
    let mut module = crate::codegen::testing::jit_module().unwrap();
    let text = unique_text(DType::String, &[4], None, 1, 1, None);
    let g = parse(&text).unwrap();
    let node = single_compute_node(&g).unwrap();
    let mut cx = KernelCx::new(&mut module, Target::host(), "t_");
    assert!(kernels::lower(&mut cx, &g, node).unwrap().is_none());
    // Bounded values not marked as such: declined.
    let text = unique_text(DType::F32, &[4], None, 1, 1, None).replace("[?]", "[4]");
    let g = parse(&text).unwrap();
    let node = single_compute_node(&g).unwrap();
    assert!(kernels::lower(&mut cx, &g, node).unwrap().is_none());
    // SAFETY: nothing compiled is used.
    unsafe { module.free_memory() };
}
