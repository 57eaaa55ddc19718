//! Tests of the normalization, resize and fill/cast/where kernels against the reference.

use crate::codegen::testing::check_text;

/// A one-node graph: inputs `ins` (text), constants `consts` (text lines), the node line.
fn graph(ins: &str, consts: &[&str], node: &str, out: &str) -> String {
    let mut s = format!("graph \"g\" ({ins}) {{\n");
    for c in consts {
        s.push_str("  ");
        s.push_str(c);
        s.push('\n');
    }
    s.push_str(&format!("  {node}\n  return {out}\n}}\n"));
    s
}

fn close(text: &str, rtol: f64, atol: f64) {
    check_text(text, 13, rtol, atol).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

fn exact(text: &str) {
    close(text, 0.0, 0.0);
}

/// `n` comma-separated values cycling through `vals`.
fn list(n: usize, vals: &[f32]) -> String {
    (0..n)
        .map(|i| format!("{}", vals[i % vals.len()]))
        .collect::<Vec<_>>()
        .join(", ")
}

// LRN: sums of at most `size` squares (all positive, f32 partial sums: a few ulp), the power
// through correctly rounded square roots (beta 0.5, 0.75, 1) or vmath exp/log (about 2 ulp
// each, the log's absolute error scaled by beta): 2e-6 relative covers both.
#[test]
fn lrn_windows_and_exponents() {
    for (shape, size, alpha, beta, bias) in [
        ("[1,7,3,5]", 5, 0.0001, 0.75, 1.0),
        ("[2,5,4,4]", 5, 0.5, 0.75, 2.0),
        ("[1,3,9]", 4, 0.3, 0.5, 1.0),
        ("[2,6,2,3]", 3, 0.2, 1.0, 1.5),
        ("[1,4,3,3]", 2, 0.4, 0.6, 1.0),
        ("[1,1,5,1]", 7, 0.9, 0.33, 0.7),
        ("[3,2]", 1, 1.0, 0.75, 1.0),
        ("[1,16,13,13]", 5, 0.0001, 0.75, 2.0),
        ("[1,3,1,1]", 2, 0.4, 0.0, 1.0),
    ] {
        close(
            &graph(
                &format!("%x: f32{shape}"),
                &[],
                &format!(
                    "%y: f32{shape} = lrn {{size: {size}, alpha: {alpha}, beta: {beta}, bias: {bias}}} (%x)"
                ),
                "%y",
            ),
            2e-6,
            1e-7,
        );
    }
}

// BatchNormalization: (x - mean) * k + B with |x - mean| <= 4 and |k| <= 4 (var >= 0.25): a
// few roundings of magnitude 16 at most, so 4e-6 absolute plus 1e-6 relative.
#[test]
fn batch_norm_constant_and_runtime_params() {
    for (shape, c) in [
        ("[2,3,5,7]", 3),
        ("[1,5,4]", 5),
        ("[4,6]", 6),
        ("[2,7,1,1]", 7),
        ("[1,1,3,3,2]", 1),
        ("[1,4,0,3]", 4),
    ] {
        let var = format!(
            "%v: f32[{c}] = constant {{value: f32[{c}] [{}]}}",
            list(c, &[0.5, 1.5, 0.25, 2.0])
        );
        let scale = format!(
            "%s: f32[{c}] = constant {{value: f32[{c}] [{}]}}",
            list(c, &[1.5, -0.5, 2.0])
        );
        // Constant scale and var: k folded at compile time; mean and B at run time.
        close(
            &graph(
                &format!("%x: f32{shape}, %b: f32[{c}], %m: f32[{c}]"),
                &[&scale, &var],
                &format!(
                    "%y: f32{shape} = batch_normalization {{epsilon: 0.001}} (%x, %s, %b, %m, %v)"
                ),
                "%y",
            ),
            1e-6,
            4e-6,
        );
        // Everything at run time (var an input with a positive default).
        close(
            &graph(
                &format!(
                    "%x: f32{shape}, %s: f32[{c}], %b: f32[{c}], %m: f32[{c}], %v: f32[{c}] = f32[{c}] [{}]",
                    list(c, &[0.75, 1.25, 0.3])
                ),
                &[],
                &format!("%y: f32{shape} = batch_normalization (%x, %s, %b, %m, %v)"),
                "%y",
            ),
            1e-6,
            4e-6,
        );
    }
}

#[test]
fn batch_norm_declines_training() {
    let t = graph(
        "%x: f32[2,3,4], %s: f32[3], %b: f32[3], %m: f32[3], %v: f32[3]",
        &[],
        "%y: f32[2,3,4] = batch_normalization {training_mode: 1} (%x, %s, %b, %m, %v)",
        "%y",
    );
    assert!(check_text(&t, 1, 1.0, 1.0)
        .unwrap_err()
        .contains("no kernel"));
}

// InstanceNormalization: like LayerNormalization (f32 two-pass mean and variance over at most
// a few hundred values, then |(x - mean) * inv| <= ~4, times |scale| <= 2).
#[test]
fn instance_norm_planes() {
    for shape in [
        "[2,3,5,7]",
        "[1,4,9]",
        "[3,2,1,1]",
        "[1,2,16,16]",
        "[2,1,3]",
    ] {
        let c: usize = shape[1..shape.len() - 1]
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        close(
            &graph(
                &format!("%x: f32{shape}, %s: f32[{c}], %b: f32[{c}]"),
                &[],
                &format!("%y: f32{shape} = instance_normalization {{epsilon: 0.01}} (%x, %s, %b)"),
                "%y",
            ),
            1e-5,
            1e-5,
        );
    }
}

/// A resize graph with constant scales (`s`) or sizes (`z`).
fn resize(x: &str, y: &str, attrs: &str, scales: Option<&str>, sizes: Option<&str>) -> String {
    let mut consts = Vec::new();
    let args = match (scales, sizes) {
        (Some(s), None) => {
            let n = s.split(',').count();
            consts.push(format!("%s: f32[{n}] = constant {{value: f32[{n}] [{s}]}}"));
            "%x, _, %s"
        }
        (None, Some(z)) => {
            let n = z.split(',').count();
            consts.push(format!("%z: i64[{n}] = constant {{value: i64[{n}] [{z}]}}"));
            "%x, _, _, %z"
        }
        _ => unreachable!(),
    };
    let consts: Vec<&str> = consts.iter().map(String::as_str).collect();
    graph(
        &format!("%x: {x}"),
        &consts,
        &format!("%y: {y} = resize {{{attrs}}} ({args})"),
        "%y",
    )
}

#[test]
fn resize_nearest_modes() {
    let coords = [
        "half_pixel",
        "half_pixel_symmetric",
        "pytorch_half_pixel",
        "align_corners",
        "asymmetric",
    ];
    let nearest = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];
    for c in coords {
        for m in nearest {
            let attrs = format!(
                "mode: \"nearest\", coordinate_transformation_mode: \"{c}\", nearest_mode: \"{m}\""
            );
            exact(&resize(
                "f32[1,2,3,5]",
                "f32[1,2,6,10]",
                &attrs,
                Some("1.0, 1.0, 2.0, 2.0"),
                None,
            ));
            exact(&resize(
                "f32[1,2,7,5]",
                "f32[1,2,3,11]",
                &attrs,
                None,
                Some("1, 2, 3, 11"),
            ));
            exact(&resize(
                "f32[2,9]",
                "f32[2,4]",
                &attrs,
                Some("1.0, 0.5"),
                None,
            ));
        }
    }
    // Other element types, a 1-sized dim, only some axes, the last dim unchanged.
    exact(&resize(
        "u8[1,3,4,4]",
        "u8[1,3,8,12]",
        "mode: \"nearest\"",
        Some("1.0, 1.0, 2.0, 3.0"),
        None,
    ));
    exact(&resize(
        "i32[1,1,1,3]",
        "i32[1,1,4,3]",
        "mode: \"nearest\", axes: [2]",
        None,
        Some("4"),
    ));
    exact(&resize(
        "f32[2,3,5,7]",
        "f32[2,6,10,7]",
        "mode: \"nearest\"",
        Some("1.0, 2.0, 2.0, 1.0"),
        None,
    ));
    exact(&resize(
        "f32[5]",
        "f32[12]",
        "mode: \"nearest\"",
        Some("2.5"),
        None,
    ));
}

// Bilinear: two f32 blends of values below 2 in magnitude with f32-rounded weights (the
// reference is f64, rounded once): a few ulp of 2.
#[test]
fn resize_linear_modes() {
    for c in [
        "half_pixel",
        "half_pixel_symmetric",
        "pytorch_half_pixel",
        "align_corners",
        "asymmetric",
    ] {
        let attrs = format!("mode: \"linear\", coordinate_transformation_mode: \"{c}\"");
        for (x, y, scales, sizes) in [
            ("[1,2,3,5]", "[1,2,6,10]", Some("1.0, 1.0, 2.0, 2.0"), None),
            ("[2,3,8,9]", "[2,3,3,4]", None, Some("2, 3, 3, 4")),
            ("[1,1,4,4]", "[1,1,4,7]", None, Some("1, 1, 4, 7")),
            ("[1,2,1,1]", "[1,2,3,2]", None, Some("1, 2, 3, 2")),
            ("[1,1,5,6]", "[1,1,1,1]", None, Some("1, 1, 1, 1")),
        ] {
            close(
                &resize(
                    &format!("f32{x}"),
                    &format!("f32{y}"),
                    &attrs,
                    scales,
                    sizes,
                ),
                1e-6,
                1e-6,
            );
        }
    }
}

/// Runs a one-node graph on given inputs and compares with the reference exactly.
fn exact_on(text: &str, inputs: Vec<Option<graphc_passes::ir::Tensor>>) {
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
    for (w, o) in want.iter().zip(&g.outputs) {
        graphc_passes::eval::compare(&got[o.value.port as usize], w, 0.0, 0.0)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn constant_of_shape_fills() {
    for (shape, n, attr, out) in [
        ("[2,3,5]", 3, "", "f32"),
        ("[7]", 1, " {value: i64[1] [-3]}", "i64"),
        ("[4,1,9]", 3, " {value: u8[1] [200]}", "u8"),
        ("[3,0]", 2, " {value: f32[1] [2.5]}", "f32"),
        ("[100,100]", 2, " {value: f32[1] [-1.25]}", "f32"),
    ] {
        let dims = &shape[1..shape.len() - 1];
        exact(&graph(
            "",
            &[&format!(
                "%s: i64[{n}] = constant {{value: i64[{n}] [{dims}]}}"
            )],
            &format!("%y: {out}{shape} = constant_of_shape{attr} (%s)"),
            "%y",
        ));
    }
}

#[test]
fn cast_between_numeric_types() {
    let types = ["f32", "f64", "i64", "i32", "i8", "u8", "u16", "u64", "bool"];
    for from in types {
        for to in types {
            if from == to {
                continue;
            }
            exact(&graph(
                &format!("%x: {from}[3,7]"),
                &[],
                &format!("%y: {to}[3,7] = cast {{to: {to}}} (%x)"),
                "%y",
            ));
        }
    }
    // The awkward values: NaN, infinities, fractions, out-of-range, huge integers.
    let vals: Vec<f32> = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.7,
        0.7,
        -1.5,
        255.9,
        256.0,
        -129.0,
        3e9,
        -3e9,
        1e19,
        2e19,
        -1e19,
        0.0,
        -0.0,
        65535.5,
    ];
    let n = vals.len();
    for to in ["i64", "i32", "i8", "u8", "u16", "u64", "bool", "f64"] {
        exact_on(
            &graph(
                &format!("%x: f32[{n}]"),
                &[],
                &format!("%y: {to}[{n}] = cast {{to: {to}}} (%x)"),
                "%y",
            ),
            vec![Some(
                graphc_passes::ir::Tensor::from_vec(&[n], vals.clone()).unwrap(),
            )],
        );
    }
    let ints: Vec<i64> = vec![
        i64::MAX,
        i64::MIN,
        (1 << 53) + 1,
        -(1 << 60) - 3,
        0,
        -1,
        300,
        1 << 31,
    ];
    let k = ints.len();
    for to in ["f32", "f64", "i32", "u8", "u64", "bool"] {
        exact_on(
            &graph(
                &format!("%x: i64[{k}]"),
                &[],
                &format!("%y: {to}[{k}] = cast {{to: {to}}} (%x)"),
                "%y",
            ),
            vec![Some(
                graphc_passes::ir::Tensor::from_vec(&[k], ints.clone()).unwrap(),
            )],
        );
    }
}

#[test]
fn where_broadcasts() {
    for (c, a, b, y, dt) in [
        ("[2,3,5]", "[2,3,5]", "[2,3,5]", "[2,3,5]", "f32"),
        ("[1,5]", "[4,1]", "[4,5]", "[4,5]", "f32"),
        ("[2,1,7]", "[3,1]", "[1]", "[2,3,7]", "i64"),
        ("[2,1,7]", "[7]", "[1]", "[2,1,7]", "i64"),
        ("[]", "[3,4]", "[3,4]", "[3,4]", "u8"),
        ("[3,1,1]", "[1,2,1]", "[1,1,9]", "[3,2,9]", "i32"),
        ("[2,0]", "[2,1]", "[1,0]", "[2,0]", "f32"),
    ] {
        let text = graph(
            &format!("%c: bool{c}, %a: {dt}{a}, %b: {dt}{b}"),
            &[],
            &format!("%y: {dt}{y} = where (%c, %a, %b)"),
            "%y",
        );
        let g = graphc_passes::ir::text::parse(&text).unwrap();
        let mut ins = graphc_passes::eval::random_inputs(&g, 5).unwrap();
        // A condition with both values (random inputs are almost never exactly zero).
        let cs: Vec<usize> = if c == "[]" {
            vec![]
        } else {
            c[1..c.len() - 1]
                .split(',')
                .map(|v| v.parse().unwrap())
                .collect()
        };
        let cn: usize = cs.iter().product();
        let cv: Vec<bool> = (0..cn).map(|i| (i * 7 + 3) % 5 < 2).collect();
        ins[0] = Some(graphc_passes::ir::Tensor::from_vec(&cs, cv).unwrap());
        exact_on(&text, ins);
    }
}

#[test]
fn transpose_blocked_4x4() {
    for (dt, shape, perm, out) in [
        ("f32", "[1,128,12,64]", "[0,2,3,1]", "[1,12,64,128]"),
        ("f32", "[1,128,12,64]", "[0,2,1,3]", "[1,12,128,64]"),
        ("f32", "[5,7]", "[1,0]", "[7,5]"),
        ("i32", "[2,9,6,11]", "[0,3,1,2]", "[2,11,9,6]"),
        ("f32", "[3,4,4]", "[0,2,1]", "[3,4,4]"),
        ("f32", "[6,1,13]", "[2,1,0]", "[13,1,6]"),
        ("f32", "[4,3,5,2]", "[3,2,1,0]", "[2,5,3,4]"),
        ("f32", "[17,33]", "[1,0]", "[33,17]"),
    ] {
        exact(&graph(
            &format!("%x: {dt}{shape}"),
            &[],
            &format!("%y: {dt}{out} = transpose {{perm: {perm}}} (%x)"),
            "%y",
        ));
    }
}
