//! [`Graph`] -> `ModelProto`: the inverse of `import`.
//!
//! Graph inputs become graph inputs (those with a default also become initializers of the
//! same name), `Constant` nodes become initializers, and every other node becomes a
//! `NodeProto` whose attributes are the op's non-default fields, converted back from the
//! IR's normalized forms: Gemm's `trans_a`/`trans_b` are `transA`/`transB`, element types are
//! ONNX codes, the opset-12 Softmax family (`coerce_2d`) is rewritten as
//! Flatten -> op -> Reshape, Upsample (deprecated) as the equivalent Resize, DFT's `axis`
//! attribute becomes its input, an equal Split gets its `num_outputs`, and captured outer values (explicit trailing inputs in the
//! IR) become implicit outer references again. Values keep their IR names, made unique
//! across the whole model (subgraphs included) as ONNX requires; every typed value gets a
//! `value_info`. The IR is in the newest input forms, so the export opset must be at least
//! [`MIN_EXPORT_OPSET`].

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use graphc_passes::ir::{
    Attr, DType, Dim, Graph, Node, NodeId, Op, Shape, Tensor, TypeInfo, ValueRef,
};
use onnx_proto::prost::Message;
use onnx_proto::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use super::tensor::tensor_to_proto;
use super::MAX_OPSET;

/// Oldest opset a graph can be exported at: the IR uses the input forms of opset 18
/// (Reduce* `axes`, Split `num_outputs`, Pad `axes`, Resize's newer attributes).
pub const MIN_EXPORT_OPSET: i64 = 18;

/// Largest model [`write_model`] writes (2 GiB, the protobuf limit).
pub const MAX_MODEL_BYTES: usize = 2 << 30;

/// Why a graph could not be exported or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// A problem with the graph or the request as a whole.
    #[error("export: {0}")]
    Model(String),
    /// A node that has no ONNX form at this opset.
    #[error("node '{node}' ({op}): {reason}")]
    Node {
        /// The node's name, or a description of it when unnamed.
        node: String,
        /// Its ONNX op type.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing the file failed.
    #[error("cannot write {path}: {reason}")]
    Io {
        /// The destination.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// The ONNX IR version released with `opset` (onnx's own version table).
pub fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=18 => 8,
        19 | 20 => 9,
        21 | 22 => 10,
        23 => 11,
        24 => 12,
        _ => 13,
    }
}

/// The opset that introduced ops newer than [`MIN_EXPORT_OPSET`].
fn since_opset(op: &Op) -> i64 {
    match op {
        Op::Gelu { .. } | Op::AffineGrid { .. } => 20,
        Op::Attention { .. } | Op::RmsNormalization { .. } | Op::RotaryEmbedding { .. } => 23,
        Op::Swish { .. } => 24,
        Op::CumProd { .. } | Op::BitCast { .. } => 26,
        _ => MIN_EXPORT_OPSET,
    }
}

/// The lowest opset, from [`MIN_EXPORT_OPSET`] up, that has every op of `g`'s top level in
/// the form the node uses (an input or attribute added after the op itself counts).
pub fn min_opset(g: &Graph) -> i64 {
    g.nodes()
        .map(|(_, n)| {
            let present = |i: usize| n.inputs.get(i).is_some_and(Option::is_some);
            let form = match &n.op {
                Op::Dft { .. } if present(2) => 20,
                Op::AveragePool { dilations, .. } if !dilations.is_empty() => 19,
                Op::Attention { .. } if present(6) => 24,
                _ => MIN_EXPORT_OPSET,
            };
            since_opset(&n.op).max(form)
        })
        .fold(MIN_EXPORT_OPSET, i64::max)
}

/// Exports a graph as an ONNX model importing the default domain at `opset`
/// ([`MIN_EXPORT_OPSET`]..=[`MAX_OPSET`]).
pub fn export_model(g: &Graph, opset: i64) -> Result<ModelProto, ExportError> {
    if !(MIN_EXPORT_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(ExportError::Model(format!(
            "opset {opset} is not supported (graphc exports opsets {MIN_EXPORT_OPSET} to {MAX_OPSET})"
        )));
    }
    let mut ex = Exporter {
        opset,
        used: HashSet::new(),
        fresh: 0,
    };
    let graph = ex.graph(g, &[], true)?;
    Ok(ModelProto {
        ir_version: Some(ir_version_for(opset)),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("graphc".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    })
}

/// Writes a model atomically: to a temporary file in the destination folder, then renamed
/// over `path`, so readers never see a partial file.
pub fn write_model(path: &Path, model: &ModelProto) -> Result<(), ExportError> {
    let io = |reason: String| ExportError::Io {
        path: path.display().to_string(),
        reason,
    };
    let len = model.encoded_len();
    if len > MAX_MODEL_BYTES {
        return Err(io(format!(
            "the model is {len} bytes, more than the {MAX_MODEL_BYTES}-byte protobuf limit"
        )));
    }
    let file_name = path
        .file_name()
        .ok_or_else(|| io("the path names no file".into()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}-{k}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(&model.encode_to_vec())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e.to_string())
    })
}

/// A `TypeProto` for a tensor type (`Sym` dims are `dim_param`, unknown dims are empty).
pub fn type_to_proto(t: &TypeInfo) -> TypeProto {
    use tensor_shape_proto::{dimension::Value, Dimension};
    let shape = match &t.shape {
        Shape::Unranked => None,
        Shape::Ranked(dims) => Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|d| Dimension {
                    value: match d {
                        Dim::Known(n) => Some(Value::DimValue(*n as i64)),
                        Dim::Sym(s) => Some(Value::DimParam(s.clone())),
                        Dim::Unknown => None,
                    },
                    ..Default::default()
                })
                .collect(),
        }),
    };
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(t.dtype as i32),
            shape,
        })),
        ..Default::default()
    }
}

fn value_info(name: &str, t: &TypeInfo) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(type_to_proto(t)),
        ..Default::default()
    }
}

fn attr_proto(name: &str, a: Attr, graph: Option<GraphProto>) -> AttributeProto {
    let mut p = AttributeProto {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let ty = match a {
        Attr::Int(v) => {
            p.i = Some(v);
            AttributeType::Int
        }
        Attr::Float(v) => {
            p.f = Some(v);
            AttributeType::Float
        }
        Attr::Str(s) => {
            p.s = Some(s.into_bytes());
            AttributeType::String
        }
        Attr::Ints(v) => {
            p.ints = v;
            AttributeType::Ints
        }
        Attr::Floats(v) => {
            p.floats = v;
            AttributeType::Floats
        }
        Attr::Strs(v) => {
            p.strings = v.into_iter().map(String::into_bytes).collect();
            AttributeType::Strings
        }
        Attr::Tensor(t) => {
            p.t = Some(tensor_to_proto(&t, ""));
            AttributeType::Tensor
        }
        Attr::Graph(_) => {
            p.g = graph;
            AttributeType::Graph
        }
    };
    p.r#type = Some(ty as i32);
    p
}

fn node_proto(
    op_type: &str,
    name: &str,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input,
        output,
        name: if name.is_empty() {
            None
        } else {
            Some(name.to_string())
        },
        op_type: Some(op_type.to_string()),
        attribute,
        ..Default::default()
    }
}

struct Exporter {
    opset: i64,
    /// Every value name taken so far, in all graphs (ONNX names are unique model-wide).
    used: HashSet<String>,
    fresh: usize,
}

impl Exporter {
    /// A name not used yet: `want` itself when free, else `want_1`, `want_2`, ...
    fn unique(&mut self, want: &str) -> String {
        let base = if want.is_empty() {
            self.fresh += 1;
            format!("graphc_v{}", self.fresh)
        } else {
            want.to_string()
        };
        let mut name = base.clone();
        let mut k = 0usize;
        while self.used.contains(&name) {
            k += 1;
            name = format!("{base}_{k}");
        }
        self.used.insert(name.clone());
        name
    }

    /// Exports one graph. `captures` are the outer names its trailing inputs receive.
    fn graph(
        &mut self,
        g: &Graph,
        captures: &[String],
        top: bool,
    ) -> Result<GraphProto, ExportError> {
        let n_formal = g.inputs.len().checked_sub(captures.len()).ok_or_else(|| {
            ExportError::Model(format!(
                "graph '{}' has {} inputs but receives {} captured values",
                g.name,
                g.inputs.len(),
                captures.len()
            ))
        })?;
        let mut gp = GraphProto {
            name: Some(g.name.clone()),
            ..Default::default()
        };
        let mut names: HashMap<ValueRef, String> = HashMap::new();
        let capture_ids: HashSet<NodeId> = g.inputs[n_formal..].iter().copied().collect();
        for (&id, c) in g.inputs[n_formal..].iter().zip(captures) {
            names.insert(ValueRef { node: id, port: 0 }, c.clone());
        }
        // Graph outputs: a value takes its output's name directly when it can; otherwise an
        // Identity copies it to that name.
        let mut out_names = Vec::with_capacity(g.outputs.len());
        let mut direct: Vec<bool> = Vec::with_capacity(g.outputs.len());
        for o in &g.outputs {
            let name = if top {
                if self.used.contains(&o.name) {
                    return Err(ExportError::Model(format!(
                        "two graph outputs are named '{}'",
                        o.name
                    )));
                }
                if o.name.is_empty() {
                    return Err(ExportError::Model(
                        "a graph output has an empty name".into(),
                    ));
                }
                self.used.insert(o.name.clone());
                o.name.clone()
            } else {
                self.unique(&o.name)
            };
            let v = o.value;
            let node = g.node(v.node);
            let is_input = matches!(node.op, Op::Input { .. });
            let ok = !names.contains_key(&v)
                && !capture_ids.contains(&v.node)
                && (!is_input || g.value(v).name == name);
            if ok {
                names.insert(v, name.clone());
            }
            direct.push(ok);
            out_names.push(name);
        }
        let mut used_values: HashSet<ValueRef> = g.outputs.iter().map(|o| o.value).collect();
        for (_, node) in g.nodes() {
            used_values.extend(node.inputs.iter().flatten().copied());
        }
        // Formal inputs.
        for &id in &g.inputs[..n_formal] {
            let v = ValueRef { node: id, port: 0 };
            let info = g.value(v);
            let name = match names.get(&v) {
                Some(n) => n.clone(),
                None => {
                    let n = self.unique(&info.name);
                    names.insert(v, n.clone());
                    n
                }
            };
            gp.input.push(value_info(&name, &info.ty));
            if let Op::Input { default: Some(t) } = &g.node(id).op {
                gp.initializer.push(tensor_to_proto(t, &name));
            }
        }
        let outputs: HashSet<ValueRef> = g
            .outputs
            .iter()
            .zip(&direct)
            .filter(|(_, d)| **d)
            .map(|(o, _)| o.value)
            .collect();
        for (id, node) in g.nodes() {
            if matches!(node.op, Op::Input { .. }) {
                continue;
            }
            let node_err = |reason: String| ExportError::Node {
                node: node.display_name(),
                op: node.op.onnx_name().to_string(),
                reason,
            };
            // Output names.
            let mut outs = Vec::with_capacity(node.outputs.len());
            for (port, info) in node.outputs.iter().enumerate() {
                let v = ValueRef {
                    node: id,
                    port: port as u32,
                };
                let name = match names.get(&v) {
                    Some(n) => n.clone(),
                    None if info.name.is_empty() && !used_values.contains(&v) => String::new(),
                    None => {
                        let n = self.unique(&info.name);
                        names.insert(v, n.clone());
                        n
                    }
                };
                if !name.is_empty()
                    && !outputs.contains(&v)
                    && !matches!(node.op, Op::Constant { .. })
                {
                    gp.value_info.push(value_info(&name, &info.ty));
                }
                outs.push(name);
            }
            let mut ins: Vec<String> = Vec::with_capacity(node.inputs.len());
            for inp in &node.inputs {
                ins.push(match inp {
                    None => String::new(),
                    Some(v) => names.get(v).cloned().ok_or_else(|| {
                        node_err("an input is not defined before this node".into())
                    })?,
                });
            }
            self.node(node, ins, outs, &mut gp).map_err(node_err)?;
        }
        for ((o, name), d) in g.outputs.iter().zip(&out_names).zip(&direct) {
            if !d {
                let src = names.get(&o.value).cloned().ok_or_else(|| {
                    ExportError::Model(format!(
                        "graph output '{}' is not computed in its graph",
                        o.name
                    ))
                })?;
                gp.node.push(node_proto(
                    "Identity",
                    "",
                    vec![src],
                    vec![name.clone()],
                    vec![],
                ));
            }
            gp.output.push(value_info(name, g.ty(o.value)));
        }
        Ok(gp)
    }

    /// Appends the ONNX form of one node (possibly several nodes and initializers).
    fn node(
        &mut self,
        node: &Node,
        mut ins: Vec<String>,
        outs: Vec<String>,
        gp: &mut GraphProto,
    ) -> Result<(), String> {
        let op = &node.op;
        let op_type = op.onnx_name();
        if op_type.starts_with("graphc.") {
            return Err("this graphc op has no ONNX form".into());
        }
        let since = since_opset(op);
        if self.opset < since {
            return Err(format!(
                "{op_type} needs opset {since} or newer (exporting opset {})",
                self.opset
            ));
        }
        if let Op::Constant { value } = op {
            let name = outs.first().ok_or("a constant has no output")?;
            gp.initializer.push(tensor_to_proto(value, name));
            return Ok(());
        }
        let mut attrs = op.attrs();
        // Subgraphs: the captured outer values (trailing node inputs) become implicit.
        let mut subgraphs: HashMap<&'static str, GraphProto> = HashMap::new();
        match op {
            Op::If {
                then_branch,
                else_branch,
            } => {
                if ins.is_empty() {
                    return Err("If has no condition input".into());
                }
                let captures = ins.split_off(1);
                self.check_captures(&captures)?;
                subgraphs.insert(
                    "then_branch",
                    self.graph(then_branch, &captures, false)
                        .map_err(|e| e.to_string())?,
                );
                subgraphs.insert(
                    "else_branch",
                    self.graph(else_branch, &captures, false)
                        .map_err(|e| e.to_string())?,
                );
            }
            Op::Loop { body, num_captures }
            | Op::Scan {
                body, num_captures, ..
            } => {
                let k = usize::try_from(*num_captures)
                    .ok()
                    .filter(|&k| k <= ins.len())
                    .ok_or_else(|| {
                        format!(
                            "num_captures {num_captures} does not fit the {} inputs",
                            ins.len()
                        )
                    })?;
                let captures = ins.split_off(ins.len() - k);
                self.check_captures(&captures)?;
                subgraphs.insert(
                    "body",
                    self.graph(body, &captures, false)
                        .map_err(|e| e.to_string())?,
                );
                attrs.retain(|(n, _)| *n != "num_captures");
            }
            _ => {}
        }
        for (name, a) in attrs.iter_mut() {
            match (op, *name) {
                (Op::Gemm { .. }, "trans_a") => *name = "transA",
                (Op::Gemm { .. }, "trans_b") => *name = "transB",
                (Op::Cast { .. } | Op::BitCast { .. }, "to") | (Op::EyeLike { .. }, "dtype") => {
                    if let Attr::Str(s) = a {
                        let d = DType::from_name(s)
                            .ok_or_else(|| format!("unknown element type '{s}'"))?;
                        *a = Attr::Int(d as i64);
                    }
                }
                _ => {}
            }
        }
        let mut op_type = op_type;
        match op {
            Op::Softmax {
                axis,
                coerce_2d: true,
            }
            | Op::LogSoftmax {
                axis,
                coerce_2d: true,
            }
            | Op::Hardmax {
                axis,
                coerce_2d: true,
            } => {
                return self.coerce_2d(op_type, *axis, node, ins, outs, gp);
            }
            Op::Upsample { mode } => {
                // Upsample is Resize with asymmetric coordinates (and floor for nearest).
                op_type = "Resize";
                if ins.len() != 2 {
                    return Err(format!(
                        "Upsample takes 2 inputs, this one has {}",
                        ins.len()
                    ));
                }
                ins.insert(1, String::new());
                attrs = vec![
                    (
                        "coordinate_transformation_mode",
                        Attr::Str("asymmetric".into()),
                    ),
                    ("mode", Attr::Str(mode.clone())),
                ];
                if mode == "nearest" {
                    attrs.push(("nearest_mode", Attr::Str("floor".into())));
                }
            }
            Op::Split {
                num_outputs: None, ..
            } if ins.get(1).is_none_or(|s| s.is_empty()) => {
                // Before opset 18 an equal split took its count from the outputs.
                attrs.push(("num_outputs", Attr::Int(outs.len() as i64)));
            }
            Op::Dft { axis, .. } => {
                if self.opset >= 20 {
                    attrs.retain(|(n, _)| *n != "axis");
                    if ins.get(2).is_none_or(|s| s.is_empty()) {
                        let name = self.unique(&format!(
                            "{}__axis",
                            outs.first().map(String::as_str).unwrap_or("dft")
                        ));
                        gp.initializer
                            .push(tensor_to_proto(&Tensor::scalar(*axis), &name));
                        ins.resize(ins.len().max(2), String::new());
                        ins.truncate(2);
                        ins.push(name);
                    }
                } else {
                    if ins.get(2).is_some_and(|s| !s.is_empty()) {
                        return Err(format!(
                            "an axis input needs opset 20 or newer (exporting opset {})",
                            self.opset
                        ));
                    }
                    attrs.retain(|(n, _)| *n != "axis");
                    attrs.push(("axis", Attr::Int(*axis)));
                }
            }
            _ => {}
        }
        while ins.last().is_some_and(|s| s.is_empty()) {
            ins.pop();
        }
        let attribute = attrs
            .into_iter()
            .map(|(name, a)| {
                let g = if matches!(a, Attr::Graph(_)) {
                    subgraphs.remove(name)
                } else {
                    None
                };
                attr_proto(name, a, g)
            })
            .collect();
        gp.node
            .push(node_proto(op_type, &node.name, ins, outs, attribute));
        Ok(())
    }

    fn check_captures(&self, captures: &[String]) -> Result<(), String> {
        if captures.iter().any(|c| c.is_empty()) {
            return Err("a captured value is absent".into());
        }
        Ok(())
    }

    /// The opset < 13 Softmax family: flatten to 2-D at `axis`, apply over the second
    /// dim, restore the shape.
    fn coerce_2d(
        &mut self,
        op_type: &str,
        axis: i64,
        node: &Node,
        ins: Vec<String>,
        outs: Vec<String>,
        gp: &mut GraphProto,
    ) -> Result<(), String> {
        let (Some(x), Some(y)) = (ins.first(), outs.first()) else {
            return Err(format!("{op_type} needs one input and one output"));
        };
        if x.is_empty() {
            return Err(format!("{op_type} has no input"));
        }
        let stem = if y.is_empty() {
            "coerce_2d".to_string()
        } else {
            y.clone()
        };
        let shape = self.unique(&format!("{stem}__shape"));
        let flat = self.unique(&format!("{stem}__flat"));
        let flat_out = self.unique(&format!("{stem}__2d"));
        let y = if y.is_empty() {
            self.unique(&stem)
        } else {
            y.clone()
        };
        gp.node.push(node_proto(
            "Shape",
            "",
            vec![x.clone()],
            vec![shape.clone()],
            vec![],
        ));
        gp.node.push(node_proto(
            "Flatten",
            "",
            vec![x.clone()],
            vec![flat.clone()],
            vec![attr_proto("axis", Attr::Int(axis), None)],
        ));
        gp.node.push(node_proto(
            op_type,
            &node.name,
            vec![flat],
            vec![flat_out.clone()],
            vec![attr_proto("axis", Attr::Int(1), None)],
        ));
        gp.node.push(node_proto(
            "Reshape",
            "",
            vec![flat_out, shape],
            vec![y],
            vec![],
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{import_model, ImportOptions};
    use graphc_passes::ir::text;

    fn roundtrip(src: &str, opset: i64) -> (ModelProto, Graph) {
        let g = text::parse(src).expect("test graph parses");
        let m = export_model(&g, opset).expect("exports");
        let bytes = m.encode_to_vec();
        let back = onnx_proto::decode_model(&bytes).expect("decodes");
        let g2 = import_model(&back, &ImportOptions::default()).expect("re-imports");
        (m, g2)
    }

    #[test]
    fn gemm_cast_and_names() {
        let src = r#"graph "g" (%a: f32[2,3], %b: f32[4,3]) {
  %y: f32[2,4] = gemm {alpha: 2.0, trans_b: 1} (%a, %b, _)
  %z: i64[2,4] = cast {to: i64} (%y)
  return %z as "out"
}"#;
        let (m, g2) = roundtrip(src, 21);
        let gp = m.graph.as_ref().unwrap();
        assert_eq!(m.ir_version, Some(10));
        let gemm = &gp.node[0];
        assert_eq!(gemm.op_type.as_deref(), Some("Gemm"));
        assert_eq!(gemm.input, vec!["a".to_string(), "b".to_string()]);
        let names: Vec<_> = gemm
            .attribute
            .iter()
            .map(|a| a.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["alpha", "transB"]);
        let cast = &gp.node[1];
        assert_eq!(cast.attribute[0].i, Some(7));
        // "z" is output under "out": it takes the output's name directly.
        assert_eq!(cast.output, vec!["out".to_string()]);
        assert_eq!(gp.output[0].name.as_deref(), Some("out"));
        assert_eq!(gp.value_info.len(), 1);
        assert!(text::print(&g2).contains("cast {to: i64}"));
    }

    #[test]
    fn input_returned_twice_and_defaults() {
        let src = r#"graph "g" (%x: f32[2] = f32[2] [1.0, 2.0]) {
  %c: f32[2] = constant {value: f32[2] [3.0, 4.0]}
  %y: f32[2] = add (%x, %c)
  return %x as "x", %y as "p", %y as "q"
}"#;
        let (m, g2) = roundtrip(src, 18);
        let gp = m.graph.as_ref().unwrap();
        assert_eq!(gp.initializer.len(), 2);
        assert_eq!(gp.initializer[0].name.as_deref(), Some("x"));
        assert_eq!(gp.initializer[1].name.as_deref(), Some("c"));
        // p binds directly, q needs a copy.
        assert_eq!(gp.node.len(), 2);
        assert_eq!(gp.node[1].op_type.as_deref(), Some("Identity"));
        let outs: Vec<_> = g2.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outs, ["x", "p", "q"]);
        assert!(matches!(
            g2.node(g2.inputs[0]).op,
            Op::Input { default: Some(_) }
        ));
    }

    #[test]
    fn refuses_bad_opsets_and_new_ops() {
        let g = text::parse("graph \"g\" (%x: f32[2]) {\n %y: f32[2] = gelu (%x)\n return %y\n}")
            .unwrap();
        assert!(matches!(export_model(&g, 17), Err(ExportError::Model(_))));
        assert!(matches!(
            export_model(&g, MAX_OPSET + 1),
            Err(ExportError::Model(_))
        ));
        let e = export_model(&g, 19).unwrap_err().to_string();
        assert!(e.contains("opset 20"), "{e}");
        assert!(export_model(&g, 20).is_ok());
    }

    #[test]
    fn duplicate_names_become_unique() {
        // Two values named "v" (the parser scopes names, so build it by renaming).
        let mut g = text::parse(
            "graph \"g\" (%x: f32[2]) {\n %a: f32[2] = neg (%x)\n %b: f32[2] = abs (%a)\n return %b\n}",
        )
        .unwrap();
        let ids: Vec<NodeId> = g.node_ids().to_vec();
        g.node_mut(ids[1]).outputs[0].name = "x".into();
        let m = export_model(&g, 21).unwrap();
        let gp = m.graph.unwrap();
        assert_eq!(gp.node[0].output, vec!["x_1".to_string()]);
        assert_eq!(gp.node[1].input, vec!["x_1".to_string()]);
    }

    #[test]
    fn write_model_is_atomic_and_readable() {
        let dir = std::env::temp_dir().join(format!("graphc-export-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let g =
            text::parse("graph \"g\" (%x: f32[N, ?]) {\n %y: f32[N, ?] = relu (%x)\n return %y\n}")
                .unwrap();
        let m = export_model(&g, 21).unwrap();
        let path = dir.join("m.onnx");
        write_model(&path, &m).unwrap();
        write_model(&path, &m).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        let g2 = crate::onnx::load_model(&path, vec![]).unwrap();
        assert_eq!(text::print(&g2), text::print(&g));
        assert!(write_model(&dir.join("missing/m.onnx"), &m).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
