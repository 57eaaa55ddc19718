//! The bodies of graphc's fuzz targets, as plain functions so that a crash input can be
//! replayed from a test or a debugger as well as from libFuzzer.
//!
//! - [`import`]: bytes -> `ModelProto` -> import -> verify -> text round trip -> reference
//!   evaluation on small synthesized inputs, whose outputs must have the inferred types.
//! - [`text`]: UTF-8 -> IR text parser -> print -> parse must give an equal graph, and
//!   printing it again the same text.
//! - [`mutate`]: a seed model (embedded from `seeds/mutate/`) mutated by the fuzz bytes
//!   (attributes, attribute types, dims, dtypes, edges, op types), then import -> the default
//!   optimization pipeline,
//!   and the optimized graph must compute what the unoptimized one computes.
//!
//! Every target runs under small limits ([`limits`]) so that one input costs little
//! memory and time; what the targets find must still be a bug under the default limits.
//! Panics are the failures: an `Err` from graphc is a correct answer to a bad model.

use arbitrary::Unstructured;
use graphc::limits::Limits;
use graphc::onnx::{import_model, ImportOptions};
use graphc::onnx_proto::{self as p, attribute_proto::AttributeType};
use graphc::passes::egraph::{OptimizeError, RunnerConfig};
use graphc::passes::pipeline::{PassError, Pipeline, PipelineError};
use graphc::passes::eval::eval_graph;
use graphc::passes::eval::util::with_element_limit;
use graphc::passes::ir::{text as irtext, verify::verify, DType, Dim, Graph, Op, Shape, Tensor};

/// Most elements of one tensor while fuzzing (import and evaluation).
pub const FUZZ_ELEMENTS: usize = 1 << 16;
/// Most elements of all synthesized inputs together; larger graphs are not evaluated.
pub const FUZZ_INPUT_ELEMENTS: usize = 10_000;

/// The limits the targets import under: the defaults, with fewer elements and nodes.
pub fn limits() -> Limits {
    Limits {
        elements: FUZZ_ELEMENTS,
        nodes: 10_000,
        ..Limits::default()
    }
}

fn import_opts() -> ImportOptions {
    ImportOptions {
        limits: limits(),
        ..ImportOptions::default()
    }
}

/// Imports under the fuzzing limits; on success the graph must verify and survive the text
/// round trip.
fn import_checked(model: &p::ModelProto) -> Option<Graph> {
    let g = with_element_limit(FUZZ_ELEMENTS, || import_model(model, &import_opts())).ok()?;
    if let Err(e) = verify(&g) {
        panic!(
            "an imported graph does not verify: {e}\n{}",
            irtext::print(&g)
        );
    }
    check_round_trip(&g);
    Some(g)
}

/// `parse(print(g)) == g` and `print(parse(print(g))) == print(g)`.
fn check_round_trip(g: &Graph) {
    let printed = irtext::print(g);
    let back = match irtext::parse_with_constants(&printed, &irtext::constants(g)) {
        Ok(b) => b,
        Err(e) => panic!("the printed graph does not parse: {e}\n{printed}"),
    };
    assert!(
        back == *g,
        "the parsed graph differs from the printed one:\n{printed}\n---\n{}",
        irtext::print(&back)
    );
    assert_eq!(irtext::print(&back), printed, "printing is not stable");
}

/// A small xorshift generator: inputs are a function of the seed only.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in [-4, 4) in steps of 1/8: exact in every float type, small as an integer.
    fn value(&mut self) -> f64 {
        (self.next() % 64) as f64 / 8.0 - 4.0
    }
}

/// Inputs for every graph input without a default: symbolic and unknown dims are 2, values
/// seeded. `None` when an input is unranked or the inputs would be too large.
pub fn synth_inputs(g: &Graph, seed: u64) -> Option<Vec<Option<Tensor>>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let mut total = 0usize;
    let mut out = Vec::with_capacity(g.inputs.len());
    for &id in &g.inputs {
        let node = g.node(id);
        if !matches!(node.op, Op::Input { default: None }) {
            out.push(None);
            continue;
        }
        let ty = &node.outputs[0].ty;
        let dims: Vec<usize> = ty
            .shape
            .dims()?
            .iter()
            .map(|d| match d {
                Dim::Known(n) => *n,
                _ => 2,
            })
            .collect();
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        total = total.checked_add(n)?;
        if total > FUZZ_INPUT_ELEMENTS {
            return None;
        }
        let values: Vec<f64> = (0..n).map(|_| rng.value()).collect();
        let t = Tensor::from_vec(&dims, values).ok()?;
        out.push(Some(if ty.dtype == DType::String {
            t.cast(DType::I64).cast(DType::String)
        } else {
            t.cast(ty.dtype)
        }));
    }
    Some(out)
}

/// Evaluates under the fuzzing element limit. On success each output must have the dtype
/// inference gave it and a shape that agrees with every known inferred dim.
fn eval_checked(g: &Graph, inputs: &[Option<Tensor>]) -> Option<Vec<Tensor>> {
    let outs = with_element_limit(FUZZ_ELEMENTS, || eval_graph(g, inputs)).ok()?;
    assert_eq!(outs.len(), g.outputs.len(), "one tensor per graph output");
    for (t, o) in outs.iter().zip(&g.outputs) {
        let ty = g.ty(o.value);
        assert_eq!(
            t.dtype(),
            ty.dtype,
            "output '{}' evaluates to {} but is typed {ty}",
            o.name,
            t.dtype()
        );
        if let Shape::Ranked(dims) = &ty.shape {
            let ok = dims.len() == t.shape().len()
                && dims
                    .iter()
                    .zip(t.shape())
                    .all(|(d, &n)| d.known().is_none_or(|k| k == n));
            assert!(
                ok,
                "output '{}' evaluates to shape {:?} but is typed {ty}\n{}",
                o.name,
                t.shape(),
                irtext::print(g)
            );
        }
    }
    Some(outs)
}

/// Removes the shapes a model declares for its outputs and intermediate values (in every
/// graph), keeping the element types: what remains typed is what graphc inferred, which the
/// evaluator must then agree with. (Declared shapes are claims about the inputs the model
/// expects, which synthesized inputs need not honour.)
pub fn strip_declared_shapes(g: &mut p::GraphProto) {
    for vi in g.output.iter_mut().chain(g.value_info.iter_mut()) {
        if let Some(t) = tensor_type_mut(vi) {
            t.shape = None;
        }
    }
    for n in g.node.iter_mut() {
        for a in n.attribute.iter_mut() {
            if let Some(sub) = a.g.as_mut() {
                strip_declared_shapes(sub);
            }
            for sub in a.graphs.iter_mut() {
                strip_declared_shapes(sub);
            }
        }
    }
}

/// The model with [`strip_declared_shapes`] applied, imported under the fuzzing limits.
/// With `GRAPHC_FUZZ_DUMP=PATH` set, the stripped model is also written to `PATH` (to turn
/// a crash into a regression fixture).
fn import_inferred(model: &p::ModelProto) -> Option<Graph> {
    let mut m = model.clone();
    if let Some(g) = m.graph.as_mut() {
        strip_declared_shapes(g);
    }
    if let Some(path) = std::env::var_os("GRAPHC_FUZZ_DUMP") {
        use p::prost::Message;
        std::fs::write(path, m.encode_to_vec()).expect("GRAPHC_FUZZ_DUMP is writable");
    }
    import_checked(&m)
}

/// Target `import`.
pub fn import(data: &[u8]) {
    let Ok(model) = p::decode_model(data) else {
        return;
    };
    if import_checked(&model).is_none() {
        return;
    }
    let Some(g) = import_inferred(&model) else {
        return;
    };
    if let Some(inputs) = synth_inputs(&g, 0) {
        eval_checked(&g, &inputs);
    }
}

/// Target `text`.
pub fn text(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(g) = irtext::parse(s) else {
        return;
    };
    check_round_trip(&g);
}

/// The seed models of `mutate`, embedded so that the fuzz input is only the mutation.
pub const SEEDS: &[(&str, &[u8])] = &[
    ("add", include_bytes!("../seeds/mutate/add.onnx")),
    (
        "batchnorm_example",
        include_bytes!("../seeds/mutate/batchnorm_example.onnx"),
    ),
    (
        "conv_with_strides_padding",
        include_bytes!("../seeds/mutate/conv_with_strides_padding.onnx"),
    ),
    (
        "expand_dim_changed",
        include_bytes!("../seeds/mutate/expand_dim_changed.onnx"),
    ),
    ("gather_0", include_bytes!("../seeds/mutate/gather_0.onnx")),
    (
        "gemm_default_no_bias",
        include_bytes!("../seeds/mutate/gemm_default_no_bias.onnx"),
    ),
    ("if", include_bytes!("../seeds/mutate/if.onnx")),
    (
        "layer_normalization_2d_axis0",
        include_bytes!("../seeds/mutate/layer_normalization_2d_axis0.onnx"),
    ),
    ("loop11", include_bytes!("../seeds/mutate/loop11.onnx")),
    (
        "matmul_2d",
        include_bytes!("../seeds/mutate/matmul_2d.onnx"),
    ),
    (
        "maxpool_2d_default",
        include_bytes!("../seeds/mutate/maxpool_2d_default.onnx"),
    ),
    (
        "reduce_sum_keepdims_example",
        include_bytes!("../seeds/mutate/reduce_sum_keepdims_example.onnx"),
    ),
    (
        "reshape_extended_dims",
        include_bytes!("../seeds/mutate/reshape_extended_dims.onnx"),
    ),
    ("slice", include_bytes!("../seeds/mutate/slice.onnx")),
    (
        "softmax_axis_0",
        include_bytes!("../seeds/mutate/softmax_axis_0.onnx"),
    ),
    (
        "where_example",
        include_bytes!("../seeds/mutate/where_example.onnx"),
    ),
];

/// Op types a node may be switched to: similar arities, so the result often still imports.
const OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Max",
    "Min",
    "Pow",
    "Relu",
    "Neg",
    "Abs",
    "Exp",
    "Sqrt",
    "Sigmoid",
    "Tanh",
    "Identity",
    "Softmax",
    "MatMul",
    "Transpose",
    "Reshape",
    "Expand",
    "Concat",
    "Gather",
    "ReduceSum",
    "ReduceMean",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Cast",
    "Where",
    "Equal",
    "Less",
    "Not",
    "Sum",
    "Mean",
    "Clip",
    "LeakyRelu",
    "Gemm",
    "Conv",
    "MaxPool",
    "AveragePool",
    "BatchNormalization",
    "LayerNormalization",
    "Slice",
    "Tile",
    "Shape",
    "Size",
    "ConstantOfShape",
    "Range",
    "Pad",
    "Split",
    "Einsum",
    "CumSum",
];

/// Attribute names a node may gain.
const ATTR_NAMES: &[&str] = &[
    "axis",
    "axes",
    "keepdims",
    "perm",
    "alpha",
    "beta",
    "transA",
    "transB",
    "epsilon",
    "to",
    "pads",
    "strides",
    "kernel_shape",
    "dilations",
    "group",
    "mode",
    "equation",
    "value",
    "allowzero",
    "noop_with_empty_axes",
    "exclusive",
    "reverse",
];

/// Integers worth trying as attribute values and dims.
const INTERESTING: &[i64] = &[
    0,
    1,
    2,
    3,
    -1,
    -2,
    7,
    64,
    1 << 20,
    1 << 31,
    (1 << 31) - 1,
    1 << 32,
    i64::MAX,
    i64::MIN,
    i64::MAX / 2,
];

fn interesting_int(u: &mut Unstructured) -> arbitrary::Result<i64> {
    if u.ratio(3, 4)? {
        Ok(*u.choose(INTERESTING)?)
    } else {
        u.arbitrary()
    }
}

/// Nodes of a graph and its subgraphs (pre-order).
fn count_nodes(g: &p::GraphProto) -> usize {
    g.node
        .iter()
        .map(|n| {
            1 + n
                .attribute
                .iter()
                .filter_map(|a| a.g.as_ref())
                .map(count_nodes)
                .sum::<usize>()
        })
        .sum()
}

/// The `k`-th node of a graph and its subgraphs, in the pre-order of [`count_nodes`].
fn nth_node(g: &mut p::GraphProto, mut k: usize) -> Option<&mut p::NodeProto> {
    for n in g.node.iter_mut() {
        if k == 0 {
            return Some(n);
        }
        k -= 1;
        for a in n.attribute.iter_mut() {
            if let Some(sub) = a.g.as_mut() {
                let c = count_nodes(sub);
                if k < c {
                    return nth_node(sub, k);
                }
                k -= c;
            }
        }
    }
    None
}

/// A node of the graph or one of its subgraphs, chosen by `u`.
fn pick_node<'a>(
    g: &'a mut p::GraphProto,
    u: &mut Unstructured,
) -> arbitrary::Result<Option<&'a mut p::NodeProto>> {
    let c = count_nodes(g);
    if c == 0 {
        return Ok(None);
    }
    let k = u.choose_index(c)?;
    Ok(nth_node(g, k))
}

/// The value infos of a graph (inputs, outputs, value_info).
fn value_infos_mut(g: &mut p::GraphProto) -> Vec<&mut p::ValueInfoProto> {
    g.input
        .iter_mut()
        .chain(g.output.iter_mut())
        .chain(g.value_info.iter_mut())
        .collect()
}

/// Names a node input may be rewired to.
fn value_names(g: &p::GraphProto) -> Vec<String> {
    let mut v: Vec<String> = g.input.iter().filter_map(|i| i.name.clone()).collect();
    v.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    for n in &g.node {
        v.extend(n.output.iter().cloned());
    }
    v.push(String::new());
    v
}

fn tensor_type_mut(vi: &mut p::ValueInfoProto) -> Option<&mut p::type_proto::Tensor> {
    match vi.r#type.as_mut()?.value.as_mut()? {
        p::type_proto::Value::TensorType(t) => Some(t),
        _ => None,
    }
}

const DTYPES: &[i32] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 0, 14, 17, 23];

/// Applies one mutation chosen by `u`.
fn mutate_once(m: &mut p::ModelProto, u: &mut Unstructured) -> arbitrary::Result<()> {
    let g = m.graph.get_or_insert_with(Default::default);
    let names = value_names(g);
    match u.int_in_range(0..=8)? {
        // An attribute's value.
        0 => {
            let Some(n) = pick_node(g, u)? else {
                return Ok(());
            };
            if n.attribute.is_empty() {
                return Ok(());
            }
            let k = u.choose_index(n.attribute.len())?;
            let a = &mut n.attribute[k];
            match u.int_in_range(0..=4)? {
                0 => a.i = Some(interesting_int(u)?),
                1 => a.f = Some(u.arbitrary()?),
                2 => {
                    if a.ints.is_empty() || u.ratio(1, 3)? {
                        a.ints.push(interesting_int(u)?);
                    } else {
                        let k = u.choose_index(a.ints.len())?;
                        a.ints[k] = interesting_int(u)?;
                    }
                }
                3 => {
                    a.ints.pop();
                }
                _ => a.s = Some(u.arbitrary::<String>()?.into_bytes()),
            }
        }
        // An attribute's type.
        1 => {
            let Some(n) = pick_node(g, u)? else {
                return Ok(());
            };
            if n.attribute.is_empty() {
                return Ok(());
            }
            let k = u.choose_index(n.attribute.len())?;
            let ty = *u.choose(&[
                AttributeType::Undefined,
                AttributeType::Float,
                AttributeType::Int,
                AttributeType::String,
                AttributeType::Tensor,
                AttributeType::Graph,
                AttributeType::Floats,
                AttributeType::Ints,
                AttributeType::Strings,
            ])?;
            n.attribute[k].r#type = Some(ty as i32);
        }
        // A new attribute.
        2 => {
            let name = *u.choose(ATTR_NAMES)?;
            let a = if u.ratio(1, 2)? {
                p::AttributeProto {
                    name: Some(name.into()),
                    r#type: Some(AttributeType::Int as i32),
                    i: Some(interesting_int(u)?),
                    ..Default::default()
                }
            } else {
                let len = u.int_in_range(0..=6)?;
                let ints = (0..len)
                    .map(|_| interesting_int(u))
                    .collect::<Result<_, _>>()?;
                p::AttributeProto {
                    name: Some(name.into()),
                    r#type: Some(AttributeType::Ints as i32),
                    ints,
                    ..Default::default()
                }
            };
            if let Some(n) = pick_node(g, u)? {
                n.attribute.push(a);
            }
        }
        // A declared dim.
        3 => {
            let mut vis = value_infos_mut(g);
            if vis.is_empty() {
                return Ok(());
            }
            let k = u.choose_index(vis.len())?;
            let Some(t) = tensor_type_mut(vis[k]) else {
                return Ok(());
            };
            let shape = t.shape.get_or_insert_with(Default::default);
            use p::tensor_shape_proto::{dimension::Value, Dimension};
            match u.int_in_range(0..=3)? {
                0 if !shape.dim.is_empty() => {
                    let k = u.choose_index(shape.dim.len())?;
                    shape.dim[k].value = Some(Value::DimValue(interesting_int(u)?));
                }
                1 if !shape.dim.is_empty() => {
                    let k = u.choose_index(shape.dim.len())?;
                    shape.dim[k].value = if u.ratio(1, 2)? {
                        Some(Value::DimParam(
                            if u.ratio(1, 2)? { "N" } else { "M" }.into(),
                        ))
                    } else {
                        None
                    };
                }
                2 => shape.dim.push(Dimension {
                    value: Some(Value::DimValue(u.int_in_range(0..=4)?)),
                    ..Default::default()
                }),
                _ => {
                    shape.dim.pop();
                }
            }
        }
        // A declared dtype.
        4 => {
            let mut vis = value_infos_mut(g);
            if vis.is_empty() {
                return Ok(());
            }
            let k = u.choose_index(vis.len())?;
            if let Some(t) = tensor_type_mut(vis[k]) {
                t.elem_type = Some(*u.choose(DTYPES)?);
            }
        }
        // An initializer: dtype, dims or data length.
        5 => {
            if g.initializer.is_empty() {
                return Ok(());
            }
            let k = u.choose_index(g.initializer.len())?;
            let t = &mut g.initializer[k];
            match u.int_in_range(0..=2)? {
                0 => t.data_type = Some(*u.choose(DTYPES)?),
                1 => {
                    if t.dims.is_empty() || u.ratio(1, 3)? {
                        t.dims.push(interesting_int(u)?);
                    } else {
                        let k = u.choose_index(t.dims.len())?;
                        t.dims[k] = interesting_int(u)?;
                    }
                }
                _ => {
                    if let Some(raw) = t.raw_data.as_mut() {
                        raw.truncate(u.int_in_range(0..=raw.len())?);
                    } else {
                        t.float_data.pop();
                        t.int64_data.pop();
                    }
                }
            }
        }
        // An edge: a node input rewired to another value (or made absent).
        6 => {
            if g.node.is_empty() {
                return Ok(());
            }
            let k = u.choose_index(g.node.len())?;
            let n = &mut g.node[k];
            let name = u.choose(&names)?.clone();
            if n.input.is_empty() || u.ratio(1, 4)? {
                n.input.push(name);
            } else {
                let k = u.choose_index(n.input.len())?;
                n.input[k] = name;
            }
        }
        // An op type.
        7 => {
            let op = *u.choose(OPS)?;
            if let Some(n) = pick_node(g, u)? {
                n.op_type = Some(op.into());
            }
        }
        // A graph output rewired, or the opset changed.
        _ => {
            if u.ratio(1, 2)? && !g.output.is_empty() {
                let k = u.choose_index(g.output.len())?;
                g.output[k].name = Some(u.choose(&names)?.clone());
            } else if let Some(o) = m.opset_import.first_mut() {
                o.version = Some(u.int_in_range(6..=27)?);
            }
        }
    }
    Ok(())
}

/// The runner limits of `mutate`: small, so that one input stays fast.
fn runner_config() -> RunnerConfig {
    RunnerConfig {
        iter_limit: 8,
        node_limit: 5_000,
        time_limit: std::time::Duration::from_secs(2),
    }
}

/// Whether `actual` is close enough to `expected`: same dtype and shape; floats within
/// `1e-4 + 1e-3 * |expected|` where expected is finite (rewrites may reassociate), NaN and
/// infinities compared loosely (an overflow may move); everything else exactly.
fn close(actual: &Tensor, expected: &Tensor) -> Result<(), String> {
    if actual.dtype() != expected.dtype() || actual.shape() != expected.shape() {
        return Err(format!(
            "{}{:?} vs expected {}{:?}",
            actual.dtype(),
            actual.shape(),
            expected.dtype(),
            expected.shape()
        ));
    }
    if expected.dtype().is_float() {
        for (i, (x, y)) in actual
            .to_f64_vec()
            .into_iter()
            .zip(expected.to_f64_vec())
            .enumerate()
        {
            if y.is_finite() && x.is_finite() && (x - y).abs() > 1e-4 + 1e-3 * y.abs() {
                return Err(format!("element {i}: {x} vs expected {y}"));
            }
        }
        Ok(())
    } else if actual == expected {
        Ok(())
    } else {
        Err("values differ".into())
    }
}

/// Target `mutate`.
pub fn mutate(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(k) = u.choose_index(SEEDS.len()) else {
        return;
    };
    let mut model = p::decode_model(SEEDS[k].1).expect("the seeds decode");
    let Ok(n) = u.int_in_range(1..=4u8) else {
        return;
    };
    for _ in 0..n {
        if mutate_once(&mut model, &mut u).is_err() {
            break;
        }
    }
    if import_checked(&model).is_none() {
        return;
    }
    let Some(g) = import_inferred(&model) else {
        return;
    };
    let pipeline = Pipeline::default();
    let opt = match with_element_limit(FUZZ_ELEMENTS, || pipeline.run(&g, &runner_config())) {
        Ok((opt, _)) => opt,
        // The graph cannot be expressed in the e-graph: not a wrong answer.
        Err(PipelineError::Pass(PassError {
            source: OptimizeError::Convert(_),
            ..
        })) => return,
        Err(e) => panic!(
            "optimizing a graph that imports: {e}\n{}",
            irtext::print(&g)
        ),
    };
    if let Err(e) = verify(&opt) {
        panic!("the optimized graph does not verify: {e}");
    }
    for seed in 0..2 {
        let Some(inputs) = synth_inputs(&g, seed) else {
            return;
        };
        let Some(want) = eval_checked(&g, &inputs) else {
            return;
        };
        let got = match with_element_limit(FUZZ_ELEMENTS, || eval_graph(&opt, &inputs)) {
            Ok(v) => v,
            Err(e) => panic!(
                "the unoptimized graph evaluates but the optimized one fails: {e}\n{}\n---\n{}",
                irtext::print(&g),
                irtext::print(&opt)
            ),
        };
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            if let Err(e) = close(a, b) {
                panic!(
                    "output {i} of the optimized graph differs (seed {seed}): {e}\n{}\n---\n{}",
                    irtext::print(&g),
                    irtext::print(&opt)
                );
            }
        }
    }
}
