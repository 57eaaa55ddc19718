//! The IR text format on real models: `graphc inspect` output parses back to the same graph.

use graphc::passes::ir::text;

use crate::support::onnx_data;

#[test]
fn light_models_round_trip() {
    let dir = onnx_data().join("light");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "onnx") {
            continue;
        }
        let g = graphc::onnx::load_model(&path, vec![]).unwrap();
        graphc::passes::ir::verify::verify(&g).unwrap();
        let printed = text::print(&g);
        let back = text::parse_with_constants(&printed, &text::constants(&g))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            back == g,
            "{}: the parsed graph differs from the imported one",
            path.display()
        );
        assert_eq!(text::print(&back), printed);
        n += 1;
    }
    assert_eq!(n, 9);
}

/// Every node-test model that imports also round-trips (small tensors print in full).
#[test]
fn node_test_models_round_trip() {
    let dir = onnx_data().join("node");
    let (mut imported, mut total) = (0, 0);
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path().join("model.onnx");
        total += 1;
        let Ok(g) = graphc::onnx::load_model(&path, vec![]) else {
            continue;
        };
        imported += 1;
        graphc::passes::ir::verify::verify(&g)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let printed = text::print(&g);
        let back = text::parse_with_constants(&printed, &text::constants(&g))
            .unwrap_or_else(|e| panic!("{}: {e}\n{printed}", path.display()));
        assert!(
            back == g,
            "{}: the parsed graph differs:\n{printed}",
            path.display()
        );
    }
    println!("{imported} of {total} node-test models imported and round-tripped");
    assert!(
        imported > 1000,
        "only {imported} of {total} node-test models import"
    );
}
