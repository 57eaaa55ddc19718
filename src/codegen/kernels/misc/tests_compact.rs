//! Tests of the kernels whose output shape the data decides (NonZero, Compress) and of Equal
//! on strings, against the reference evaluator on seeded inputs with many zeros, −0, NaN,
//! duplicates, and awkward shapes.

use graphc_passes::eval::{compare, eval_graph};
use graphc_passes::ir::text::parse;
use graphc_passes::ir::{DType, Tensor};

use crate::codegen::kernel::Target;
use crate::codegen::testing::{run_node, same_as_reference, single_compute_node, Lcg};

/// `n` values, about `zeros` of them 0 (and, for floats, some −0 and NaN).
fn values(rng: &mut Lcg, n: usize, zeros: f64, specials: bool) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let v = symmetric(rng);
            let pick = rng.unit();
            if pick < zeros {
                0.0
            } else if specials && pick < zeros + 0.05 {
                -0.0
            } else if specials && pick < zeros + 0.1 {
                f64::NAN
            } else {
                v
            }
        })
        .collect()
}

fn tensor(dims: &[usize], data: Vec<f64>, dt: DType) -> Tensor {
    Tensor::from_vec(dims, data).unwrap().cast(dt)
}

/// [`same_as_reference`], failing the test with the graph text.
fn check(text: &str, inputs: Vec<Option<Tensor>>) {
    same_as_reference(text, &inputs).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

/// A number in `[-2, 2)`.
fn symmetric(rng: &mut Lcg) -> f64 {
    rng.unit() * 4.0 - 2.0
}

fn shape_text(dims: &[usize]) -> String {
    let d: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", d.join(","))
}

#[test]
fn non_zero_matches_the_reference() {
    let mut rng = Lcg(7);
    let shapes: &[&[usize]] = &[&[], &[0], &[1], &[7], &[3, 1, 5], &[2, 3, 4, 5], &[4, 0, 2]];
    for dt in [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::I32,
        DType::U8,
        DType::Bool,
    ] {
        for dims in shapes {
            let n: usize = dims.iter().product();
            for zeros in [0.0, 0.4, 1.0] {
                let x = tensor(dims, values(&mut rng, n, zeros, dt.is_float()), dt);
                let text = format!(
                    "graph \"g\" (%x: {dt}{}) {{\n  %y: i64[{},?] = non_zero (%x)\n  return %y\n}}\n",
                    shape_text(dims),
                    dims.len()
                );
                check(&text, vec![Some(x)]);
            }
        }
    }
}

#[test]
fn compress_matches_the_reference() {
    let mut rng = Lcg(11);
    // (input shape, axis, condition length): shorter than, as long as, longer than the axis.
    let cases: &[(&[usize], Option<i64>, usize)] = &[
        (&[3, 2], Some(0), 3),
        (&[3, 2], Some(1), 1),
        (&[3, 5, 7], Some(1), 5),
        (&[3, 5, 7], Some(-1), 4),
        (&[3, 5, 7], Some(2), 7),
        (&[2, 3, 17], Some(0), 2),
        (&[1, 9], Some(1), 12),
        (&[4, 4], None, 16),
        (&[4, 4], None, 5),
        (&[2, 0, 3], Some(2), 3),
        (&[5], Some(0), 0),
    ];
    for dt in [DType::F32, DType::I64, DType::U8, DType::Bool, DType::F16] {
        for &(dims, axis, clen) in cases {
            let axis_len = match axis {
                Some(a) => {
                    dims[if a < 0 {
                        (a + dims.len() as i64) as usize
                    } else {
                        a as usize
                    }]
                }
                None => dims.iter().product(),
            };
            for density in [0.0, 0.5, 1.0] {
                let n: usize = dims.iter().product();
                let x = tensor(dims, values(&mut rng, n, 0.2, false), dt);
                // True entries past the axis are refused by the reference: keep them false.
                let cond: Vec<bool> = (0..clen)
                    .map(|j| j < axis_len && rng.unit() >= density)
                    .collect();
                let c = Tensor::from_vec(&[clen], cond).unwrap();
                let attrs = axis.map_or(String::new(), |a| format!(" {{axis: {a}}}"));
                let out_ty = match axis {
                    Some(_) => {
                        let d: Vec<&str> = dims.iter().map(|_| "?").collect();
                        format!("[{}]", d.join(","))
                    }
                    None => "[?]".to_string(),
                };
                let text = format!(
                    "graph \"g\" (%x: {dt}{}, %c: bool[{clen}]) {{\n  %y: {dt}{out_ty} = compress{attrs} (%x, %c)\n  return %y\n}}\n",
                    shape_text(dims)
                );
                check(&text, vec![Some(x), Some(c)]);
            }
        }
    }
}

/// A condition longer than the axis with true entries past its end: the reference refuses it;
/// the kernel selects nothing there, so it computes the result of the condition cut to the
/// axis.
#[test]
fn compress_ignores_true_entries_past_the_axis() {
    let x = Tensor::from_vec(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
    let long = Tensor::from_vec(&[5], vec![false, true, false, true, true]).unwrap();
    let text = "graph \"g\" (%x: f32[3,2], %c: bool[5]) {\n  %y: f32[?,2] = compress {axis: 0} (%x, %c)\n  return %y\n}\n";
    let g = parse(text).unwrap();
    let node = single_compute_node(&g).unwrap();
    assert!(eval_graph(&g, &[Some(x.clone()), Some(long.clone())]).is_err());
    let got = run_node(&g, node, &[Some(x), Some(long)], Target::host())
        .unwrap()
        .unwrap();
    let want = Tensor::from_vec(&[1, 2], vec![3f32, 4.]).unwrap();
    compare(&got[0], &want, 0.0, 0.0).unwrap();
}

/// A node reading a value whose shape the data decides cannot be compiled as a library; the
/// error names the value, the node and the reason.
#[test]
fn a_bounded_value_read_by_a_node_is_refused() {
    use crate::codegen::program::{compile, CompileError, CompileOptions};
    let text = "graph \"g\" (%x: f32[4]) {\n  %y: i64[1,?] = non_zero (%x)\n  %z: i64[?,1] = transpose {perm: [1, 0]} (%y)\n  return %z\n}\n";
    let g = parse(text).unwrap();
    let mut module = crate::codegen::testing::jit_module().unwrap();
    let opts = CompileOptions {
        target: Target::host(),
        prefix: "t_".into(),
        rt_prefix: "graphc_rt_".into(),
        allow_fallback: false,
        profile: false,
    };
    match compile(&mut module, &g, &opts) {
        Err(CompileError::Unsupported(e)) => {
            assert!(
                e.contains("'y'") && e.contains("NonZero") && e.contains("Transpose"),
                "{e}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // SAFETY: nothing compiled is used.
    unsafe { module.free_memory() };
}

/// Equal of string tensors (the library's string inputs are arrays of C string pointers):
/// equal and unequal strings, prefixes, empty strings and non-ASCII text, with broadcasting.
#[test]
fn equal_of_strings_matches_the_reference() {
    let words = ["", "a", "ab", "abc", "b", "héllo", "hé", "ab\u{7f}", "zz"];
    let mut rng = Lcg(5);
    let mut pick = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let k = (rng.unit() * words.len() as f64) as usize;
                words[k.min(words.len() - 1)].to_string()
            })
            .collect()
    };
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[2], &[2], &[2]),
        (&[2], &[1], &[2]),
        (&[7], &[7], &[7]),
        (&[3, 1, 4], &[5, 1], &[3, 5, 4]),
        (&[], &[6], &[6]),
        (&[1, 9], &[3, 1], &[3, 9]),
        (&[0, 2], &[2], &[0, 2]),
    ];
    for &(a, b, y) in cases {
        for _ in 0..3 {
            let x = Tensor::from_vec(a, pick(a.iter().product())).unwrap();
            let z = Tensor::from_vec(b, pick(b.iter().product())).unwrap();
            let text = format!(
                "graph \"g\" (%x: string{}, %y: string{}) {{\n  %z: bool{} = equal (%x, %y)\n  return %z\n}}\n",
                shape_text(a),
                shape_text(b),
                shape_text(y)
            );
            check(&text, vec![Some(x), Some(z)]);
        }
    }
}
