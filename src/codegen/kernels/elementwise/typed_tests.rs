//! Tests of the typed kernels ([`super::typed`]) against the reference evaluator.

use graphc_passes::eval::{compare, eval_graph, random_inputs};
use graphc_passes::ir::text::parse;
use graphc_passes::ir::{DType, Tensor};

use crate::codegen::kernel::Target;
use crate::codegen::testing::{check_graph, check_text, run_node, single_compute_node};

const INTS: [&str; 8] = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"];

/// Shapes (a, b, out): tails, 1-sized dims, broadcasting both ways, scalars, long rows.
const SHAPES: [(&str, &str, &str); 9] = [
    ("[7]", "[7]", "[7]"),
    ("[2,3,4]", "[4]", "[2,3,4]"),
    ("[2,3,4]", "[3,1]", "[2,3,4]"),
    ("[]", "[3,5]", "[3,5]"),
    ("[3,5]", "[1]", "[3,5]"),
    ("[2,1,3]", "[4,1]", "[2,4,3]"),
    ("[1,1,1]", "[1,1,1]", "[1,1,1]"),
    ("[0,4]", "[4]", "[0,4]"),
    ("[3,17000]", "[3,1]", "[3,17000]"),
];

fn dtype(t: &str) -> DType {
    match t {
        "i8" => DType::I8,
        "i16" => DType::I16,
        "i32" => DType::I32,
        "i64" => DType::I64,
        "u8" => DType::U8,
        "u16" => DType::U16,
        "u32" => DType::U32,
        "u64" => DType::U64,
        _ => panic!("{t}"),
    }
}

fn binary(op: &str, t: &str, a: &str, b: &str, o: &str, ot: &str) -> String {
    format!(
        "graph \"g\" (%a: {t}{a}, %b: {t}{b}) {{\n  %y: {ot}{o} = {op} (%a, %b)\n  return %y\n}}\n"
    )
}

fn unary(op: &str, t: &str, s: &str, ot: &str) -> String {
    format!("graph \"g\" (%x: {t}{s}) {{\n  %y: {ot}{s} = {op} (%x)\n  return %y\n}}\n")
}

/// The interesting values of `dt` (as i64 bit patterns or f64 values).
fn specials(dt: DType) -> Vec<f64> {
    match dt {
        DType::F64 | DType::F32 => vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1e300,
            -3.5,
            7.0,
        ],
        _ => vec![],
    }
}

/// Integer specials: min, max, 0, -1, 1, min + 1, as i64 values that wrap to `dt`.
fn int_specials(dt: DType) -> Vec<i64> {
    let bits = dt.size() as u32 * 8;
    let signed = matches!(dt, DType::I8 | DType::I16 | DType::I32 | DType::I64);
    let (min, max) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    vec![min as i64, max as i64, 0, -1, 1, (min + 1) as i64, 5, -7]
}

/// Random inputs of `g` with every third element replaced by a special value of its type
/// (zero divisors in input `nonzero` replaced by 3).
fn special_inputs(text: &str, seed: u64, nonzero: Option<usize>) -> Vec<Option<Tensor>> {
    let g = parse(text).unwrap();
    random_inputs(&g, seed)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(k, t)| {
            t.map(|t| {
                let dt = t.dtype();
                let fix = |v: i64| if nonzero == Some(k) && v == 0 { 3 } else { v };
                if matches!(dt, DType::F32 | DType::F64) {
                    let sp = specials(dt);
                    let v: Vec<f64> = t
                        .to_f64_vec()
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| {
                            if (i + k) % 3 == 0 {
                                sp[(i / 3 + k) % sp.len()]
                            } else {
                                x * 4.0
                            }
                        })
                        .collect();
                    Tensor::from_vec(t.shape(), v).unwrap().cast(dt)
                } else if dt == DType::Bool {
                    t
                } else {
                    let sp = int_specials(dt);
                    let v: Vec<i64> = t
                        .cast(DType::I64)
                        .to_i64_vec()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(i, &x)| {
                            fix(if (i + k) % 3 == 0 {
                                sp[(i / 3 + k) % sp.len()]
                            } else {
                                x
                            })
                        })
                        .collect();
                    Tensor::from_vec(t.shape(), v).unwrap().cast(dt)
                }
            })
        })
        .collect()
}

/// Runs the node on `inputs` for the host and baseline targets against the reference.
fn check_inputs(text: &str, inputs: &[Option<Tensor>], rtol: f64) {
    let g = parse(text).unwrap();
    let node = single_compute_node(&g).unwrap();
    let want = eval_graph(&g, inputs).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for target in [Target::host(), Target::baseline()] {
        let got = run_node(&g, node, inputs, target)
            .unwrap()
            .unwrap_or_else(|| panic!("no kernel\n{text}"));
        compare(&got[0], &want[0], rtol, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

/// Random inputs (two seeds, host and baseline), then special values.
fn check(text: &str, rtol: f64, nonzero: Option<usize>) {
    if nonzero.is_none() {
        for seed in [1, 2] {
            check_text(text, seed, rtol, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
        let g = parse(text).unwrap();
        check_graph(&g, 3, rtol, 0.0, Target::baseline())
            .unwrap_or_else(|e| panic!("baseline: {e}\n{text}"));
    }
    for seed in [4, 5] {
        check_inputs(text, &special_inputs(text, seed, nonzero), rtol);
    }
}

#[test]
fn integer_and_f64_arithmetic() {
    let mut types: Vec<&str> = INTS.to_vec();
    types.push("f64");
    for t in &types {
        for op in ["add", "sub", "mul", "max", "min"] {
            for (a, b, o) in SHAPES {
                check(&binary(op, t, a, b, o, t), 0.0, None);
            }
        }
        for op in ["div", "mod", "mod {fmod: 1}"] {
            if op.starts_with("mod") && *t == "f64" {
                continue;
            }
            for (a, b, o) in SHAPES {
                check(&binary(op, t, a, b, o, t), 0.0, Some(1));
            }
        }
        for op in ["sum", "mean"] {
            if op == "mean" && *t != "f64" {
                continue;
            }
            let text = format!(
                "graph \"g\" (%a: {t}[2,3,4], %b: {t}[4], %c: {t}[3,1]) {{\n  %y: {t}[2,3,4] = {op} (%a, %b, %c)\n  return %y\n}}\n"
            );
            check(&text, 0.0, None);
        }
    }
}

#[test]
fn comparisons_any_type() {
    let mut types: Vec<&str> = INTS.to_vec();
    types.extend(["f64", "f32", "bool"]);
    for t in &types {
        for op in [
            "equal",
            "less",
            "less_or_equal",
            "greater",
            "greater_or_equal",
        ] {
            for (a, b, o) in SHAPES {
                check(&binary(op, t, a, b, o, "bool"), 0.0, None);
            }
        }
    }
}

#[test]
fn logical_and_bitwise() {
    for op in ["and", "or", "xor"] {
        for (a, b, o) in SHAPES {
            check(&binary(op, "bool", a, b, o, "bool"), 0.0, None);
        }
    }
    for (_, _, o) in SHAPES {
        check(&unary("not", "bool", o, "bool"), 0.0, None);
    }
    for t in INTS {
        for op in ["bitwise_and", "bitwise_or", "bitwise_xor"] {
            for (a, b, o) in SHAPES {
                check(&binary(op, t, a, b, o, t), 0.0, None);
            }
        }
        for (_, _, o) in SHAPES {
            check(&unary("bitwise_not", t, o, t), 0.0, None);
        }
        if t.starts_with('u') {
            for dir in ["LEFT", "RIGHT"] {
                for (a, b, o) in SHAPES {
                    let op = format!("bit_shift {{direction: \"{dir}\"}}");
                    check(&binary(&op, t, a, b, o, t), 0.0, None);
                }
            }
        }
    }
}

#[test]
fn unary_ops() {
    let mut types: Vec<&str> = INTS.to_vec();
    types.extend(["f64"]);
    for t in &types {
        for op in ["neg", "abs", "sign", "relu"] {
            if op == "neg" && t.starts_with('u') {
                continue;
            }
            for s in ["[7]", "[2,3,5]", "[]", "[0,2]", "[33]"] {
                check(&unary(op, t, s, t), 0.0, None);
            }
        }
    }
    for t in ["f32", "f64"] {
        for op in ["round", "sign"] {
            check(&unary(op, t, "[3,7]", t), 0.0, None);
        }
        for op in ["sqrt", "floor", "ceil", "reciprocal", "neg", "abs", "relu"] {
            check(&unary(op, "f64", "[3,7]", "f64"), 0.0, None);
        }
        for op in [
            "is_nan",
            "is_inf",
            "is_inf {detect_negative: 0}",
            "is_inf {detect_positive: 0}",
        ] {
            check(&unary(op, t, "[3,7]", "bool"), 0.0, None);
        }
    }
}

#[test]
fn cast_like_between_types() {
    let mut types: Vec<&str> = INTS.to_vec();
    types.extend(["f32", "f64", "bool"]);
    for from in &types {
        for to in &types {
            let text = format!(
                "graph \"g\" (%x: {from}[3,5], %t: {to}[1]) {{\n  %y: {to}[3,5] = cast_like (%x, %t)\n  return %y\n}}\n"
            );
            check(&text, 0.0, None);
        }
    }
}

#[test]
fn clip_with_tensor_bounds() {
    for t in ["i8", "i32", "i64", "u8", "u64", "f32", "f64"] {
        for (lo, hi) in [("[]", "[]"), ("[1]", "[1]"), ("[]", "_"), ("_", "[1]")] {
            let mut sig = format!("%x: {t}[3,7]");
            let mut args = "%x".to_string();
            for (name, s) in [("lo", lo), ("hi", hi)] {
                if s == "_" {
                    args.push_str(", _");
                } else {
                    sig.push_str(&format!(", %{name}: {t}{s}"));
                    args.push_str(&format!(", %{name}"));
                }
            }
            let text = format!(
                "graph \"g\" ({sig}) {{\n  %y: {t}[3,7] = clip ({args})\n  return %y\n}}\n"
            );
            check(&text, 0.0, None);
        }
    }
}

#[test]
fn pow_with_integer_exponents() {
    for (base, exp) in [
        ("i32", "i32"),
        ("i64", "i64"),
        ("i8", "i64"),
        ("u8", "u8"),
        ("u64", "i32"),
        ("f32", "i32"),
        ("f32", "i64"),
        ("f32", "u64"),
    ] {
        for (a, b, o) in SHAPES {
            let text = format!(
                "graph \"g\" (%a: {base}{a}, %b: {exp}{b}) {{\n  %y: {base}{o} = pow (%a, %b)\n  return %y\n}}\n"
            );
            check(&text, 0.0, None);
        }
    }
    // f64 bases: square-and-multiply in f64 is within a few ulp of libm's pow.
    let text =
        "graph \"g\" (%a: f64[5,7], %b: i64[7]) {\n  %y: f64[5,7] = pow (%a, %b)\n  return %y\n}\n";
    check_text(text, 1, 1e-14, 0.0).unwrap();
    // Exponents from -70 to 70 on small integer bases (wrapping, 0 for negative powers).
    let e: Vec<i64> = (-70..=70).collect();
    let x: Vec<i64> = (0..141).map(|i| [-3, -2, -1, 0, 1, 2, 3][i % 7]).collect();
    for t in ["i8", "i32", "i64", "u16"] {
        let text = format!(
            "graph \"g\" (%a: {t}[141], %b: i64[141]) {{\n  %y: {t}[141] = pow (%a, %b)\n  return %y\n}}\n"
        );
        let inputs = vec![
            Some(Tensor::from_vec(&[141], x.clone()).unwrap().cast(dtype(t))),
            Some(Tensor::from_vec(&[141], e.clone()).unwrap()),
        ];
        check_inputs(&text, &inputs, 0.0);
    }
}

#[test]
fn zero_divisors_do_not_trap() {
    for t in INTS {
        for op in ["div", "mod", "mod {fmod: 1}"] {
            let text = binary(op, t, "[9]", "[9]", "[9]", t);
            let g = parse(&text).unwrap();
            let node = single_compute_node(&g).unwrap();
            let sp = int_specials(DType::I64);
            let x: Vec<i64> = (0..9).map(|i| sp[i % sp.len()]).collect();
            let dt = dtype(t);
            let inputs = vec![
                Some(Tensor::from_vec(&[9], x).unwrap().cast(dt)),
                Some(Tensor::from_vec(&[9], vec![0i64; 9]).unwrap().cast(dt)),
            ];
            let got = run_node(&g, node, &inputs, Target::host())
                .unwrap()
                .expect("a kernel");
            assert!(got[0]
                .cast(DType::I64)
                .to_i64_vec()
                .unwrap()
                .iter()
                .all(|&v| v == 0));
        }
    }
}

#[test]
fn declines_what_it_does_not_handle() {
    for text in [
        binary("pow", "i32", "[3]", "[3]", "[3]", "i32").replace("%b: i32", "%b: f32"),
        binary("mod {fmod: 1}", "f32", "[3]", "[3]", "[3]", "f32"),
        binary("add", "f16", "[3]", "[3]", "[3]", "f16"),
        binary(
            "bit_shift {direction: \"LEFT\"}",
            "i32",
            "[3]",
            "[3]",
            "[3]",
            "i32",
        ),
        unary("mean", "i32", "[3]", "i32"),
    ] {
        let g = parse(&text).unwrap();
        let node = single_compute_node(&g).unwrap();
        let inputs = random_inputs(&g, 1).unwrap();
        assert!(
            run_node(&g, node, &inputs, Target::host())
                .unwrap()
                .is_none(),
            "{text}"
        );
    }
}
