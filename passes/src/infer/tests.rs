//! Unit tests of the inference rules (hand-derived expectations) and of `infer_graph`
//! (constant propagation, merging with declared types, subgraphs).

use super::*;
use crate::ir::{Attr, Attrs, GraphOutput, Node, ValueInfo};

/// Parses `f32[2,N,?]` (or `f32[..]`) into a type.
fn t(s: &str) -> TypeInfo {
    let (d, rest) = s.split_once('[').expect("type has a shape");
    let dtype = DType::from_name(d).expect("known dtype");
    let body = rest.strip_suffix(']').expect("closing bracket");
    let shape = if body == ".." {
        Shape::Unranked
    } else if body.is_empty() {
        Shape::Ranked(vec![])
    } else {
        Shape::Ranked(
            body.split(',')
                .map(|x| match x {
                    "?" => Dim::Unknown,
                    x => x
                        .parse()
                        .map(Dim::Known)
                        .unwrap_or_else(|_| Dim::Sym(x.into())),
                })
                .collect(),
        )
    };
    TypeInfo { dtype, shape }
}

fn ints(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).expect("1-D")
}

/// Builds an op from its ONNX name and attributes (defaults applied).
fn op(name: &str, attrs: Vec<(&str, Attr)>) -> Op {
    let mut a = Attrs::new();
    for (k, v) in attrs {
        a.insert(k, v);
    }
    Op::build(name, &mut a)
        .expect("valid attributes")
        .expect("known op")
}

/// An input: a type, with a value when given.
type In = Option<(TypeInfo, Option<Tensor>)>;

fn ty_in(s: &str) -> In {
    Some((t(s), None))
}

fn val_in(v: Tensor) -> In {
    let ty = TypeInfo {
        dtype: v.dtype(),
        shape: Shape::known(v.shape()),
    };
    Some((ty, Some(v)))
}

/// Runs `infer_op` and renders the output types.
fn infer(o: &Op, ins: &[In], n: usize) -> Result<Vec<String>, String> {
    let facts: Vec<Option<Fact<'_>>> = ins
        .iter()
        .map(|i| {
            i.as_ref().map(|(ty, v)| Fact {
                ty,
                value: v.as_ref(),
            })
        })
        .collect();
    infer_op(o, &facts, n).map(|v| v.iter().map(|t| t.to_string()).collect())
}

fn ok1(o: &Op, ins: &[In]) -> String {
    infer(o, ins, 1).expect("inference succeeds").remove(0)
}

#[test]
fn broadcasting_with_symbols() {
    let add = op("Add", vec![]);
    assert_eq!(ok1(&add, &[ty_in("f32[2,3]"), ty_in("f32[3]")]), "f32[2,3]");
    assert_eq!(
        ok1(&add, &[ty_in("f32[N,1]"), ty_in("f32[1,5]")]),
        "f32[N,5]"
    );
    assert_eq!(ok1(&add, &[ty_in("f32[N]"), ty_in("f32[1]")]), "f32[N]");
    assert_eq!(ok1(&add, &[ty_in("f32[N]"), ty_in("f32[N]")]), "f32[N]");
    assert_eq!(ok1(&add, &[ty_in("f32[N]"), ty_in("f32[M]")]), "f32[?]");
    assert_eq!(ok1(&add, &[ty_in("f32[N]"), ty_in("f32[4]")]), "f32[4]");
    assert_eq!(
        ok1(&add, &[ty_in("f32[?,1]"), ty_in("f32[1,0]")]),
        "f32[?,0]"
    );
    assert_eq!(ok1(&add, &[ty_in("f32[]"), ty_in("f32[2,3]")]), "f32[2,3]");
    assert_eq!(ok1(&add, &[ty_in("f32[..]"), ty_in("f32[2,3]")]), "f32[..]");
    assert_eq!(
        infer(&add, &[ty_in("f32[2,3]"), ty_in("f32[4]")], 1).unwrap_err(),
        "inputs f32[2,3] and f32[4] do not broadcast"
    );
    assert_eq!(
        infer(&add, &[ty_in("f32[2,3]"), ty_in("i64[3]")], 1).unwrap_err(),
        "inputs f32[2,3] and i64[3] have different element types"
    );
    let sum = op("Sum", vec![]);
    assert_eq!(
        ok1(
            &sum,
            &[ty_in("f64[3,1,1]"), ty_in("f64[4,1]"), ty_in("f64[5]")]
        ),
        "f64[3,4,5]"
    );
    assert_eq!(
        ok1(&op("Less", vec![]), &[ty_in("i32[2,1]"), ty_in("i32[4]")]),
        "bool[2,4]"
    );
    assert_eq!(
        ok1(
            &op("Where", vec![]),
            &[ty_in("bool[2,1]"), ty_in("u8[3]"), ty_in("u8[]")]
        ),
        "u8[2,3]"
    );
    assert_eq!(
        ok1(&op("Pow", vec![]), &[ty_in("f32[2]"), ty_in("i64[]")]),
        "f32[2]"
    );
    assert_eq!(ok1(&op("IsNaN", vec![]), &[ty_in("f16[N,2]")]), "bool[N,2]");
    assert_eq!(
        ok1(
            &op("Cast", vec![("to", Attr::Int(7))]),
            &[ty_in("f32[N,2]")]
        ),
        "i64[N,2]"
    );
}

fn conv(attrs: Vec<(&str, Attr)>, x: &str, w: &str) -> Result<Vec<String>, String> {
    infer(&op("Conv", attrs), &[ty_in(x), ty_in(w)], 1)
}

#[test]
fn conv_output_sizes() {
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    // (32 + 2 - 3) / 2 + 1 = 16
    let r = conv(
        vec![("pads", ints(&[1, 1, 1, 1])), ("strides", ints(&[2, 2]))],
        "f32[N,3,32,32]",
        "f32[16,3,3,3]",
    );
    assert_eq!(r.unwrap(), ["f32[N,16,16,16]"]);
    // dilation 2: window 5, 32 - 5 + 1 = 28; asymmetric pads on the second axis: 32+3-5+1 = 31
    let r = conv(
        vec![("dilations", ints(&[2, 2])), ("pads", ints(&[0, 1, 0, 2]))],
        "f32[1,3,32,32]",
        "f32[8,3,3,3]",
    );
    assert_eq!(r.unwrap(), ["f32[1,8,28,31]"]);
    // SAME_UPPER: ceil(33 / 2) = 17; VALID: (33 - 3) / 2 + 1 = 16
    let same = vec![
        ("auto_pad", Attr::Str("SAME_UPPER".into())),
        ("strides", ints(&[2])),
    ];
    assert_eq!(
        conv(same, "f32[1,4,33]", "f32[2,4,3]").unwrap(),
        ["f32[1,2,17]"]
    );
    let valid = vec![
        ("auto_pad", Attr::Str("VALID".into())),
        ("strides", ints(&[2])),
    ];
    assert_eq!(
        conv(valid, "f32[1,4,33]", "f32[2,4,3]").unwrap(),
        ["f32[1,2,16]"]
    );
    // Groups: 6 channels, 3 per group, 2 groups.
    assert_eq!(
        conv(
            vec![("group", Attr::Int(2))],
            "f32[1,6,5,5]",
            "f32[4,3,1,1]"
        )
        .unwrap(),
        ["f32[1,4,5,5]"]
    );
    assert_eq!(
        conv(vec![], "f32[1,6,5,5]", "f32[4,3,1,1]").unwrap_err(),
        "input f32[1,6,5,5] has 6 channels but weights f32[4,3,1,1] expect 3 (group 1)"
    );
    // Unknown spatial dims stay unknown; explicit kernel_shape with unknown weight dims.
    assert_eq!(
        conv(vec![], "f32[1,3,H,8]", "f32[4,3,3,3]").unwrap(),
        ["f32[1,4,?,6]"]
    );
    let ks = vec![("kernel_shape", ints(&[3, 3]))];
    assert_eq!(
        conv(ks, "f32[1,3,8,8]", "f32[4,3,?,?]").unwrap(),
        ["f32[1,4,6,6]"]
    );
    assert!(conv(vec![], "f32[1,3,2,2]", "f32[4,3,3,3]")
        .unwrap_err()
        .contains("smaller than the window"));
    assert_eq!(
        ok1(
            &op("ConvInteger", vec![]),
            &[ty_in("u8[1,1,3,3]"), ty_in("u8[1,1,2,2]")]
        ),
        "i32[1,1,2,2]"
    );
}

#[test]
fn pool_output_sizes() {
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let pool = |extra: Vec<(&str, Attr)>, x: &str| {
        let mut a = vec![("kernel_shape", ints(&[3])), ("strides", ints(&[2]))];
        a.extend(extra);
        infer(&op("MaxPool", a), &[ty_in(x)], 2).unwrap()
    };
    // floor((32 - 3) / 2) + 1 = 15; ceil: ceil(29 / 2) + 1 = 16, last window starts at 30 < 32.
    assert_eq!(pool(vec![], "f32[1,1,32]"), ["f32[1,1,15]", "i64[1,1,15]"]);
    assert_eq!(
        pool(vec![("ceil_mode", Attr::Int(1))], "f32[1,1,32]")[0],
        "f32[1,1,16]"
    );
    // k2 s2 p1 on 5 with ceil: ceil((5+2-2)/2)+1 = 4, but the 4th window would start at 6 >=
    // 5 + 1, so 3 (PyTorch's rule, also ONNX's reference).
    let a = vec![
        ("kernel_shape", ints(&[2])),
        ("strides", ints(&[2])),
        ("pads", ints(&[1, 1])),
        ("ceil_mode", Attr::Int(1)),
    ];
    assert_eq!(
        ok1(&op("AveragePool", a), &[ty_in("f32[1,1,5]")]),
        "f32[1,1,3]"
    );
    let same = vec![("auto_pad", Attr::Str("SAME_LOWER".into()))];
    assert_eq!(pool(same, "f32[N,C,7]")[0], "f32[N,C,4]");
    assert_eq!(
        ok1(&op("GlobalAveragePool", vec![]), &[ty_in("f32[N,8,7,7]")]),
        "f32[N,8,1,1]"
    );
    let bad = infer(
        &op("MaxPool", vec![("kernel_shape", ints(&[3, 3]))]),
        &[ty_in("f32[1,1,4]")],
        1,
    );
    assert_eq!(
        bad.unwrap_err(),
        "kernel shape [3, 3] should have 1 entries"
    );
}

#[test]
fn conv_transpose_sizes() {
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    // 2 * (3 - 1) + 1 + (3 - 1) + 1 - 1 - 1 = 5... see each: stride*(in-1) + out_pad + k - pads
    let a = vec![
        ("strides", ints(&[2, 2])),
        ("pads", ints(&[1, 1, 1, 1])),
        ("output_padding", ints(&[1, 0])),
    ];
    // H: 2*2 + 1 + 3 - 2 = 6; W: 2*2 + 0 + 3 - 2 = 5
    assert_eq!(
        ok1(
            &op("ConvTranspose", a),
            &[ty_in("f32[1,4,3,3]"), ty_in("f32[4,2,3,3]")]
        ),
        "f32[1,2,6,5]"
    );
    let g = vec![("group", Attr::Int(2)), ("output_shape", ints(&[10, 8]))];
    assert_eq!(
        ok1(
            &op("ConvTranspose", g),
            &[ty_in("f32[1,4,3,3]"), ty_in("f32[4,2,3,3]")]
        ),
        "f32[1,4,10,8]"
    );
}

#[test]
fn reshape_zero_and_minus_one() {
    let r = op("Reshape", vec![]);
    assert_eq!(
        ok1(&r, &[ty_in("f32[2,3,4]"), val_in(ints(&[0, -1]))]),
        "f32[2,12]"
    );
    assert_eq!(
        ok1(&r, &[ty_in("f32[N,3,4]"), val_in(ints(&[0, -1]))]),
        "f32[N,12]"
    );
    assert_eq!(
        ok1(&r, &[ty_in("f32[N,12]"), val_in(ints(&[-1, 3, 4]))]),
        "f32[N,3,4]"
    );
    assert_eq!(ok1(&r, &[ty_in("f32[N,M]"), val_in(ints(&[-1]))]), "f32[?]");
    assert_eq!(
        ok1(&r, &[ty_in("f32[2,?]"), val_in(ints(&[-1, 2]))]),
        "f32[?,2]"
    );
    // 0 copies dim 1 here (3), and -1 next to a 0-sized dim is ambiguous.
    assert!(infer(&r, &[ty_in("f32[0,3]"), val_in(ints(&[3, 0]))], 1).is_err());
    assert_eq!(
        ok1(&r, &[ty_in("f32[0,3]"), val_in(ints(&[0, -1]))]),
        "f32[0,?]"
    );
    let az = op("Reshape", vec![("allowzero", Attr::Int(1))]);
    assert_eq!(
        ok1(&az, &[ty_in("f32[0,3]"), val_in(ints(&[3, 0]))]),
        "f32[3,0]"
    );
    // Unknown target: the rank comes from the shape input's length.
    assert_eq!(ok1(&r, &[ty_in("f32[6]"), ty_in("i64[3]")]), "f32[?,?,?]");
    assert_eq!(ok1(&r, &[ty_in("f32[6]"), ty_in("i64[?]")]), "f32[..]");
    assert_eq!(
        infer(&r, &[ty_in("f32[2,3]"), val_in(ints(&[4, -1]))], 1).unwrap_err(),
        "cannot reshape f32[2,3] to [4, -1]"
    );
    assert_eq!(
        infer(&r, &[ty_in("f32[2,3]"), val_in(ints(&[4]))], 1).unwrap_err(),
        "cannot reshape f32[2,3] to [4]"
    );
    assert!(infer(&r, &[ty_in("f32[6]"), val_in(ints(&[-1, -1]))], 1)
        .unwrap_err()
        .contains("more than one -1"));
    assert_eq!(
        ok1(&op("Flatten", vec![]), &[ty_in("f32[N,3,4]")]),
        "f32[N,12]"
    );
    assert_eq!(
        ok1(
            &op("Flatten", vec![("axis", Attr::Int(0))]),
            &[ty_in("f32[2,3]")]
        ),
        "f32[1,6]"
    );
    assert_eq!(
        ok1(
            &op("Flatten", vec![("axis", Attr::Int(-1))]),
            &[ty_in("f32[2,3,4]")]
        ),
        "f32[6,4]"
    );
}

#[test]
fn concat_split_slice() {
    let c = op("Concat", vec![("axis", Attr::Int(-1))]);
    assert_eq!(
        ok1(
            &c,
            &[ty_in("f32[N,2]"), ty_in("f32[?,3]"), ty_in("f32[N,0]")]
        ),
        "f32[N,5]"
    );
    assert_eq!(ok1(&c, &[ty_in("f32[N,2]"), ty_in("f32[..]")]), "f32[N,?]");
    assert_eq!(
        infer(&c, &[ty_in("f32[2,3]"), ty_in("f32[2]")], 1).unwrap_err(),
        "Concat inputs differ in rank (f32[2,3] and f32[2])"
    );
    let c0 = op("Concat", vec![("axis", Attr::Int(0))]);
    assert_eq!(
        infer(&c0, &[ty_in("f32[2,3]"), ty_in("f32[2,4]")], 1).unwrap_err(),
        "Concat inputs f32[2,3] and f32[2,4] differ in dim 1"
    );

    let s = op(
        "Split",
        vec![("axis", Attr::Int(1)), ("num_outputs", Attr::Int(3))],
    );
    assert_eq!(
        infer(&s, &[ty_in("f32[2,7]")], 3).unwrap(),
        ["f32[2,3]", "f32[2,3]", "f32[2,1]"]
    );
    let s = op("Split", vec![]);
    assert_eq!(
        infer(&s, &[ty_in("f32[6,N]"), val_in(ints(&[1, 5]))], 2).unwrap(),
        ["f32[1,N]", "f32[5,N]"]
    );
    assert_eq!(
        infer(&s, &[ty_in("f32[6]")], 2).unwrap(),
        ["f32[3]", "f32[3]"]
    );
    assert!(infer(&s, &[ty_in("f32[6]"), val_in(ints(&[1, 4]))], 2)
        .unwrap_err()
        .contains("does not sum"));
    // 5 cannot be cut into 4 chunks of ceil(5/4): unknown rather than an error (dead branches).
    assert_eq!(infer(&s, &[ty_in("i64[5]")], 4).unwrap(), ["i64[?]"; 4]);

    let sl = op("Slice", vec![]);
    let starts = |v: &[i64]| val_in(ints(v));
    // [1:-1] of 10 = 8; step -2 from the end: indices 9,7,5,3,1 = 5
    assert_eq!(
        ok1(&sl, &[ty_in("f32[10,10]"), starts(&[1]), starts(&[-1])]),
        "f32[8,10]"
    );
    assert_eq!(
        ok1(
            &sl,
            &[
                ty_in("f32[10,10]"),
                starts(&[-1]),
                starts(&[i64::MIN]),
                starts(&[1]),
                starts(&[-2])
            ]
        ),
        "f32[10,5]"
    );
    assert_eq!(
        ok1(
            &sl,
            &[
                ty_in("f32[N,10]"),
                starts(&[0, 2]),
                starts(&[i64::MAX, 100]),
                None,
                None
            ]
        ),
        "f32[N,8]"
    );
    assert_eq!(
        ok1(&sl, &[ty_in("f32[N,10]"), starts(&[5]), starts(&[3])]),
        "f32[?,10]"
    );
    assert_eq!(
        ok1(
            &sl,
            &[
                ty_in("f32[4,10]"),
                ty_in("i64[1]"),
                ty_in("i64[1]"),
                starts(&[1])
            ]
        ),
        "f32[4,?]"
    );
    assert!(infer(
        &sl,
        &[
            ty_in("f32[4]"),
            starts(&[0]),
            starts(&[1]),
            None,
            starts(&[0])
        ],
        1
    )
    .is_err());
    assert_eq!(ops::slice_len(5, 0, 5, 2).unwrap(), 3);
    assert_eq!(ops::slice_len(5, 10, -10, -1).unwrap(), 5);
    assert_eq!(ops::slice_len(0, 0, 1, 1).unwrap(), 0);
}

#[test]
fn squeeze_unsqueeze_transpose_gather() {
    let sq = op("Squeeze", vec![]);
    assert_eq!(
        ok1(&sq, &[ty_in("f32[1,N,1]"), val_in(ints(&[-1, 0]))]),
        "f32[N]"
    );
    assert_eq!(ok1(&sq, &[ty_in("f32[1,3,1]")]), "f32[3]");
    assert_eq!(ok1(&sq, &[ty_in("f32[1,N]")]), "f32[..]");
    assert_eq!(ok1(&sq, &[ty_in("f32[1,N]"), ty_in("i64[1]")]), "f32[?]");
    assert_eq!(
        infer(&sq, &[ty_in("f32[2,3]"), val_in(ints(&[1]))], 1).unwrap_err(),
        "cannot squeeze axis 1 of size 3 in f32[2,3]"
    );
    let un = op("Unsqueeze", vec![]);
    assert_eq!(
        ok1(&un, &[ty_in("f32[N,3]"), val_in(ints(&[-1, 0]))]),
        "f32[1,N,3,1]"
    );
    assert_eq!(ok1(&un, &[ty_in("i64[]"), val_in(ints(&[0]))]), "i64[1]");
    assert!(infer(&un, &[ty_in("f32[3]"), val_in(ints(&[0, 0]))], 1)
        .unwrap_err()
        .contains("repeated"));
    assert_eq!(
        ok1(&op("Transpose", vec![]), &[ty_in("f32[A,B,C]")]),
        "f32[C,B,A]"
    );
    let tp = op("Transpose", vec![("perm", Attr::Ints(vec![0, 2, 1]))]);
    assert_eq!(ok1(&tp, &[ty_in("f32[1,2,3]")]), "f32[1,3,2]");
    let g = op("Gather", vec![("axis", Attr::Int(1))]);
    assert_eq!(
        ok1(&g, &[ty_in("f32[N,5,6]"), ty_in("i64[2,3]")]),
        "f32[N,2,3,6]"
    );
    assert_eq!(ok1(&g, &[ty_in("f32[5,6]"), ty_in("i32[]")]), "f32[5]");
    assert_eq!(
        ok1(
            &op("GatherND", vec![]),
            &[ty_in("f32[2,3,4]"), ty_in("i64[5,2]")]
        ),
        "f32[5,4]"
    );
    let gb = op("GatherND", vec![("batch_dims", Attr::Int(1))]);
    assert_eq!(
        ok1(&gb, &[ty_in("f32[2,3,4]"), ty_in("i64[2,1]")]),
        "f32[2,4]"
    );
}

#[test]
fn matmul_gemm_einsum() {
    let mm = op("MatMul", vec![]);
    assert_eq!(
        ok1(&mm, &[ty_in("f32[B,1,N,K]"), ty_in("f32[5,K,M]")]),
        "f32[B,5,N,M]"
    );
    assert_eq!(ok1(&mm, &[ty_in("f32[3]"), ty_in("f32[3,4]")]), "f32[4]");
    assert_eq!(ok1(&mm, &[ty_in("f32[2,3]"), ty_in("f32[3]")]), "f32[2]");
    assert_eq!(ok1(&mm, &[ty_in("f32[3]"), ty_in("f32[3]")]), "f32[]");
    assert_eq!(
        infer(&mm, &[ty_in("f32[2,3]"), ty_in("f32[4,5]")], 1).unwrap_err(),
        "MatMul operands f32[2,3] and f32[4,5] differ in the inner dim (3 vs 4)"
    );
    let gemm = op("Gemm", vec![("transA", Attr::Int(1))]);
    // The op table spells the fields trans_a/trans_b; the ONNX names go through the importer.
    let gemm = match gemm {
        Op::Gemm {
            alpha,
            beta,
            trans_b,
            ..
        } => Op::Gemm {
            alpha,
            beta,
            trans_a: 1,
            trans_b,
        },
        o => o,
    };
    assert_eq!(
        ok1(
            &gemm,
            &[ty_in("f32[4,N]"), ty_in("f32[4,5]"), ty_in("f32[5]")]
        ),
        "f32[N,5]"
    );
    assert!(infer(
        &gemm,
        &[ty_in("f32[4,2]"), ty_in("f32[4,5]"), ty_in("f32[3]")],
        1
    )
    .unwrap_err()
    .contains("bias"));
    let e =
        |eq: &str, ins: &[In]| ok1(&op("Einsum", vec![("equation", Attr::Str(eq.into()))]), ins);
    assert_eq!(
        e("ij,jk->ik", &[ty_in("f32[2,3]"), ty_in("f32[3,4]")]),
        "f32[2,4]"
    );
    assert_eq!(
        e("ij,jk", &[ty_in("f32[2,3]"), ty_in("f32[3,4]")]),
        "f32[2,4]"
    );
    assert_eq!(e("ba", &[ty_in("f32[2,3]")]), "f32[3,2]");
    assert_eq!(
        e(
            "...ij,...jk->...ik",
            &[ty_in("f32[B,2,3]"), ty_in("f32[1,3,4]")]
        ),
        "f32[B,2,4]"
    );
    assert_eq!(e("ii->", &[ty_in("f32[3,3]")]), "f32[]");
}

#[test]
fn reductions() {
    let rs = op("ReduceSum", vec![]);
    assert_eq!(
        ok1(&rs, &[ty_in("f32[N,3,4]"), val_in(ints(&[-1]))]),
        "f32[N,3,1]"
    );
    assert_eq!(ok1(&rs, &[ty_in("f32[N,3,4]")]), "f32[1,1,1]");
    let nk = op("ReduceMean", vec![("keepdims", Attr::Int(0))]);
    assert_eq!(
        ok1(&nk, &[ty_in("f32[N,3,4]"), val_in(ints(&[1, 2]))]),
        "f32[N]"
    );
    assert_eq!(ok1(&nk, &[ty_in("f32[N,3,4]"), ty_in("i64[2]")]), "f32[?]");
    assert_eq!(ok1(&nk, &[ty_in("f32[N,3,4]"), val_in(ints(&[]))]), "f32[]");
    let noop = op("ReduceMax", vec![("noop_with_empty_axes", Attr::Int(1))]);
    assert_eq!(
        ok1(&noop, &[ty_in("f32[2,3]"), val_in(ints(&[]))]),
        "f32[2,3]"
    );
    let am = op(
        "ArgMax",
        vec![("axis", Attr::Int(-1)), ("keepdims", Attr::Int(0))],
    );
    assert_eq!(ok1(&am, &[ty_in("f32[2,3]")]), "i64[2]");
    assert!(infer(&rs, &[ty_in("f32[2]"), val_in(ints(&[1]))], 1)
        .unwrap_err()
        .contains("out of range"));
}

#[test]
fn shape_producing_ops() {
    let i = |v: i64| val_in(Tensor::scalar(v));
    assert_eq!(ok1(&op("Range", vec![]), &[i(1), i(10), i(3)]), "i64[3]");
    assert_eq!(ok1(&op("Range", vec![]), &[i(10), i(1), i(-4)]), "i64[3]");
    assert_eq!(ok1(&op("Range", vec![]), &[i(10), i(1), i(4)]), "i64[0]");
    let f = |v: f32| val_in(Tensor::scalar(v));
    assert_eq!(
        ok1(&op("Range", vec![]), &[f(0.0), f(1.0), f(0.3)]),
        "f32[4]"
    );
    assert_eq!(
        ok1(&op("Range", vec![]), &[ty_in("i32[]"), i(1), i(1)]),
        "i32[?]"
    );
    let cos = op("ConstantOfShape", vec![]);
    assert_eq!(ok1(&cos, &[val_in(ints(&[2, 3]))]), "f32[2,3]");
    assert_eq!(ok1(&cos, &[ty_in("i64[2]")]), "f32[?,?]");
    let cos_i = op("ConstantOfShape", vec![("value", Attr::Tensor(ints(&[7])))]);
    assert_eq!(
        ok1(&cos_i, &[val_in(ints(&[1_000_000_000_000]))]),
        "i64[1000000000000]"
    );
    assert_eq!(
        ok1(
            &op("Expand", vec![]),
            &[ty_in("f32[3,1]"), val_in(ints(&[2, 1, 4]))]
        ),
        "f32[2,3,4]"
    );
    assert_eq!(
        ok1(&op("Expand", vec![]), &[ty_in("f32[3,1]"), ty_in("i64[3]")]),
        "f32[?,3,?]"
    );
    assert!(infer(
        &op("Expand", vec![]),
        &[ty_in("f32[3]"), val_in(ints(&[4]))],
        1
    )
    .unwrap_err()
    .contains("cannot expand"));
    assert_eq!(
        ok1(
            &op("Tile", vec![]),
            &[ty_in("f32[N,3]"), val_in(ints(&[1, 2]))]
        ),
        "f32[N,6]"
    );
    assert_eq!(
        ok1(
            &op("Pad", vec![]),
            &[ty_in("f32[N,3]"), val_in(ints(&[0, 1, 0, -1]))]
        ),
        "f32[N,3]"
    );
    assert_eq!(
        ok1(
            &op("Pad", vec![]),
            &[
                ty_in("f32[N,3]"),
                val_in(ints(&[2, 3])),
                None,
                val_in(ints(&[-1]))
            ]
        ),
        "f32[N,8]"
    );
    let tk = op("TopK", vec![]);
    assert_eq!(
        infer(&tk, &[ty_in("f32[N,10]"), val_in(ints(&[3]))], 2).unwrap(),
        ["f32[N,3]", "i64[N,3]"]
    );
    assert!(infer(&tk, &[ty_in("f32[2,2]"), val_in(ints(&[3]))], 2)
        .unwrap_err()
        .contains("larger"));
    let oh = op("OneHot", vec![("axis", Attr::Int(1))]);
    assert_eq!(
        ok1(
            &oh,
            &[
                ty_in("i64[N,3]"),
                val_in(Tensor::scalar(5f32)),
                ty_in("f32[2]")
            ]
        ),
        "f32[N,5,3]"
    );
    let nz = Tensor::from_vec(&[2, 2], vec![1i32, 0, 3, 0]).unwrap();
    assert_eq!(ok1(&op("NonZero", vec![]), &[val_in(nz)]), "i64[2,2]");
    assert_eq!(
        ok1(&op("NonZero", vec![]), &[ty_in("f32[N,2,2]")]),
        "i64[3,?]"
    );
    assert_eq!(
        ok1(
            &op("Compress", vec![("axis", Attr::Int(0))]),
            &[ty_in("f32[3,2]"), ty_in("bool[3]")]
        ),
        "f32[?,2]"
    );
    let u = infer(&op("Unique", vec![]), &[ty_in("f32[2,3]")], 4).unwrap();
    assert_eq!(u, ["f32[?]", "i64[?]", "i64[6]", "i64[?]"]);
    assert_eq!(
        ok1(
            &op("Shape", vec![("start", Attr::Int(-2))]),
            &[ty_in("f32[N,3,4]")]
        ),
        "i64[2]"
    );
    assert_eq!(ok1(&op("Size", vec![]), &[ty_in("f32[N,3,4]")]), "i64[]");
    let d2s = op("DepthToSpace", vec![("blocksize", Attr::Int(2))]);
    assert_eq!(ok1(&d2s, &[ty_in("f32[1,8,3,N]")]), "f32[1,2,6,?]");
    let s2d = op("SpaceToDepth", vec![("blocksize", Attr::Int(2))]);
    assert!(infer(&s2d, &[ty_in("f32[1,8,3,4]")], 1)
        .unwrap_err()
        .contains("not divisible"));
}

#[test]
fn nn_ops() {
    let rz = op("Resize", vec![]);
    let sc = Tensor::from_vec(&[4], vec![1f32, 1.0, 2.0, 1.5]).unwrap();
    assert_eq!(
        ok1(&rz, &[ty_in("f32[N,3,4,5]"), None, val_in(sc)]),
        "f32[N,3,8,7]"
    );
    assert_eq!(
        ok1(
            &rz,
            &[
                ty_in("f32[N,3,4,5]"),
                None,
                None,
                val_in(ints(&[1, 3, 2, 2]))
            ]
        ),
        "f32[1,3,2,2]"
    );
    assert_eq!(
        ok1(&rz, &[ty_in("f32[N,3,4,5]"), None, None, ty_in("i64[4]")]),
        "f32[?,?,?,?]"
    );
    // not_larger: scale = min(6/4, 6/5) = 1.2 -> round(4.8) = 5, round(6) = 6
    let nl = op(
        "Resize",
        vec![
            ("axes", Attr::Ints(vec![2, 3])),
            ("keep_aspect_ratio_policy", Attr::Str("not_larger".into())),
        ],
    );
    assert_eq!(
        ok1(
            &nl,
            &[ty_in("f32[1,3,4,5]"), None, None, val_in(ints(&[6, 6]))]
        ),
        "f32[1,3,5,6]"
    );
    let lstm = op(
        "LSTM",
        vec![
            ("hidden_size", Attr::Int(7)),
            ("direction", Attr::Str("bidirectional".into())),
        ],
    );
    assert_eq!(
        infer(
            &lstm,
            &[
                ty_in("f32[S,B,4]"),
                ty_in("f32[2,28,4]"),
                ty_in("f32[2,28,7]")
            ],
            3
        )
        .unwrap(),
        ["f32[S,2,B,7]", "f32[2,B,7]", "f32[2,B,7]"]
    );
    let gru = op(
        "GRU",
        vec![("hidden_size", Attr::Int(3)), ("layout", Attr::Int(1))],
    );
    assert_eq!(
        infer(
            &gru,
            &[
                ty_in("f32[B,S,4]"),
                ty_in("f32[1,9,4]"),
                ty_in("f32[1,9,3]")
            ],
            2
        )
        .unwrap(),
        ["f32[B,S,1,3]", "f32[B,1,3]"]
    );
    let ln = op("LayerNormalization", vec![("axis", Attr::Int(1))]);
    assert_eq!(
        infer(&ln, &[ty_in("f16[N,3,4]"), ty_in("f16[3,4]")], 3).unwrap(),
        ["f16[N,3,4]", "f32[N,1,1]", "f32[N,1,1]"]
    );
    let bn = op("BatchNormalization", vec![]);
    let bn_in = [
        ty_in("f32[N,3,4]"),
        ty_in("f32[3]"),
        ty_in("f32[3]"),
        ty_in("f32[3]"),
        ty_in("f32[3]"),
    ];
    assert_eq!(infer(&bn, &bn_in, 1).unwrap(), ["f32[N,3,4]"]);
    assert_eq!(
        infer(&op("Dropout", vec![]), &[ty_in("f32[N]")], 2).unwrap(),
        ["f32[N]", "bool[N]"]
    );
    let sce = op(
        "SoftmaxCrossEntropyLoss",
        vec![("reduction", Attr::Str("none".into()))],
    );
    assert_eq!(
        infer(&sce, &[ty_in("f32[N,5,D]"), ty_in("i64[N,D]")], 2).unwrap(),
        ["f32[N,D]", "f32[N,5,D]"]
    );
    let att = op("Attention", vec![]);
    let r = infer(
        &att,
        &[
            ty_in("f32[2,4,5,8]"),
            ty_in("f32[2,2,6,8]"),
            ty_in("f32[2,2,6,16]"),
        ],
        1,
    )
    .unwrap();
    assert_eq!(r, ["f32[2,4,5,16]"]);
    let att3 = op(
        "Attention",
        vec![
            ("q_num_heads", Attr::Int(4)),
            ("kv_num_heads", Attr::Int(2)),
        ],
    );
    let r = infer(
        &att3,
        &[
            ty_in("f32[2,5,32]"),
            ty_in("f32[2,6,16]"),
            ty_in("f32[2,6,24]"),
        ],
        1,
    )
    .unwrap();
    assert_eq!(r, ["f32[2,5,48]"]);
    let hann = op("HannWindow", vec![]);
    assert_eq!(ok1(&hann, &[val_in(Tensor::scalar(10i32))]), "f32[10]");
    let dft = op("DFT", vec![("onesided", Attr::Int(1))]);
    assert_eq!(ok1(&dft, &[ty_in("f32[3,10,1]")]), "f32[3,6,2]");
    // Shapes of the ONNX tests test_dft (axis unknown) and test_dft_irfft.
    assert_eq!(
        ok1(
            &op("DFT", vec![]),
            &[ty_in("f32[1,10,10,1]"), None, ty_in("i64[]")]
        ),
        "f32[1,10,10,2]"
    );
    let irfft = op(
        "DFT",
        vec![("onesided", Attr::Int(1)), ("inverse", Attr::Int(1))],
    );
    assert_eq!(
        ok1(
            &irfft,
            &[ty_in("f32[1,6,10,2]"), None, val_in(Tensor::scalar(1i64))]
        ),
        "f32[1,10,10,1]"
    );
    let q = op("QuantizeLinear", vec![]);
    assert_eq!(
        ok1(&q, &[ty_in("f32[N,3]"), ty_in("f32[]"), ty_in("i8[]")]),
        "i8[N,3]"
    );
    assert_eq!(ok1(&q, &[ty_in("f32[N,3]"), ty_in("f32[]")]), "u8[N,3]");
    let dq = op("DequantizeLinear", vec![]);
    assert_eq!(ok1(&dq, &[ty_in("i8[N,3]"), ty_in("f16[]")]), "f16[N,3]");
    assert_eq!(ok1(&op("Det", vec![]), &[ty_in("f32[N,3,3]")]), "f32[N]");
    assert_eq!(
        ok1(
            &op("GridSample", vec![]),
            &[ty_in("f32[N,C,4,4]"), ty_in("f32[N,6,7,2]")]
        ),
        "f32[N,C,6,7]"
    );
    let ag = op("AffineGrid", vec![]);
    assert_eq!(
        ok1(&ag, &[ty_in("f32[2,2,3]"), val_in(ints(&[2, 3, 5, 6]))]),
        "f32[2,5,6,2]"
    );
    assert_eq!(
        ok1(&ag, &[ty_in("f32[2,3,4]"), ty_in("i64[5]")]),
        "f32[?,?,?,?,3]"
    );
    let col = op("Col2Im", vec![]);
    assert_eq!(
        ok1(
            &col,
            &[
                ty_in("f32[1,10,12]"),
                val_in(ints(&[5, 5])),
                val_in(ints(&[1, 5]))
            ]
        ),
        "f32[1,2,5,5]"
    );
}

// ---- infer_graph ----

struct B {
    g: Graph,
}

impl B {
    fn new() -> B {
        B {
            g: Graph::new("test"),
        }
    }

    fn input(&mut self, name: &str, ty: &str) -> ValueRef {
        ValueRef {
            node: self.g.add_input(name, t(ty)),
            port: 0,
        }
    }

    /// A node whose outputs are declared with the given types (`f32[..]` declares only
    /// the element type).
    fn node(&mut self, o: Op, ins: &[Option<ValueRef>], outs: &[&str]) -> Vec<ValueRef> {
        let n = self.g.len();
        let outputs = outs
            .iter()
            .enumerate()
            .map(|(i, s)| ValueInfo {
                name: format!("v{n}_{i}"),
                ty: t(s),
            })
            .collect();
        let id = self.g.add_node(Node {
            name: format!("n{n}"),
            op: o,
            inputs: ins.to_vec(),
            outputs,
        });
        (0..outs.len())
            .map(|p| ValueRef {
                node: id,
                port: p as u32,
            })
            .collect()
    }

    fn one(&mut self, o: Op, ins: &[ValueRef], out: &str) -> ValueRef {
        let ins: Vec<_> = ins.iter().copied().map(Some).collect();
        self.node(o, &ins, &[out])[0]
    }

    fn konst(&mut self, v: Tensor) -> ValueRef {
        let ty = format!("{}[..]", v.dtype());
        self.one(Op::Constant { value: v }, &[], &ty)
    }

    fn ty(&self, v: ValueRef) -> String {
        self.g.ty(v).to_string()
    }
}

#[test]
fn graph_shape_arithmetic_resolves_reshape() {
    // y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))
    let mut b = B::new();
    let x = b.input("x", "f32[2,3,4,5]");
    let s = b.one(op("Shape", vec![]), &[x], "i64[..]");
    let zero = b.konst(Tensor::scalar(0i64));
    let g = b.one(op("Gather", vec![]), &[s, zero], "i64[..]");
    let ax = b.konst(ints(&[0]));
    let u = b.one(op("Unsqueeze", vec![]), &[g, ax], "i64[..]");
    let m1 = b.konst(ints(&[-1]));
    let c = b.one(
        op("Concat", vec![("axis", Attr::Int(0))]),
        &[u, m1],
        "i64[..]",
    );
    let y = b.one(op("Reshape", vec![]), &[x, c], "f32[..]");
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(s), "i64[4]");
    assert_eq!(b.ty(g), "i64[]");
    assert_eq!(b.ty(c), "i64[2]");
    assert_eq!(b.ty(y), "f32[2,60]");
}

#[test]
fn graph_symbolic_batch_keeps_rank() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,3,4]");
    let s = b.one(op("Shape", vec![]), &[x], "i64[..]");
    let zero = b.konst(Tensor::scalar(0i64));
    let g = b.one(op("Gather", vec![]), &[s, zero], "i64[..]");
    let ax = b.konst(ints(&[0]));
    let u = b.one(op("Unsqueeze", vec![]), &[g, ax], "i64[..]");
    let m1 = b.konst(ints(&[-1]));
    let c = b.one(
        op("Concat", vec![("axis", Attr::Int(0))]),
        &[u, m1],
        "i64[..]",
    );
    let y = b.one(op("Reshape", vec![]), &[x, c], "f32[..]");
    // The tail of the shape is known, so Shape(start=1) folds.
    let tail = b.one(op("Shape", vec![("start", Attr::Int(1))]), &[x], "i64[..]");
    let z = b.one(op("Reshape", vec![]), &[x, tail], "f32[..]");
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(c), "i64[2]");
    assert_eq!(b.ty(y), "f32[?,?]");
    assert!(b.ty(z) == "f32[3,4]", "got {}", b.ty(z));
}

#[test]
fn graph_folds_integer_arithmetic() {
    // [2,3] * 2 - 1 = [3,5], Slice [1:], Cast to i32, ConstantOfShape.
    let mut b = B::new();
    let x = b.input("x", "f32[2,3]");
    let s = b.one(op("Shape", vec![]), &[x], "i64[..]");
    let two = b.konst(Tensor::scalar(2i64));
    let one = b.konst(Tensor::scalar(1i64));
    let m = b.one(op("Mul", vec![]), &[s, two], "i64[..]");
    let d = b.one(op("Sub", vec![]), &[m, one], "i64[..]");
    let st = b.konst(ints(&[1]));
    let en = b.konst(ints(&[10]));
    let sl = b.one(op("Slice", vec![]), &[d, st, en], "i64[..]");
    let cs = b.one(op("ConstantOfShape", vec![]), &[d], "f32[..]");
    let one_elem = b.input("o", "f32[1]");
    let e = b.one(op("Expand", vec![]), &[one_elem, sl], "f32[..]");
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(sl), "i64[1]");
    assert_eq!(b.ty(cs), "f32[3,5]");
    assert_eq!(b.ty(e), "f32[5]");
}

#[test]
fn graph_folds_logic_and_input_defaults() {
    // heads = Shape(q)[1:2] = [4], kv = [2]; Where(Not(Equal(heads, kv)) And (heads % kv == 0),
    // heads / kv, 1) = [2], the grouped-query pattern of the Attention function.
    let mut b = B::new();
    let q = b.input("q", "f32[1,4,5]");
    let k = b.input("k", "f32[1,2,5]");
    let sl = |b: &mut B, x| {
        b.one(
            op(
                "Shape",
                vec![("start", Attr::Int(1)), ("end", Attr::Int(2))],
            ),
            &[x],
            "i64[..]",
        )
    };
    let (hq, hk) = (sl(&mut b, q), sl(&mut b, k));
    let eq = b.one(op("Equal", vec![]), &[hq, hk], "bool[..]");
    let ne = b.one(op("Not", vec![]), &[eq], "bool[..]");
    let md = b.one(op("Mod", vec![]), &[hq, hk], "i64[..]");
    let z = b.konst(ints(&[0]));
    let dz = b.one(op("Equal", vec![]), &[md, z], "bool[..]");
    let cond = b.one(op("And", vec![]), &[ne, dz], "bool[..]");
    let dv = b.one(op("Div", vec![]), &[hq, hk], "i64[..]");
    let one = b.konst(ints(&[1]));
    let w = b.one(op("Where", vec![]), &[cond, dv, one], "i64[..]");
    let c = b.one(op("ConstantOfShape", vec![]), &[w], "f32[..]");
    // An initializer that is a graph input counts with its value.
    let sid = b.g.add_input("s", t("i64[2]"));
    if let Op::Input { default } = &mut b.g.node_mut(sid).op {
        *default = Some(ints(&[3, 4]));
    }
    let s = ValueRef { node: sid, port: 0 };
    let c2 = b.one(op("ConstantOfShape", vec![]), &[s], "f32[..]");
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(c), "f32[2]");
    assert_eq!(b.ty(c2), "f32[3,4]");
}

#[test]
fn graph_merges_declared_types() {
    let mut b = B::new();
    let x = b.input("x", "f32[N,4]");
    let r = b.one(op("Relu", vec![]), &[x], "f32[?,?]");
    let r2 = b.one(op("Relu", vec![]), &[r], "f32[batch,4]");
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(r), "f32[N,4]");
    // On two symbols, the declared name is kept.
    assert_eq!(b.ty(r2), "f32[batch,4]");

    let mut b = B::new();
    let x = b.input("x", "f32[1,64]");
    b.one(op("Relu", vec![]), &[x], "f32[1,32]");
    let e = infer_graph(&mut b.g).unwrap_err();
    assert_eq!(
        e.to_string(),
        "node 'n1' (Relu): inferred f32[1,64] but the model declares f32[1,32] for value 'v1_0'"
    );

    let mut b = B::new();
    let x = b.input("x", "f32[2,3]");
    let y = b.input("y", "f32[4]");
    b.one(op("Add", vec![]), &[x, y], "f32[..]");
    let e = infer_graph(&mut b.g).unwrap_err();
    assert_eq!(
        e,
        InferError {
            node: "n2".into(),
            op: "Add".into(),
            reason: "inputs f32[2,3] and f32[4] do not broadcast".into()
        }
    );
}

#[test]
fn graph_huge_constant_of_shape_is_not_built() {
    let mut b = B::new();
    let s = b.konst(ints(&[1_000_000, 1_000_000]));
    let c = b.one(op("ConstantOfShape", vec![]), &[s], "f32[..]");
    let sh = b.one(op("Shape", vec![]), &[c], "i64[..]");
    let r = b.one(
        op("ReduceSum", vec![("keepdims", Attr::Int(0))]),
        &[c],
        "f32[..]",
    );
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(c), "f32[1000000,1000000]");
    assert_eq!(b.ty(sh), "i64[2]");
    assert_eq!(b.ty(r), "f32[]");
}

#[test]
fn graph_eval_failure_means_unknown_value() {
    // Whether or not the evaluator implements Exp, inference succeeds.
    let mut b = B::new();
    let c = b.konst(ints(&[2, 3]));
    let e = b.one(op("Abs", vec![]), &[c], "i64[..]");
    let x = b.input("x", "f32[6]");
    let r = b.one(op("Reshape", vec![]), &[x, e], "f32[..]");
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(r), "f32[2,3]");
}

/// A body graph: inputs with the given types, one node per output computing Identity or
/// an op over the inputs.
fn body(inputs: &[&str], build: impl FnOnce(&mut B, &[ValueRef]) -> Vec<ValueRef>) -> Box<Graph> {
    let mut b = B::new();
    let ins: Vec<ValueRef> = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| b.input(&format!("in{i}"), s))
        .collect();
    let outs = build(&mut b, &ins);
    for (i, v) in outs.into_iter().enumerate() {
        b.g.outputs.push(GraphOutput {
            name: format!("out{i}"),
            value: v,
        });
    }
    Box::new(b.g)
}

#[test]
fn graph_if_joins_branches() {
    let then_branch = body(&["f32[..]"], |b, i| {
        vec![b.one(op("Relu", vec![]), &[i[0]], "f32[..]")]
    });
    let else_branch = body(&["f32[..]"], |b, i| {
        let ax = b.konst(ints(&[0]));
        vec![b.one(op("ReduceSum", vec![]), &[i[0], ax], "f32[..]")]
    });
    let mut b = B::new();
    let c = b.input("c", "bool[]");
    let x = b.input("x", "f32[3,N]");
    let o = Op::If {
        then_branch: then_branch.clone(),
        else_branch: else_branch.clone(),
    };
    let y = b.node(o, &[Some(c), Some(x)], &["f32[..]"])[0];
    // A known condition picks its branch.
    let t = b.konst(Tensor::scalar(false));
    let o = Op::If {
        then_branch,
        else_branch,
    };
    let z = b.node(o, &[Some(t), Some(x)], &["f32[..]"])[0];
    // With an unknown condition, a branch that fails to infer (dead code) is ignored.
    let bad = body(&["f32[..]"], |b, i| {
        let s = b.konst(Tensor::from_vec(&[5, 1], vec![0f32; 5]).unwrap());
        vec![b.one(op("Add", vec![]), &[i[0], s], "f32[..]")]
    });
    let good = body(&["f32[..]"], |b, i| {
        vec![b.one(op("Relu", vec![]), &[i[0]], "f32[..]")]
    });
    let o = Op::If {
        then_branch: bad,
        else_branch: good,
    };
    let w = b.node(o, &[Some(c), Some(x)], &["f32[..]"])[0];
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(y), "f32[?,N]");
    assert_eq!(b.ty(w), "f32[3,N]");
    assert_eq!(b.ty(z), "f32[1,N]");
}

#[test]
fn graph_loop_and_scan() {
    // Loop body: (i, cond, acc) -> (cond, acc + 1, acc) ; carried acc f32[2], scan output f32[2].
    let lb = body(&["i64[]", "bool[]", "f32[..]"], |b, i| {
        let one = b.konst(Tensor::from_vec(&[1], vec![1f32]).unwrap());
        let c = b.one(op("Identity", vec![]), &[i[1]], "bool[..]");
        let a = b.one(op("Add", vec![]), &[i[2], one], "f32[..]");
        let s = b.one(op("Identity", vec![]), &[i[2]], "f32[..]");
        vec![c, a, s]
    });
    let mut b = B::new();
    let m = b.konst(Tensor::scalar(5i64));
    let init = b.input("init", "f32[2]");
    let outs = b.node(
        Op::Loop {
            body: lb.clone(),
            num_captures: 0,
        },
        &[Some(m), None, Some(init)],
        &["f32[..]", "f32[..]"],
    );
    let cond = b.input("cond", "bool[]");
    let outs2 = b.node(
        Op::Loop {
            body: lb.clone(),
            num_captures: 0,
        },
        &[Some(m), Some(cond), Some(init)],
        &["f32[..]", "f32[..]"],
    );
    // A constant true condition the body passes through cannot stop the loop: M trips. A
    // constant false one stops it before the first (not known here: unknown count).
    let yes = b.konst(Tensor::scalar(true));
    let outs_yes = b.node(
        Op::Loop {
            body: lb.clone(),
            num_captures: 0,
        },
        &[Some(m), Some(yes), Some(init)],
        &["f32[..]", "f32[..]"],
    );
    let no = b.konst(Tensor::scalar(false));
    let outs_no = b.node(
        Op::Loop {
            body: lb,
            num_captures: 0,
        },
        &[Some(m), Some(no), Some(init)],
        &["f32[..]", "f32[..]"],
    );
    // Scan body: (state f32[3], x_t f32[3]) -> (state + x_t, x_t * 2)
    let sb = body(&["f32[..]", "f32[..]"], |b, i| {
        let s = b.one(op("Add", vec![]), &[i[0], i[1]], "f32[..]");
        let y = b.one(op("Identity", vec![]), &[i[1]], "f32[..]");
        vec![s, y]
    });
    let st = b.input("st", "f32[3]");
    let xs = b.input("xs", "f32[3,T]");
    let so = Op::Scan {
        body: sb,
        num_captures: 0,
        num_scan_inputs: 1,
        scan_input_axes: vec![1],
        scan_input_directions: vec![],
        scan_output_axes: vec![-1],
        scan_output_directions: vec![],
    };
    let outs3 = b.node(so, &[Some(st), Some(xs)], &["f32[..]", "f32[..]"]);
    infer_graph(&mut b.g).unwrap();
    assert_eq!([b.ty(outs[0]), b.ty(outs[1])], ["f32[2]", "f32[5,2]"]);
    assert_eq!([b.ty(outs2[0]), b.ty(outs2[1])], ["f32[2]", "f32[?,2]"]);
    assert_eq!(b.ty(outs_yes[1]), "f32[5,2]");
    assert_eq!(b.ty(outs_no[1]), "f32[?,2]");
    assert_eq!([b.ty(outs3[0]), b.ty(outs3[1])], ["f32[3]", "f32[3,T]"]);
}

#[test]
fn extreme_attributes_do_not_panic() {
    let big = |v: &[i64]| Attr::Ints(v.to_vec());
    let m = i64::MAX;
    let c = op(
        "Conv",
        vec![
            ("pads", big(&[m, m])),
            ("strides", big(&[m])),
            ("dilations", big(&[m])),
        ],
    );
    let _ = infer(&c, &[ty_in("f32[1,1,5]"), ty_in("f32[1,1,3]")], 1);
    let ct = op(
        "ConvTranspose",
        vec![("strides", big(&[m])), ("pads", big(&[i64::MIN, 0]))],
    );
    let _ = infer(&ct, &[ty_in("f32[1,1,5]"), ty_in("f32[1,1,3]")], 1);
    let p = op(
        "MaxPool",
        vec![("kernel_shape", big(&[m])), ("ceil_mode", Attr::Int(1))],
    );
    let _ = infer(&p, &[ty_in("f32[1,1,5]")], 1);
    let _ = infer(
        &op("Pad", vec![]),
        &[ty_in("f32[3]"), val_in(ints(&[m, m]))],
        1,
    );
    let _ = infer(
        &op("DepthToSpace", vec![("blocksize", Attr::Int(m))]),
        &[ty_in("f32[1,4,2,2]")],
        1,
    );
    let _ = infer(
        &op("Tile", vec![]),
        &[ty_in("f32[3]"), val_in(ints(&[m]))],
        1,
    );
    let _ = infer(
        &op("Range", vec![]),
        &[
            val_in(Tensor::scalar(i64::MIN)),
            val_in(Tensor::scalar(m)),
            val_in(Tensor::scalar(1i64)),
        ],
        1,
    );
    let sl = op("Slice", vec![]);
    assert_eq!(
        ok1(
            &sl,
            &[
                ty_in("f32[0]"),
                val_in(ints(&[-1])),
                val_in(ints(&[i64::MIN])),
                None,
                val_in(ints(&[-1]))
            ]
        ),
        "f32[0]"
    );
    assert!(infer(
        &op("Expand", vec![]),
        &[ty_in("f32[3]"), val_in(ints(&[-2]))],
        1
    )
    .is_err());
    // Folding an empty slice of a known value.
    let mut b = B::new();
    let e = b.konst(Tensor::from_vec(&[0], Vec::<i64>::new()).unwrap());
    let st = b.konst(ints(&[-1]));
    let en = b.konst(ints(&[i64::MIN]));
    let ax = b.konst(ints(&[0]));
    let stp = b.konst(ints(&[-1]));
    let s = b.node(
        op("Slice", vec![]),
        &[Some(e), Some(st), Some(en), Some(ax), Some(stp)],
        &["i64[..]"],
    )[0];
    infer_graph(&mut b.g).unwrap();
    assert_eq!(b.ty(s), "i64[0]");
}
