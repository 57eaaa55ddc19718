//! Linear algebra, normalization and signal ops decomposed into kernels (Einsum, training
//! BatchNormalization, MeanVarianceNormalization, DFT, ReverseSequence, Det, integer
//! products), each compiled without fallback and checked against the reference evaluator.

use crate::jit::compiled_without_fallback;

/// Einsum: transposes, sums, products, diagonals, ellipsis broadcasting, implicit outputs,
/// three operands, 1-sized dims; f64, f32 and i64.
#[test]
fn einsum_runs_as_kernels() {
    let cases: &[(&str, &[&str])] = &[
        ("ij->ji", &["[3,5]"]),
        ("ij->i", &["[3,5]"]),
        ("ij->", &["[7,5]"]),
        ("->", &["[]"]),
        ("i,i", &["[9]", "[9]"]),
        ("bij, bjk -> bik", &["[5,2,3]", "[5,3,7]"]),
        ("...ii ->...i", &["[3,5,5]"]),
        ("ii", &["[6,6]"]),
        ("iij->ji", &["[3,3,5]"]),
        ("...ij,...jk", &["[2,1,3,4]", "[5,4,3]"]),
        ("ij,jk,kl->il", &["[3,4]", "[4,5]", "[5,2]"]),
        ("abc,cd->dba", &["[2,1,3]", "[3,9]"]),
        ("i,j->ij", &["[5]", "[3]"]),
        ("ij,ij->", &["[1,13]", "[1,13]"]),
    ];
    for dt in ["f64", "f32", "i64"] {
        for (eq, shapes) in cases {
            let decls: Vec<String> = shapes
                .iter()
                .enumerate()
                .map(|(i, s)| format!("%x{i}: {dt}{s}"))
                .collect();
            let args: Vec<String> = (0..shapes.len()).map(|i| format!("%x{i}")).collect();
            let text = format!(
                "graph \"g\" ({}) {{\n  %y: {dt}[..] = einsum {{equation: \"{eq}\"}} ({})\n  return %y\n}}\n",
                decls.join(", "),
                args.join(", ")
            );
            let (rtol, atol) = match dt {
                // Both compute in f64 (f32 rounded once): only the summation order differs.
                "f32" => (1e-6, 1e-7),
                "f64" => (1e-12, 1e-13),
                _ => (0.0, 0.0),
            };
            compiled_without_fallback(&text, 2, rtol, atol);
        }
    }
}
