//! Tests of the separable Resize paths (cubic, antialias, linear over any axes,
//! tf_crop_and_resize, keep_aspect_ratio_policy) and Upsample against the reference.

use crate::codegen::testing::check_text;

/// A resize node over `%x: f32{x}` with constant roi, scales or sizes (comma lists).
fn resize(
    x: &str,
    y: &str,
    attrs: &str,
    roi: Option<&str>,
    scales: Option<&str>,
    sizes: Option<&str>,
) -> String {
    let mut s = format!("graph \"g\" (%x: f32{x}) {{\n");
    let mut args = vec!["%x".to_string()];
    for (name, ty, v) in [("r", "f32", roi), ("s", "f32", scales), ("z", "i64", sizes)] {
        match v {
            Some(v) => {
                let n = v.split(',').count();
                s.push_str(&format!(
                    "  %{name}: {ty}[{n}] = constant {{value: {ty}[{n}] [{v}]}}\n"
                ));
                args.push(format!("%{name}"));
            }
            None => args.push("_".into()),
        }
    }
    while args.last().map(String::as_str) == Some("_") {
        args.pop();
    }
    s.push_str(&format!(
        "  %y: f32{y} = resize {{{attrs}}} ({})\n  return %y\n}}\n",
        args.join(", ")
    ));
    s
}

/// The separable kernel sums the reference's f64 taps in the reference's order and rounds
/// once: exact. Two-tap linear over H and W of 4-D input takes the f32 blended-rows kernel
/// (f32-rounded weights, values below 2): a few ulp.
fn exact(text: &str) {
    let rank4 = text
        .split("(%x: f32[")
        .nth(1)
        .and_then(|t| t.split(']').next())
        .map(|d| d.split(',').count())
        == Some(4);
    let (rtol, atol) = if text.contains("mode: \"linear\"") && rank4 {
        (1e-6, 1e-6)
    } else {
        (0.0, 0.0)
    };
    for seed in [5, 6] {
        check_text(text, seed, rtol, atol).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

const COORDS: [&str; 5] = [
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
];

#[test]
fn resize_cubic_coefficients_and_exclude_outside() {
    for c in COORDS {
        for (a, ex) in [(-0.75, 0), (-0.5, 1), (-0.5, 0), (-0.75, 1)] {
            let attrs = format!(
                "mode: \"cubic\", coordinate_transformation_mode: \"{c}\", cubic_coeff_a: {a}, exclude_outside: {ex}"
            );
            for (x, y, scales, sizes) in [
                ("[1,2,4,5]", "[1,2,8,10]", Some("1.0, 1.0, 2.0, 2.0"), None),
                ("[2,3,9,7]", "[2,3,5,3]", None, Some("2, 3, 5, 3")),
                ("[1,1,1,6]", "[1,1,3,13]", None, Some("1, 1, 3, 13")),
                ("[3,10]", "[3,4]", Some("1.0, 0.4"), None),
                ("[11]", "[17]", None, Some("17")),
            ] {
                exact(&resize(x, y, &attrs, None, scales, sizes));
            }
        }
    }
}

#[test]
fn resize_antialias_linear_and_cubic() {
    for mode in ["linear", "cubic"] {
        for c in ["half_pixel", "align_corners", "pytorch_half_pixel"] {
            let attrs =
                format!("mode: \"{mode}\", antialias: 1, coordinate_transformation_mode: \"{c}\"");
            for (x, y, scales, sizes) in [
                ("[1,1,8,8]", "[1,1,4,4]", Some("1.0, 1.0, 0.5, 0.5"), None),
                ("[2,3,13,9]", "[2,3,5,3]", None, Some("2, 3, 5, 3")),
                ("[1,2,7,5]", "[1,2,2,9]", None, Some("1, 2, 2, 9")),
                ("[21]", "[6]", Some("0.3"), None),
            ] {
                exact(&resize(x, y, &attrs, None, scales, sizes));
            }
        }
    }
}

#[test]
fn resize_linear_any_axes() {
    for c in COORDS {
        let attrs = format!("mode: \"linear\", coordinate_transformation_mode: \"{c}\"");
        for (x, y, scales, sizes) in [
            ("[2,3,5]", "[3,7,5]", None, Some("3, 7, 5")),
            ("[1,2,3,2,5]", "[1,2,6,3,9]", None, Some("1, 2, 6, 3, 9")),
            ("[4,5,3,3]", "[2,5,3,6]", Some("0.5, 1.0, 1.0, 2.0"), None),
            ("[9]", "[4]", None, Some("4")),
        ] {
            exact(&resize(x, y, &attrs, None, scales, sizes));
        }
        // Only some axes, in either order.
        for axes in ["[1, 2]", "[2, 1]"] {
            let attrs =
                format!("mode: \"linear\", coordinate_transformation_mode: \"{c}\", axes: {axes}");
            exact(&resize(
                "[2,3,4]",
                "[2,5,7]",
                &attrs,
                None,
                None,
                Some(if axes == "[1, 2]" { "5, 7" } else { "7, 5" }),
            ));
        }
    }
}

#[test]
fn resize_tf_crop_and_resize() {
    for mode in ["nearest", "linear", "cubic"] {
        for e in ["0.0", "-3.5"] {
            let attrs = format!(
                "mode: \"{mode}\", coordinate_transformation_mode: \"tf_crop_and_resize\", extrapolation_value: {e}"
            );
            // roi partly outside the input: extrapolated rows and columns.
            exact(&resize(
                "[1,2,5,6]",
                "[1,2,4,7]",
                &attrs,
                Some("0, 0, -0.2, 0.4, 1, 1, 0.6, 1.3"),
                None,
                Some("1, 2, 4, 7"),
            ));
            exact(&resize(
                "[2,1,4,4]",
                "[2,1,3,3]",
                &attrs,
                Some("0, 0, 0.4, 0.6, 1, 1, 0.6, 0.8"),
                Some("1.0, 1.0, 0.8, 0.8"),
                None,
            ));
            // roi over the resized axes only, axes given in either order; a 1-sized output.
            for (axes, roi, sizes) in [
                ("[2, 3]", "0.1, -0.3, 0.9, 0.8", "3, 1"),
                ("[3, 2]", "-0.3, 0.1, 0.8, 0.9", "1, 3"),
            ] {
                let a = format!("{attrs}, axes: {axes}");
                exact(&resize(
                    "[1,2,5,6]",
                    "[1,2,3,1]",
                    &a,
                    Some(roi),
                    None,
                    Some(sizes),
                ));
            }
            // Rank 1: everything outside.
            exact(&resize(
                "[5]",
                "[3]",
                &attrs,
                Some("1.5, 2.5"),
                None,
                Some("3"),
            ));
        }
    }
}

#[test]
fn resize_keep_aspect_ratio() {
    for keep in ["not_larger", "not_smaller"] {
        for mode in ["nearest", "linear", "cubic"] {
            let attrs = format!("mode: \"{mode}\", keep_aspect_ratio_policy: \"{keep}\"");
            // Sizes (7, 8) for 4x5: one scale, min(1.75, 1.6) or max, sizes rounded.
            let y = if keep == "not_larger" {
                "[1,1,6,8]"
            } else {
                "[1,1,7,9]"
            };
            let a = format!("{attrs}, axes: [2, 3]");
            exact(&resize("[1,1,4,5]", y, &a, None, None, Some("7, 8")));
            // Sizes (3, 2) for 9x4: min(1/3, 1/2) or max.
            let y = if keep == "not_larger" {
                "[2,3,1]"
            } else {
                "[2,5,2]"
            };
            let a = format!("{attrs}, axes: [1, 2]");
            exact(&resize("[2,9,4]", y, &a, None, None, Some("3, 2")));
        }
    }
}

#[test]
fn upsample_nearest_and_linear() {
    for (mode, x, y, s) in [
        ("nearest", "[1,2,3,4]", "[1,2,6,12]", "1.0, 1.0, 2.0, 3.0"),
        ("nearest", "[2,5]", "[4,12]", "2.0, 2.5"),
        ("linear", "[1,1,3,3]", "[1,1,6,6]", "1.0, 1.0, 2.0, 2.0"),
        ("bilinear", "[2,3,2,5]", "[2,3,4,7]", "1.0, 1.0, 2.0, 1.5"),
        ("linear", "[3,4]", "[6,4]", "2.0, 1.0"),
    ] {
        let n = s.split(',').count();
        let text = format!(
            "graph \"g\" (%x: f32{x}) {{\n  %s: f32[{n}] = constant {{value: f32[{n}] [{s}]}}\n  %y: f32{y} = upsample {{mode: \"{mode}\"}} (%x, %s)\n  return %y\n}}\n"
        );
        // The 4-D linear cases take the f32 blended-rows kernel: a few ulp.
        check_text(&text, 3, 1e-6, 1e-6).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}
