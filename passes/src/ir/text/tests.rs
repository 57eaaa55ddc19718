//! Tests of the text format: canonical texts that must print back identically, a printed
//! snapshot of a graph built through the API, exact parser errors, and no panics on
//! mangled input.

use half::{bf16, f16};

use super::*;
use crate::ir::graph::{GraphOutput, Node, ValueInfo, ValueRef};
use crate::ir::op::Op;
use crate::ir::types::{DType, Dim, Shape, TypeInfo};

/// Parses `text`, checks that it prints back exactly, and that the reparse is equal.
fn roundtrip(text: &str) -> Graph {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let printed = print(&g);
    assert_eq!(printed, text);
    let again = parse(&printed).unwrap();
    assert!(again == g, "reparse differs");
    g
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("parsed: {text}"),
        Err(e) => e.to_string(),
    }
}

fn ty(dtype: DType, dims: &[usize]) -> TypeInfo {
    TypeInfo {
        dtype,
        shape: Shape::known(dims),
    }
}

/// The single node of a graph that is not an input.
fn body_ops(g: &Graph) -> Vec<&Op> {
    g.nodes()
        .filter(|(id, _)| !g.inputs.contains(id))
        .map(|(_, n)| &n.op)
        .collect()
}

#[test]
fn prints_small_graph_exactly() {
    let mut g = Graph::new("main");
    let x = g.add_input(
        "x",
        TypeInfo {
            dtype: DType::F32,
            shape: Shape::Ranked(vec![
                Dim::Known(1),
                Dim::Known(3),
                Dim::Sym("N".into()),
                Dim::Unknown,
            ]),
        },
    );
    let w_data = Tensor::from_vec(&[2, 3], vec![0.5f32, -0.0, 1.0, 2.0, 3.0, 4.0]).unwrap();
    let w = g.add_node(Node {
        name: String::new(),
        op: Op::Input {
            default: Some(w_data),
        },
        inputs: vec![],
        outputs: vec![ValueInfo {
            name: "w".into(),
            ty: ty(DType::F32, &[2, 3]),
        }],
    });
    g.inputs.push(w);
    g.add_node(Node {
        name: String::new(),
        op: Op::Constant {
            value: Tensor::from_vec(&[2], vec![1i64, -1]).unwrap(),
        },
        inputs: vec![],
        outputs: vec![ValueInfo {
            name: "c0".into(),
            ty: ty(DType::I64, &[2]),
        }],
    });
    let mut attrs = crate::ir::Attrs::new();
    attrs.insert("pads", Attr::Ints(vec![1, 1, 1, 1]));
    attrs.insert("strides", Attr::Ints(vec![1, 1]));
    let conv = Op::build("conv", &mut attrs).unwrap().unwrap();
    let y_ty = TypeInfo {
        dtype: DType::F32,
        shape: Shape::Ranked(vec![
            Dim::Known(1),
            Dim::Known(2),
            Dim::Sym("N".into()),
            Dim::Unknown,
        ]),
    };
    let y = g.add_node(Node {
        name: "conv_1".into(),
        op: conv,
        inputs: vec![
            Some(ValueRef { node: x, port: 0 }),
            Some(ValueRef { node: w, port: 0 }),
            None,
        ],
        outputs: vec![ValueInfo {
            name: "y".into(),
            ty: y_ty,
        }],
    });
    let unranked = TypeInfo {
        dtype: DType::F32,
        shape: Shape::Unranked,
    };
    let split = g.add_node(Node {
        name: String::new(),
        op: Op::Split {
            axis: 1,
            num_outputs: None,
        },
        inputs: vec![Some(ValueRef { node: y, port: 0 })],
        outputs: vec![
            ValueInfo {
                name: "a".into(),
                ty: unranked.clone(),
            },
            ValueInfo {
                name: "b".into(),
                ty: unranked,
            },
        ],
    });
    g.outputs.push(GraphOutput {
        name: "a".into(),
        value: ValueRef {
            node: split,
            port: 0,
        },
    });
    g.outputs.push(GraphOutput {
        name: "out_b".into(),
        value: ValueRef {
            node: split,
            port: 1,
        },
    });
    crate::ir::verify::verify(&g).unwrap();
    let expected = r#"graph "main" (%x: f32[1,3,N,?], %w: f32[2,3] = f32[2,3] [0.5, -0.0, 1.0, 2.0, 3.0, 4.0]) {
  %c0: i64[2] = constant {value: i64[2] [1, -1]}
  %y: f32[1,2,N,?] = conv {pads: [1, 1, 1, 1], strides: [1, 1]} (%x, %w, _) @conv_1
  %a: f32[..], %b: f32[..] = split {axis: 1} (%y)
  return %a, %b as "out_b"
}
"#;
    assert_eq!(print(&g), expected);
    assert_eq!(g.to_string(), expected);
    assert!(parse(expected).unwrap() == g);
}

#[test]
fn every_attribute_kind() {
    let g = roundtrip(
        r#"graph "attrs" (%x: f32[2,3], %i: i64[2]) {
  %a: f32[2,3] = leaky_relu {alpha: 0.5} (%x)
  %b: f32[3,2] = transpose {perm: [1, 0]} (%a)
  %c: f16[3,2] = cast {to: f16} (%b)
  %d: f32[2,3] = pad {mode: "reflect"} (%x, %i)
  %e: f32[2,3] = constant_of_shape {value: f32[1] [2.5]} (%i)
  %f: f32[..], %g: f32[..], %h: f32[..] = lstm {activation_alpha: [0.5, 1.0], activations: ["Tanh", "Relu", "Tanh"], clip: 3.0, hidden_size: 4} (%x, %x, %x)
  %k: f32[2,3] = mean_variance_normalization {axes: []} (%x)
  %l: f32[2,3] = softmax {axis: 0, coerce_2d: 1} (%x)
  return %c, %d, %e, %f, %k, %l
}
"#,
    );
    let ops = body_ops(&g);
    assert_eq!(
        ops[2],
        &Op::Cast {
            to: DType::F16,
            saturate: 1,
            round_mode: "up".into()
        }
    );
    assert_eq!(
        ops[4],
        &Op::ConstantOfShape {
            value: Some(Tensor::from_vec(&[1], vec![2.5f32]).unwrap())
        }
    );
    assert_eq!(ops[6], &Op::MeanVarianceNormalization { axes: vec![] });
    assert_eq!(
        ops[7],
        &Op::Softmax {
            axis: 0,
            coerce_2d: true
        }
    );
    let Op::Lstm {
        activation_alpha,
        activations,
        clip,
        hidden_size,
        ..
    } = ops[5]
    else {
        panic!()
    };
    assert_eq!(
        (activation_alpha.as_slice(), clip, *hidden_size),
        (&[0.5f32, 1.0][..], &Some(3.0), 4)
    );
    assert_eq!(activations, &["Tanh", "Relu", "Tanh"]);
}

#[test]
fn attribute_spellings_parse_leniently() {
    // Ints where floats are expected, mixed float lists, any attribute order, comments,
    // trailing commas and free layout all parse; the print is canonical.
    let g = parse(
        "; a comment\ngraph \"g\"(%x :f32[2],){\n %y : f32[2]=hard_sigmoid{beta:1,alpha:0.25,}(%x,) ; trailing\n return %y}",
    )
    .unwrap();
    assert_eq!(
        body_ops(&g)[0],
        &Op::HardSigmoid {
            alpha: 0.25,
            beta: 1.0
        }
    );
    assert_eq!(
        print(&g),
        "graph \"g\" (%x: f32[2]) {\n  %y: f32[2] = hard_sigmoid {alpha: 0.25, beta: 1.0} (%x)\n  return %y\n}\n"
    );
    let g = parse(r#"graph "g" (%x: f32[2]) { %y: f32[2], %z: f32[2], %w: f32[2] = lstm {activation_alpha: [1, 0.5], hidden_size: 1} (%x, %x, %x) return %y }"#).unwrap();
    let Op::Lstm {
        activation_alpha, ..
    } = body_ops(&g)[0]
    else {
        panic!()
    };
    assert_eq!(activation_alpha, &[1.0, 0.5]);
}

#[test]
fn subgraphs_print_indented_and_scope_names() {
    roundtrip(
        r#"graph "main" (%c: bool[], %x: f32[2]) {
  %y: f32[2] = if {
    then_branch: graph "then" (%x: f32[2]) {
      %y: f32[2] = relu (%x)
      return %y
    },
    else_branch: graph "else" (%x: f32[2]) {
      %z: f32[2] = loop {
        body: graph "body" (%i: i64[], %cond: bool[], %x: f32[2]) {
          %x2: f32[2] = neg (%x)
          return %cond, %x2
        },
        num_captures: 1
      } (_, _, %x)
      return %z
    }
  } (%c, %x)
  return %y
}
"#,
    );
}

#[test]
fn quoted_names_and_symbolic_dims() {
    let g = roundtrip(
        r#"graph "a \"quoted\"\tgraph" (
  %"my input": f32["batch size",N_1,"3d",?],
  %input:0: f32[] @"in node",
  %"a:": f32[..],
) {
  %"x\\y\n": f32[..] = add (%"my input", %input:0) @"add\u{1}"
  %a/b.c-d: f32[..] = relu (%"x\\y\n") @relu_1.x/y:z
  %"ünïcode": f32[..] = relu (%"a:")
  return %a/b.c-d as "a/b.c-d out", %"ünïcode"
}
"#,
    );
    assert_eq!(g.name, "a \"quoted\"\tgraph");
    let (_, add) = g.nodes().nth(3).unwrap();
    assert_eq!(add.name, "add\u{1}");
    assert_eq!(add.outputs[0].name, "x\\y\n");
    let (_, inp) = g.nodes().next().unwrap();
    assert_eq!(
        inp.outputs[0].ty.shape,
        Shape::Ranked(vec![
            Dim::Sym("batch size".into()),
            Dim::Sym("N_1".into()),
            Dim::Sym("3d".into()),
            Dim::Unknown
        ])
    );
    assert_eq!(g.node(g.inputs[1]).name, "in node");
    assert_eq!(g.outputs[0].name, "a/b.c-d out");
}

#[test]
fn unnamed_outputs_and_zero_output_nodes() {
    let g = roundtrip(
        r#"graph "g" (%x: f32[1,2,3], %w: f32[1,4,3], %r: f32[1,4,1]) {
  %"": f32[..], %h: f32[..], %"": f32[..] = lstm {hidden_size: 1} (%x, %w, %r)
  identity (%h)
  return %h
}
"#,
    );
    assert_eq!(g.len(), 5);
    assert_eq!(
        err("graph \"g\" (%x: f32[1]) {\n  %\"\": f32[1] = relu (%x)\n  return %\"\"\n}"),
        r#"3:10: a value named "" cannot be referenced"#
    );
}

#[test]
fn floats_round_trip_bit_exactly() {
    let specials = [
        0.1f32,
        -0.0,
        0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-45,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e20,
        16777217.0,
        -1.5e-7,
    ];
    let negative_nan = f32::from_bits(0xffc0_0000);
    let payload_nan = f32::from_bits(0x7fc0_0001);
    let mut all = specials.to_vec();
    all.extend([negative_nan, payload_nan]);
    let text = r#"graph "g" (%x: f32[14]) {
  %y: f32[14] = add (%x, %x)
  return %y
}
"#;
    let mut g = parse(text).unwrap();
    let x = g.inputs[0];
    g.node_mut(x).op = Op::Input {
        default: Some(Tensor::from_vec(&[14], all.clone()).unwrap()),
    };
    let printed = print(&g);
    assert!(printed.contains(
        "= f32[14] [0.1, -0.0, 0.0, NaN, inf, -inf, 1e-45, 3.4028235e38, 1.1754944e-38, 1e20, 16777216.0, -1.5e-7, NaN(0xffc00000), NaN(0x7fc00001)]"
    ), "{printed}");
    let back = parse(&printed).unwrap();
    assert!(back == g);
    let Op::Input { default: Some(t) } = &back.node(back.inputs[0]).op else {
        panic!()
    };
    let bits: Vec<u32> = t
        .as_array::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(bits, all.iter().map(|v| v.to_bits()).collect::<Vec<_>>());

    // Attribute floats: compared by bits, since `Attr` equality treats NaN as unequal.
    for v in all {
        let mut g =
            parse("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = elu (%x)\n  return %y\n}\n").unwrap();
        let id = g.node_ids()[1];
        g.node_mut(id).op = Op::Elu { alpha: v };
        let back = parse(&print(&g)).unwrap();
        let Op::Elu { alpha } = back.node(back.node_ids()[1]).op else {
            panic!()
        };
        assert_eq!(
            alpha.to_bits(),
            v.to_bits(),
            "{v:?} printed as {}",
            print(&g)
        );
    }
    // A float attribute always reads as a float, an int as an int.
    let g = roundtrip(
        "graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = elu {alpha: 2.0} (%x)\n  return %y\n}\n",
    );
    assert_eq!(body_ops(&g)[0], &Op::Elu { alpha: 2.0 });
}

#[test]
fn every_dtype_round_trips() {
    let h = |v: f32| f16::from_f32(v);
    let b = |v: f32| bf16::from_f32(v);
    let tensors = vec![
        Tensor::from_vec(&[3], vec![0.1f64, -0.0, f64::NAN]).unwrap(),
        Tensor::from_vec(
            &[5],
            vec![h(0.1), h(-0.0), h(65504.0), h(6e-8), f16::from_bits(0xfe01)],
        )
        .unwrap(),
        Tensor::from_vec(&[3], vec![b(0.1), b(-1e38), bf16::from_bits(0xffc1)]).unwrap(),
        Tensor::from_vec(&[2], vec![i8::MIN, i8::MAX]).unwrap(),
        Tensor::from_vec(&[2], vec![i16::MIN, i16::MAX]).unwrap(),
        Tensor::from_vec(&[2], vec![i32::MIN, i32::MAX]).unwrap(),
        Tensor::from_vec(&[2], vec![i64::MIN, i64::MAX]).unwrap(),
        Tensor::from_vec(&[2], vec![0u8, u8::MAX]).unwrap(),
        Tensor::from_vec(&[1], vec![u16::MAX]).unwrap(),
        Tensor::from_vec(&[1], vec![u32::MAX]).unwrap(),
        Tensor::from_vec(&[2, 1], vec![0u64, u64::MAX]).unwrap(),
        Tensor::from_vec(&[2, 2], vec![true, false, false, true]).unwrap(),
        Tensor::from_vec(
            &[3],
            vec!["".to_string(), "a \"b\"\n".into(), "ü\u{7f}".into()],
        )
        .unwrap(),
        Tensor::scalar(7i32),
        Tensor::from_vec(&[0, 3], Vec::<f32>::new()).unwrap(),
    ];
    let mut g = Graph::new("dtypes");
    let mut prev = None;
    for (i, t) in tensors.iter().enumerate() {
        let id = g.add_node(Node {
            name: String::new(),
            op: Op::Constant { value: t.clone() },
            inputs: vec![],
            outputs: vec![ValueInfo {
                name: format!("c{i}"),
                ty: TypeInfo {
                    dtype: t.dtype(),
                    shape: Shape::known(t.shape()),
                },
            }],
        });
        prev = Some(id);
    }
    g.outputs.push(GraphOutput {
        name: "c14".into(),
        value: ValueRef {
            node: prev.unwrap(),
            port: 0,
        },
    });
    crate::ir::verify::verify(&g).unwrap();
    let text = print(&g);
    for line in [
        "%c0: f64[3] = constant {value: f64[3] [0.1, -0.0, NaN]}",
        "%c1: f16[5] = constant {value: f16[5] [0.099975586, -0.0, 65504.0, 5.9604645e-8, NaN(0xfe01)]}",
        "%c2: bf16[3] = constant {value: bf16[3] [0.100097656, -9.96921e37, NaN(0xffc1)]}",
        "%c6: i64[2] = constant {value: i64[2] [-9223372036854775808, 9223372036854775807]}",
        "%c10: u64[2,1] = constant {value: u64[2,1] [0, 18446744073709551615]}",
        "%c11: bool[2,2] = constant {value: bool[2,2] [true, false, false, true]}",
        r#"%c12: string[3] = constant {value: string[3] ["", "a \"b\"\n", "ü\u{7f}"]}"#,
        "%c13: i32[] = constant {value: i32[] [7]}",
        "%c14: f32[0,3] = constant {value: f32[0,3] []}",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    let back = parse(&text).unwrap();
    assert!(back == g);
    assert_eq!(print(&back), text);
}

#[test]
fn large_constants_print_a_digest() {
    let data: Vec<f32> = (0..20).map(|i| i as f32 * 0.5).collect();
    let t = Tensor::from_vec(&[4, 5], data).unwrap();
    let digest = t.digest();
    let mut g = Graph::new("big");
    let w = g.add_node(Node {
        name: String::new(),
        op: Op::Input {
            default: Some(t.clone()),
        },
        inputs: vec![],
        outputs: vec![ValueInfo {
            name: "w".into(),
            ty: ty(DType::F32, &[4, 5]),
        }],
    });
    g.inputs.push(w);
    let c = g.add_node(Node {
        name: String::new(),
        op: Op::Constant {
            value: Tensor::from_vec(&[17], (0..17i64).collect()).unwrap(),
        },
        inputs: vec![],
        outputs: vec![ValueInfo {
            name: "c".into(),
            ty: ty(DType::I64, &[17]),
        }],
    });
    g.outputs.push(GraphOutput {
        name: "w".into(),
        value: ValueRef { node: w, port: 0 },
    });
    g.outputs.push(GraphOutput {
        name: "c".into(),
        value: ValueRef { node: c, port: 0 },
    });
    let text = print(&g);
    let head = format!("graph \"big\" (%w: f32[4,5] = f32[4,5] #{digest:016x} [0.0, 0.5, 1.0, 1.5, ... 20 values]) {{\n");
    assert!(text.starts_with(&head), "{text}");
    assert_eq!(
        err(&text),
        format!("1:29: constant #{digest:016x} has no data; use parse_with_constants")
    );
    let map = constants(&g);
    assert_eq!(map.len(), 2);
    assert!(parse_with_constants(&text, &map).unwrap() == g);
    // The full print needs no map.
    assert!(parse(&print_full(&g)).unwrap() == g);
    // A map entry of another type is rejected.
    let mut wrong = map.clone();
    wrong.insert(digest, Tensor::zeros(DType::F32, &[20]));
    assert_eq!(
        parse_with_constants(&text, &wrong).unwrap_err().to_string(),
        format!("1:29: constant #{digest:016x} is f32[20] in the constants map, not f32[4,5]")
    );
    assert_eq!(
        parse_with_constants(&text, &HashMap::new())
            .unwrap_err()
            .to_string(),
        format!("1:29: constant #{digest:016x} is not in the constants map")
    );
}

#[test]
fn constants_collects_subgraph_tensors() {
    let g = parse(
        r#"graph "g" (%c: bool[]) {
  %y: i64[1] = if {
    then_branch: graph "t" () {
      %k: i64[1] = constant {value: i64[1] [3]}
      return %k
    },
    else_branch: graph "e" () {
      %k: i64[1] = constant {value: i64[1] [4]}
      return %k
    }
  } (%c)
  return %y
}
"#,
    )
    .unwrap();
    let map = constants(&g);
    let three = Tensor::from_vec(&[1], vec![3i64]).unwrap();
    assert_eq!(map.len(), 2);
    assert_eq!(map.get(&three.digest()), Some(&three));
}

#[test]
fn parse_errors_are_exact() {
    let cases: &[(&str, &str)] = &[
        ("", "1:1: expected 'graph', found end of input"),
        ("graph main () {}", "1:7: expected a string, found 'main'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = frobnicate (%x)\n  return %y\n}", "2:16: unknown op 'frobnicate'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = Relu (%x)\n  return %y\n}", "2:16: unknown op 'Relu' (the text format spells it 'relu')"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = relu {alpha: 1.0} (%x)\n  return %y\n}", "2:22: unknown attribute 'alpha' for op 'relu'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = elu {alpha: 1.0, alpha: 2.0} (%x)\n  return %y\n}", "2:33: duplicate attribute 'alpha'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = concat (%x)\n  return %y\n}", "2:16: op 'concat': missing required attribute 'axis'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = concat {axis: \"a\"} (%x)\n  return %y\n}", "2:16: op 'concat': attribute 'axis': expected int, got string"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = relu (%z)\n  return %y\n}", "2:22: undefined value %z"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = relu (%x)\n  return %\"a b\"\n}", "3:10: undefined value %\"a b\""),
        ("graph \"g\" (%x: f32[1]) {\n  %x: f32[1] = relu (%x)\n  return %x\n}", "2:3: duplicate value name %x (first defined at 1:12)"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1], %y: f32[1] = split (%x)\n  return %y\n}", "2:15: duplicate value name %y (first defined at 2:3)"),
        ("graph \"g\" (%x: f33[1]) {\n  return %x\n}", "1:16: unknown element type 'f33'"),
        ("graph \"g\" (%x: f32[1,) {\n  return %x\n}", "1:22: expected a dimension, found ')'"),
        ("graph \"g\" (%x: f32) {\n  return %x\n}", "1:19: expected '[', found ')'"),
        ("graph \"g\" (%x:f32[1]) {\n  return %x\n}", "1:18: expected ':', found '[' (a value name may contain ':', so put a space after it)"),
        ("graph \"g\" (%x f32[1]) {\n  return %x\n}", "1:15: expected ':', found 'f32'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = input\n  return %y\n}", "2:16: input nodes are declared in the graph header"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[2] = constant {value: f32[1] [1.0]}\n  return %y\n}", "2:3: constant of type f32[1] defines a value of type f32[2]"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[2] = constant {value: f32[2] [1.0]}\n  return %y\n}", "2:33: tensor f32[2] needs 2 values, found 1"),
        ("graph \"g\" (%x: u8[2] = u8[2] [1, 256]) {\n  return %x\n}", "1:34: value 256 out of range for u8"),
        ("graph \"g\" (%x: f32[2] = i64[2] [1, 2]) {\n  return %x\n}", "1:25: default of type i64[2] does not fit the input type f32[2]"),
        ("graph \"g\" (%x: bool[1] = bool[1] [1]) {\n  return %x\n}", "1:35: expected true or false, found '1'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = elu {alpha: nearest} (%x)\n  return %y\n}", "2:28: unexpected 'nearest' in an attribute value (strings are quoted)"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = transpose {perm: [1, \"a\"]} (%x)\n  return %y\n}", "2:33: a list mixes strings and numbers"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = relu (%x, 3)\n  return %y\n}", "2:26: expected a value or '_', found '3'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = relu (%x)\n}", "3:1: expected a node or 'return', found '}'"),
        ("graph \"g\" (%x: f32[1]) {\n  return %x\n} extra", "3:3: expected end of input, found 'extra'"),
        ("graph \"g\" (%x: f32[1]) {\n  return %x", "2:12: expected '}', found end of input"),
        ("graph \"g\\q\" () {\n  return\n}", "1:9: unknown escape '\\q'"),
        ("graph \"g () {\n  return\n}", "1:7: unterminated string"),
        ("graph \"g\" (%x: f32[99999999999999999999]) {\n  return %x\n}", "1:20: expected a dimension size, found '99999999999999999999'"),
        ("graph \"g\" (%x: f32[2] = f32[2] #12 [... 2 values]) {\n  return %x\n}", "1:33: expected 16 hex digits after '#', found '12'"),
        ("graph \"g\" (%x: f32[2] = f32[2] #0123456789abcdef [1.0, ... 3 values]) {\n  return %x\n}", "1:60: tensor f32[2] has 2 values, not 3"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = elu {alpha: 1.2.3} (%x)\n  return %y\n}", "2:28: expected a number, found '1.2.3'"),
        ("graph \"g\" (%x: f32[1]) {\n  %y: f32[1] = gather {axis: 99999999999999999999} (%x)\n  return %y\n}", "2:30: integer 99999999999999999999 out of range"),
    ];
    let mut bad = vec![];
    for (text, want) in cases {
        if &err(text) != want {
            bad.push(format!("{text:?}\n  got  {}\n  want {want}", err(text)));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let mut text = String::new();
    for _ in 0..200 {
        text.push_str("graph \"g\" (%c: bool[]) { %y: f32[1] = if {then_branch: ");
    }
    let e = err(&text);
    assert!(e.ends_with("subgraphs nested deeper than 64 levels"), "{e}");
}

#[test]
fn mangled_input_never_panics() {
    let text = r#"graph "main" (%c: bool[], %x: f32[2,N] = f32[2,1] [1.5, NaN(0xffc00000)]) {
  %k: string[2] = constant {value: string[2] ["a\u{1}", "b"]}
  %y: f32[2,N] = if {
    then_branch: graph "then" (%x: f32[2,N]) {
      %y: f32[..] = leaky_relu {alpha: -0.0} (%x) @"n\t1"
      return %y as "q"
    },
    else_branch: graph "else" (%x: f32[2,N]) {
      return %x
    }
  } (%c, %x)
  %a: f32[..], %"": f32[..] = split {axis: -1, num_outputs: 2} (%y, _)
  return %a
}
"#;
    roundtrip(text);
    let chars: Vec<char> = text.chars().collect();
    for cut in 0..chars.len() {
        let prefix: String = chars[..cut].iter().collect();
        let _ = parse(&prefix);
        let without: String = chars
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != cut)
            .map(|(_, c)| c)
            .collect();
        let _ = parse(&without);
        for sub in ['%', '"', '\\', '[', '#', '9', '-', '.', 'é', '}'] {
            let mut changed = chars.clone();
            changed[cut] = sub;
            let changed: String = changed.into_iter().collect();
            if let Ok(g) = parse(&changed) {
                // Whatever parses is valid and prints stably.
                crate::ir::verify::verify(&g).unwrap();
                assert!(parse(&print(&g)).unwrap() == g);
            }
        }
    }
}

/// Random token soups and random edits of a valid text: no panics, and whatever parses is
/// valid and round-trips.
#[test]
fn token_soup_never_panics() {
    let vocab = [
        "graph",
        "\"g\"",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "%x",
        "%y",
        "%\"",
        ":",
        ",",
        "=",
        "f32",
        "i64",
        "bool",
        "string",
        "[..]",
        "[]",
        "1",
        "-1",
        "0.5",
        "NaN",
        "NaN(0x",
        "inf",
        "#0123456789abcdef",
        "...",
        "values",
        "return",
        "as",
        "relu",
        "if",
        "then_branch",
        "constant",
        "value",
        "@n",
        "_",
        "?",
        "N",
        "\\",
        "\n",
        " ",
        ";",
        "\"\\u{",
        "1e5",
        "f16",
        "add",
        "split",
        "axis",
        "loop",
        "body",
    ];
    let base = "graph \"g\" (%x: f32[2], %c: bool[]) {\n  %y: f32[2] = if {then_branch: graph \"t\" (%x: f32[2]) {\n return %x\n }, else_branch: graph \"e\" (%x: f32[2]) {\n return %x\n }} (%c, %x)\n  %k: f32[2] = constant {value: f32[2] [1.0, NaN]}\n  return %y, %k\n}\n";
    let mut seed: u64 = 12345;
    let mut rnd = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut ok = 0;
    for _ in 0..20000 {
        let mut s = String::new();
        if rnd(2) == 0 {
            for _ in 0..rnd(40) {
                s.push_str(vocab[rnd(vocab.len())]);
                if rnd(2) == 0 {
                    s.push(' ');
                }
            }
        } else {
            s = base.to_string();
            for _ in 0..1 + rnd(3) {
                let mut at = rnd(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                match rnd(3) {
                    0 => s.insert_str(at, vocab[rnd(vocab.len())]),
                    1 => {
                        let mut e = (at + 1 + rnd(8)).min(s.len());
                        while !s.is_char_boundary(e) {
                            e -= 1;
                        }
                        s.replace_range(at..e, "");
                    }
                    _ => {
                        let mut e = (at + 1 + rnd(8)).min(s.len());
                        while !s.is_char_boundary(e) {
                            e -= 1;
                        }
                        s.replace_range(at..e, vocab[rnd(vocab.len())]);
                    }
                }
            }
        }
        if let Ok(g) = parse(&s) {
            ok += 1;
            crate::ir::verify::verify(&g).unwrap();
            let p = print(&g);
            let g2 = parse(&p).unwrap_or_else(|e| panic!("{e}\n{s}\n---\n{p}"));
            assert_eq!(print(&g2), p);
            assert!(g2 == g, "{s}");
        }
    }
    assert!(ok > 50, "only {ok} edits parsed");
}
