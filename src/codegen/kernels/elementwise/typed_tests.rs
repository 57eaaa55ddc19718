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
        // Largest finite, a subnormal, a value that overflows on conversion.
        DType::F16 => vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            65504.0,
            -3.5,
            7.0,
            1e-7,
            -6e-5,
        ],
        DType::BF16 => vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            3e38,
            -3.5,
            7.0,
            1e-40,
            -1e-39,
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
                if matches!(dt, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
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
        binary("pow", "f64", "[3]", "[3]", "[3]", "f64").replace("%b: f64", "%b: bool"),
        unary("exp", "i32", "[3]", "i32"),
        binary("add", "f16", "[3]", "[3]", "[3]", "f16").replace("%b: f16", "%b: bf16"),
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

/// f16/bf16 through f64: every op exact (one rounding, as the reference).
#[test]
fn half_types() {
    for t in ["f16", "bf16"] {
        for op in [
            "add",
            "sub",
            "mul",
            "div",
            "max",
            "min",
            "mod {fmod: 1}",
            "mod",
        ] {
            for (a, b, o) in SHAPES {
                check(&binary(op, t, a, b, o, t), 0.0, None);
            }
        }
        for op in ["equal", "less", "greater_or_equal"] {
            check(
                &binary(op, t, "[2,3,4]", "[4]", "[2,3,4]", "bool"),
                0.0,
                None,
            );
        }
        for op in [
            "neg",
            "abs",
            "sign",
            "relu",
            "sqrt",
            "floor",
            "ceil",
            "round",
            "reciprocal",
            "exp",
            "log",
        ] {
            for s in ["[7]", "[2,3,5]", "[]", "[0,2]"] {
                check(&unary(op, t, s, t), 0.0, None);
            }
        }
        for op in ["is_nan", "is_inf", "is_inf {detect_positive: 0}"] {
            check(&unary(op, t, "[3,7]", "bool"), 0.0, None);
        }
        // Variadic Sum rounds after each addition, Mean then divides.
        for op in ["sum", "mean", "max", "min"] {
            let text = format!(
                "graph \"g\" (%a: {t}[2,3,4], %b: {t}[4], %c: {t}[3,1]) {{\n  %y: {t}[2,3,4] = {op} (%a, %b, %c)\n  return %y\n}}\n"
            );
            check(&text, 0.0, None);
        }
        let text = format!(
            "graph \"g\" (%x: {t}[3,7], %lo: {t}[], %hi: {t}[1]) {{\n  %y: {t}[3,7] = clip (%x, %lo, %hi)\n  return %y\n}}\n"
        );
        check(&text, 0.0, None);
        // Pow: integer exponents exact, float exponents within an ulp of f16 (near-ties).
        let text = format!(
            "graph \"g\" (%a: {t}[3,5], %b: i32[5]) {{\n  %y: {t}[3,5] = pow (%a, %b)\n  return %y\n}}\n"
        );
        check(&text, 0.0, None);
        check(&binary("pow", t, "[3,5]", "[5]", "[3,5]", t), 1e-3, None);
    }
}

/// Cast and CastLike from and to f16/bf16: widening exact, narrowing rounds to nearest even
/// in one step (also from f64, with no double rounding through f32).
#[test]
fn casts_with_half_types() {
    let mut types: Vec<&str> = INTS.to_vec();
    types.extend(["f32", "f64", "bool", "f16", "bf16"]);
    for from in &types {
        for to in &types {
            if !(from.contains("16") && from.starts_with(['f', 'b'])
                || to.contains("16") && to.starts_with(['f', 'b']))
            {
                continue;
            }
            let cast = format!(
                "graph \"g\" (%x: {from}[3,5]) {{\n  %y: {to}[3,5] = cast {{to: {to}}} (%x)\n  return %y\n}}\n"
            );
            check(&cast, 0.0, None);
            let like = format!(
                "graph \"g\" (%x: {from}[3,5], %t: {to}[1]) {{\n  %y: {to}[3,5] = cast_like (%x, %t)\n  return %y\n}}\n"
            );
            check(&like, 0.0, None);
        }
    }
    // Rounding boundaries: ties between neighbours, values just off ties, the subnormal
    // range, the overflow threshold, from f32 and f64 (f64 values that an f32 step would
    // double-round).
    let mut xs: Vec<f64> = Vec::new();
    for e in -30..17 {
        let p = 2f64.powi(e);
        for k in 0..64 {
            let m = 1.0 + k as f64 / 64.0;
            for d in [
                0.0,
                1.0 / 2048.0,
                1.0 / 4096.0,
                1.0 / 8192.0,
                1.0 / 256.0,
                1.0 / 512.0,
            ] {
                xs.push(p * (m + d));
                xs.push(p * (m + d) * (1.0 + 1e-12));
                xs.push(-p * (m + d) * (1.0 - 1e-12));
            }
        }
    }
    for e in -140..-120 {
        xs.push(2f64.powi(e) * 1.5);
        xs.push(2f64.powi(e) * 1.4999999999);
    }
    xs.extend([
        65504.0,
        65519.0,
        65520.0,
        65536.0,
        3.3e38,
        3.4e38,
        1e300,
        f64::NAN,
    ]);
    let n = xs.len();
    for from in ["f32", "f64"] {
        for to in ["f16", "bf16"] {
            let text = format!(
                "graph \"g\" (%x: {from}[{n}]) {{\n  %y: {to}[{n}] = cast {{to: {to}}} (%x)\n  return %y\n}}\n"
            );
            let x = Tensor::from_vec(&[n], xs.clone())
                .unwrap()
                .cast(if from == "f32" {
                    DType::F32
                } else {
                    DType::F64
                });
            check_inputs(&text, &[Some(x)], 0.0);
        }
    }
}

/// Float Mod (exact fmod, and Python's % for fmod = 0) on f32 and f64, extreme ratios too.
#[test]
fn float_mod() {
    for t in ["f32", "f64"] {
        for op in ["mod {fmod: 1}", "mod"] {
            for (a, b, o) in SHAPES {
                check(&binary(op, t, a, b, o, t), 0.0, None);
            }
        }
    }
    let xs: Vec<f64> = vec![
        3e38, -3e38, 1e-45, 5.5, -5.5, 7.0, -0.0, 0.0, 1e30, 3.0, 2.5, -1e-40, 1e20, 123.456,
    ];
    let ys: Vec<f64> = vec![
        1e-45,
        7e-39,
        3e38,
        2.0,
        -2.0,
        7.0,
        3.0,
        -3.0,
        1.1,
        f64::INFINITY,
        -0.5,
        3e-41,
        0.1,
        -1e-3,
    ];
    for t in ["f32", "f64"] {
        let dt = if t == "f32" { DType::F32 } else { DType::F64 };
        for op in ["mod {fmod: 1}", "mod"] {
            let n = xs.len();
            let text = format!(
                "graph \"g\" (%a: {t}[{n},1], %b: {t}[{n}]) {{\n  %y: {t}[{n},{n}] = {op} (%a, %b)\n  return %y\n}}\n"
            );
            let a = Tensor::from_vec(&[n, 1], xs.clone()).unwrap().cast(dt);
            let b = Tensor::from_vec(&[n], ys.clone()).unwrap().cast(dt);
            check_inputs(&text, &[Some(a), Some(b)], 0.0);
        }
    }
    // f64 extremes: the largest and smallest magnitudes.
    let xs = vec![1.7e308, -1.7e308, 5e-324, 1e-310, 1.0, -1e300];
    let ys = vec![5e-324, 3e-310, 1.7e308, 0.3, -1e-300, 7.0];
    let text = "graph \"g\" (%a: f64[6,1], %b: f64[6]) {\n  %y: f64[6,6] = mod {fmod: 1} (%a, %b)\n  return %y\n}\n";
    let a = Tensor::from_vec(&[6, 1], xs).unwrap();
    let b = Tensor::from_vec(&[6], ys).unwrap();
    check_inputs(text, &[Some(a), Some(b)], 0.0);
}

/// f64 Exp and Log (vmath's f64 lanes, one scalar at a time): within 1e-15 relative.
#[test]
fn f64_exp_log() {
    let mut xs: Vec<f64> = (0..=4000)
        .map(|i| -760.0 + 1480.0 * i as f64 / 4000.0)
        .collect();
    xs.extend((0..=2000).map(|i| -1.0 + i as f64 / 1000.0));
    xs.extend([
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-310,
        5e-324,
    ]);
    for e in -1074..=1023 {
        xs.push(2f64.powi(e));
        xs.push(2f64.powi(e) * 1.7);
    }
    let n = xs.len();
    for op in ["exp", "log"] {
        let text = unary(op, "f64", &format!("[{n}]"), "f64");
        let x = Tensor::from_vec(&[n], xs.clone()).unwrap();
        check_inputs(&text, &[Some(x)], 1e-15);
        check(&unary(op, "f64", "[3,7]", "f64"), 1e-15, None);
    }
}

/// Pow with float exponents: integer bases (exact, truncated as the reference), f64 bases
/// (within 1e-13 of libm's pow), f32 bases with f64 exponents (rounded to f32).
#[test]
fn pow_with_float_exponents() {
    let bases: Vec<i64> = (0..130).map(|i| (i % 13) as i64 - 3).collect();
    let exps: Vec<f64> = (0..130)
        .map(|i| [0.0, 1.0, 2.0, 3.0, 4.0, 0.5, 1.5, -1.0, -0.5, 5.0][i / 13])
        .collect();
    for (bt, et) in [
        ("i32", "f32"),
        ("i64", "f32"),
        ("u8", "f64"),
        ("i16", "f64"),
    ] {
        let text = format!(
            "graph \"g\" (%a: {bt}[130], %b: {et}[130]) {{\n  %y: {bt}[130] = pow (%a, %b)\n  return %y\n}}\n"
        );
        let edt = if et == "f32" { DType::F32 } else { DType::F64 };
        let inputs = vec![
            Some(
                Tensor::from_vec(&[130], bases.clone())
                    .unwrap()
                    .cast(dtype(bt)),
            ),
            Some(Tensor::from_vec(&[130], exps.clone()).unwrap().cast(edt)),
        ];
        check_inputs(&text, &inputs, 0.0);
        // Bases 0..40, exponents k/4 up to 6 (results below 2^32, perfect powers such as
        // 25^4.5 among them): truncated exactly as the reference.
        let bases: Vec<i64> = (0..1000).map(|i| (i % 40) as i64).collect();
        let exps: Vec<f64> = (0..1000).map(|i| (i / 40) as f64 / 4.0).collect();
        let text = text.replace("[130]", "[1000]");
        let inputs = vec![
            Some(Tensor::from_vec(&[1000], bases).unwrap().cast(dtype(bt))),
            Some(Tensor::from_vec(&[1000], exps).unwrap().cast(edt)),
        ];
        check_inputs(&text, &inputs, 0.0);
        // Broadcasting on random inputs (no specials: a non-integral power beyond 2^53 is
        // within 1e-15 of libm's but not its exact bits, which the truncation would expose).
        for (a, b, o) in SHAPES {
            let text = format!(
                "graph \"g\" (%a: {bt}{a}, %b: {et}{b}) {{\n  %y: {bt}{o} = pow (%a, %b)\n  return %y\n}}\n"
            );
            for seed in [1, 2] {
                check_text(&text, seed, 0.0, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
            }
        }
    }
    // Exact integral powers of integer bases beyond 2^53 (rounded once, as libm's pow):
    // 255^7, 3^39, (-7)^21, overflow to saturation.
    let text =
        "graph \"g\" (%a: i64[6], %b: f64[6]) {\n  %y: i64[6] = pow (%a, %b)\n  return %y\n}\n";
    let inputs = vec![
        Some(Tensor::from_vec(&[6], vec![255i64, 3, -7, 10, -10, 2]).unwrap()),
        Some(Tensor::from_vec(&[6], vec![7.0f64, 39.0, 21.0, 30.0, 19.0, 63.0]).unwrap()),
    ];
    check_inputs(text, &inputs, 0.0);
    for (a, b, o) in SHAPES {
        check(&binary("pow", "f64", a, b, o, "f64"), 1e-13, None);
        let text = format!(
            "graph \"g\" (%a: f32{a}, %b: f64{b}) {{\n  %y: f32{o} = pow (%a, %b)\n  return %y\n}}\n"
        );
        check(&text, 2.5e-7, None);
    }
}
