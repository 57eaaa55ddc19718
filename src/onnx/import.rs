//! `ModelProto` -> [`Graph`].
//!
//! The walk: check the model's opsets; inline model-local functions; order each graph's
//! nodes topologically (refusing undefined values and cycles); then build IR nodes one by
//! one, normalizing older opsets (`normalize`), typing every output by shape inference merged
//! with what the model declares, and tracking small constant values so that shape arithmetic
//! resolves at import time. Subgraphs are imported recursively; the outer values they read
//! become explicit trailing inputs (see `Op::If`).

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;

use graphc_passes::infer::{infer_op, Fact};
use graphc_passes::ir::{
    Attr, Attrs, DType, Dim, Graph, GraphOutput, Node, NodeId, Op, Shape, Tensor, TypeInfo,
    ValueInfo, ValueRef,
};
use onnx_proto::{
    attribute_proto::AttributeType, type_proto, AttributeProto, FunctionProto, GraphProto,
    ModelProto, NodeProto, TypeProto,
};

use super::normalize::{normalize, In};
use super::tensor::{tensor_from_proto, DataDir};
use super::{ImportError, MAX_OPSET, MIN_OPSET};
use crate::limits::Limits;

/// Largest constant, in elements, evaluated at import time for shape arithmetic.
const FOLD_LIMIT: usize = 1024;

/// Options for importing a model.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Shapes that replace the declared shapes of named graph inputs.
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Where external data lives.
    pub data_dir: DataDir,
    /// Resource limits, checked before the work they bound.
    pub limits: Limits,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            input_shapes: vec![],
            data_dir: DataDir::None,
            limits: Limits::default(),
        }
    }
}

/// Reads and imports an `.onnx` file under the default [`Limits`]; external data resolves
/// relative to its folder.
pub fn load_model(
    path: &Path,
    input_shapes: Vec<(String, Vec<Dim>)>,
) -> Result<Graph, ImportError> {
    load_model_with(path, input_shapes, &Limits::default())
}

/// Reads and imports an `.onnx` file under `limits` (the file size is checked before it is
/// read); external data resolves relative to its folder.
pub fn load_model_with(
    path: &Path,
    input_shapes: Vec<(String, Vec<Dim>)>,
    limits: &Limits,
) -> Result<Graph, ImportError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| ImportError::Decode(format!("{}: {e}", path.display())))?;
    limits
        .check_model_bytes(meta.len())
        .map_err(|e| ImportError::Decode(format!("{}: {e}", path.display())))?;
    let bytes =
        std::fs::read(path).map_err(|e| ImportError::Decode(format!("{}: {e}", path.display())))?;
    if bytes.is_empty() {
        return Err(ImportError::Decode(format!(
            "{}: the file is empty",
            path.display()
        )));
    }
    let model = onnx_proto::decode_model(&bytes)
        .map_err(|e| ImportError::Decode(format!("{}: not an ONNX model ({e})", path.display())))?;
    let dir = path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    let data_dir = dir
        .map(|d| DataDir::Folder(d.to_path_buf()))
        .unwrap_or(DataDir::None);
    import_model(
        &model,
        &ImportOptions {
            input_shapes,
            data_dir,
            limits: *limits,
        },
    )
}

/// Imports a decoded model.
pub fn import_model(model: &ModelProto, opts: &ImportOptions) -> Result<Graph, ImportError> {
    let mut opset = None;
    for o in &model.opset_import {
        let domain = o.domain.as_deref().unwrap_or("");
        if domain.is_empty() || domain == "ai.onnx" {
            opset = Some(o.version.unwrap_or(0));
        }
    }
    let opset = opset.ok_or_else(|| {
        let others: Vec<String> = model.opset_import.iter().map(|o| o.domain.clone().unwrap_or_default()).collect();
        ImportError::Model(format!(
            "the model imports no default-domain opset (only: {}); graphc supports the default domain",
            others.join(", ")
        ))
    })?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(ImportError::Model(format!(
            "opset {opset} is not supported (graphc reads opsets {MIN_OPSET} to {MAX_OPSET})"
        )));
    }
    let gp = model
        .graph
        .as_ref()
        .ok_or_else(|| ImportError::Model("the model has no graph".into()))?;
    let functions = model
        .functions
        .iter()
        .map(|f| {
            (
                (
                    f.domain.clone().unwrap_or_default(),
                    f.name.clone().unwrap_or_default(),
                ),
                f,
            )
        })
        .collect();
    let ctx = Ctx {
        opset,
        functions,
        dir: opts.data_dir.clone(),
        overrides: &opts.input_shapes,
        limits: opts.limits,
        nodes: std::cell::Cell::new(0),
        inlined: Default::default(),
    };
    let mut fresh = 0usize;
    let (mut g, captures) = ctx.import_graph(gp, &[], &[], 0, true, &mut fresh)?;
    debug_assert!(captures.is_empty());
    // A whole-graph pass refines what per-node typing could not see (initializers that are
    // also inputs, values known only after folding).
    graphc_passes::infer::infer_graph(&mut g).map_err(|e| ImportError::Node {
        node: e.node,
        op: e.op,
        reason: e.reason,
    })?;
    for (name, _) in &opts.input_shapes {
        if !g.inputs.iter().any(|&i| g.node(i).outputs[0].name == *name) {
            return Err(ImportError::Model(format!(
                "--input-shape names '{name}', which is not a graph input"
            )));
        }
    }
    Ok(g)
}

struct Ctx<'a> {
    opset: i64,
    functions: HashMap<(String, String), &'a FunctionProto>,
    dir: DataDir,
    overrides: &'a [(String, Vec<Dim>)],
    limits: Limits,
    /// Nodes counted so far, subgraphs and inlined functions included.
    nodes: std::cell::Cell<usize>,
    /// How many nodes each model-local function inlines to (memoized).
    inlined: std::cell::RefCell<HashMap<(String, String), usize>>,
}

/// Describes a node for error messages: its name, or its first output when unnamed.
fn describe(n: &NodeProto) -> String {
    match n.name.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => match n.output.first() {
            Some(o) => format!("<unnamed, output '{o}'>"),
            None => "<unnamed>".to_string(),
        },
    }
}

fn node_err(n: &NodeProto, reason: impl Into<String>) -> ImportError {
    ImportError::Node {
        node: describe(n),
        op: n.op_type.clone().unwrap_or_default(),
        reason: reason.into(),
    }
}

/// Converts a `TypeProto` to a tensor type. `Ok(None)` when the element type is undefined.
pub fn type_from_proto(t: &TypeProto) -> Result<Option<TypeInfo>, String> {
    match &t.value {
        Some(type_proto::Value::TensorType(tt)) => {
            let code = tt.elem_type.unwrap_or(0);
            if code == 0 {
                return Ok(None);
            }
            let dtype = DType::from_onnx(code).ok_or_else(|| {
                format!(
                    "element type {} ({code}) is not supported",
                    DType::onnx_code_name(code)
                )
            })?;
            let shape =
                match &tt.shape {
                    None => Shape::Unranked,
                    Some(s) => Shape::Ranked(
                        s.dim
                            .iter()
                            .map(|d| match &d.value {
                                Some(
                                    onnx_proto::tensor_shape_proto::dimension::Value::DimValue(v),
                                ) if *v >= 0 => Ok(Dim::Known(*v as usize)),
                                Some(
                                    onnx_proto::tensor_shape_proto::dimension::Value::DimValue(v),
                                ) => Err(format!("negative dimension {v}")),
                                Some(
                                    onnx_proto::tensor_shape_proto::dimension::Value::DimParam(p),
                                ) if !p.is_empty() => Ok(Dim::Sym(p.clone())),
                                _ => Ok(Dim::Unknown),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                };
            Ok(Some(TypeInfo { dtype, shape }))
        }
        Some(type_proto::Value::SequenceType(_)) => Err("sequence types are not supported".into()),
        Some(type_proto::Value::MapType(_)) => Err("map types are not supported".into()),
        Some(type_proto::Value::OptionalType(_)) => Err("optional types are not supported".into()),
        Some(type_proto::Value::SparseTensorType(_)) => {
            Err("sparse tensor types are not supported".into())
        }
        Some(_) => Err("this value type is not supported".into()),
        None => Ok(None),
    }
}

/// Outer-scope names a graph reads, in order of first use (including those its own
/// subgraphs read and it does not define).
fn free_vars(g: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = HashSet::new();
    for i in &g.input {
        defined.insert(i.name.as_deref().unwrap_or(""));
    }
    for t in &g.initializer {
        defined.insert(t.name.as_deref().unwrap_or(""));
    }
    for n in &g.node {
        for o in &n.output {
            defined.insert(o);
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for n in &g.node {
        let mut used: Vec<String> = n.input.iter().filter(|s| !s.is_empty()).cloned().collect();
        for a in &n.attribute {
            for sub in a.g.iter().chain(a.graphs.iter()) {
                used.extend(free_vars(sub));
            }
        }
        for u in used {
            if !defined.contains(u.as_str()) && seen.insert(u.clone()) {
                out.push(u);
            }
        }
    }
    out
}

fn subgraph_free_vars(n: &NodeProto) -> Vec<String> {
    let mut out = Vec::new();
    for a in &n.attribute {
        for sub in a.g.iter().chain(a.graphs.iter()) {
            for v in free_vars(sub) {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

impl<'a> Ctx<'a> {
    /// Imports one graph. `formal_hints` type formal inputs that declare no type;
    /// `captures` (names and types) become trailing inputs. Returns the graph and the
    /// capture names in order.
    #[allow(clippy::too_many_arguments)]
    fn import_graph(
        &self,
        gp: &GraphProto,
        formal_hints: &[Option<TypeInfo>],
        captures: &[(String, TypeInfo)],
        depth: usize,
        top: bool,
        fresh: &mut usize,
    ) -> Result<(Graph, Vec<String>), ImportError> {
        self.limits.check_depth(depth).map_err(ImportError::Model)?;
        // Count the nodes, inlined functions expanded, before building anything.
        let mut count = 0usize;
        for n in &gp.node {
            count = count.saturating_add(self.inlined_len(n, depth)?);
        }
        self.count_nodes(count)?;
        let mut g = Graph::new(gp.name.clone().unwrap_or_default());
        let mut scope: HashMap<String, ValueRef> = HashMap::new();
        let mut consts: HashMap<ValueRef, Tensor> = HashMap::new();
        let mut declared: HashMap<&str, TypeInfo> = HashMap::new();
        for vi in gp.value_info.iter().chain(gp.output.iter()) {
            let name = vi.name.as_deref().unwrap_or("");
            if let Some(t) = &vi.r#type {
                match type_from_proto(t) {
                    Ok(Some(ty)) => {
                        self.limits
                            .check_type(&ty)
                            .map_err(|e| ImportError::Model(format!("value '{name}': {e}")))?;
                        declared.insert(name, ty);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ImportError::Model(format!("value '{name}': {e}"))),
                }
            }
        }
        if !gp.sparse_initializer.is_empty() {
            return Err(ImportError::Model(
                "sparse initializers are not supported".into(),
            ));
        }
        let mut inits: HashMap<String, Tensor> = HashMap::new();
        let mut init_order = Vec::new();
        for t in &gp.initializer {
            let name = t.name.clone().unwrap_or_default();
            self.limits
                .check_proto_dims(&t.dims)
                .map_err(|e| ImportError::Model(format!("initializer '{name}': {e}")))?;
            let v = tensor_from_proto(t, &self.dir)
                .map_err(|e| ImportError::Model(format!("initializer '{name}': {e}")))?;
            if inits.insert(name.clone(), v).is_some() {
                return Err(ImportError::Model(format!(
                    "initializer '{name}' is defined twice"
                )));
            }
            init_order.push(name);
        }
        // Formal inputs.
        for (i, vi) in gp.input.iter().enumerate() {
            let name = vi.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(ImportError::Model(format!("graph input {i} has no name")));
            }
            if scope.contains_key(&name) {
                return Err(ImportError::Model(format!(
                    "graph input '{name}' is declared twice"
                )));
            }
            let default = inits.remove(&name);
            let declared_ty = match &vi.r#type {
                Some(t) => type_from_proto(t)
                    .map_err(|e| ImportError::Model(format!("input '{name}': {e}")))?,
                None => None,
            };
            let mut ty = declared_ty
                .or_else(|| {
                    default.as_ref().map(|d| TypeInfo {
                        dtype: d.dtype(),
                        shape: Shape::known(d.shape()),
                    })
                })
                .or_else(|| formal_hints.get(i).cloned().flatten())
                .ok_or_else(|| ImportError::Model(format!("input '{name}' has no type")))?;
            if top {
                if let Some((_, dims)) = self.overrides.iter().find(|(n, _)| *n == name) {
                    ty.shape = Shape::Ranked(dims.clone());
                }
            }
            self.limits
                .check_type(&ty)
                .map_err(|e| ImportError::Model(format!("input '{name}': {e}")))?;
            if let Some(d) = &default {
                if d.dtype() != ty.dtype {
                    return Err(ImportError::Model(format!(
                        "input '{name}' is declared {} but its initializer is {}",
                        ty.dtype,
                        d.dtype()
                    )));
                }
            }
            let id = g.add_input(name.clone(), ty);
            if default.is_some() {
                g.node_mut(id).op = Op::Input { default };
            }
            scope.insert(name, ValueRef { node: id, port: 0 });
        }
        // Captured outer values.
        let mut capture_names = Vec::new();
        for (name, ty) in captures {
            let id = g.add_input(name.clone(), ty.clone());
            scope.insert(name.clone(), ValueRef { node: id, port: 0 });
            capture_names.push(name.clone());
        }
        // Initializers that are not inputs are constants.
        for name in init_order {
            if let Some(t) = inits.remove(&name) {
                let ty = TypeInfo {
                    dtype: t.dtype(),
                    shape: Shape::known(t.shape()),
                };
                let id = g.add_node(Node {
                    name: String::new(),
                    op: Op::Constant { value: t.clone() },
                    inputs: vec![],
                    outputs: vec![ValueInfo {
                        name: name.clone(),
                        ty,
                    }],
                });
                let v = ValueRef { node: id, port: 0 };
                scope.insert(name, v);
                consts.insert(v, t);
            }
        }
        let nodes = self.expand_functions(&gp.node, depth, fresh)?;
        let order = topo_order(&nodes, &scope)?;
        for i in order {
            self.import_node(
                &nodes[i],
                &mut g,
                &mut scope,
                &mut consts,
                &declared,
                depth,
                fresh,
            )?;
        }
        for (i, o) in gp.output.iter().enumerate() {
            let name = o.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(ImportError::Model(format!("graph output {i} has no name")));
            }
            let v = *scope.get(&name).ok_or_else(|| {
                ImportError::Model(format!("graph output '{name}' is not computed by any node"))
            })?;
            g.outputs.push(GraphOutput { name, value: v });
        }
        Ok((g, capture_names))
    }

    #[allow(clippy::too_many_arguments)]
    fn import_node(
        &self,
        n: &NodeProto,
        g: &mut Graph,
        scope: &mut HashMap<String, ValueRef>,
        consts: &mut HashMap<ValueRef, Tensor>,
        declared: &HashMap<&str, TypeInfo>,
        depth: usize,
        fresh: &mut usize,
    ) -> Result<(), ImportError> {
        let op_type = n.op_type.clone().unwrap_or_default();
        let domain = n.domain.as_deref().unwrap_or("");
        if !(domain.is_empty() || domain == "ai.onnx") {
            return Err(node_err(n, format!("domain '{domain}' is not supported")));
        }
        let mut inputs: Vec<In> = n
            .input
            .iter()
            .map(|s| {
                if s.is_empty() {
                    In::Absent
                } else {
                    In::Name(s.clone())
                }
            })
            .collect();
        while matches!(inputs.last(), Some(In::Absent)) {
            inputs.pop();
        }
        let lookup = |name: &str| scope.get(name).copied();
        let dtype_of = |i: usize| match n.input.get(i) {
            Some(s) if !s.is_empty() => lookup(s).map(|v| g.dtype(v)),
            _ => None,
        };
        // Attributes, with subgraphs imported here (they need this scope).
        let mut attrs = Attrs::new();
        let mut sub_captures: Vec<String> = Vec::new();
        let has_graphs = n
            .attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty());
        if has_graphs {
            sub_captures = subgraph_free_vars(n);
        }
        let capture_types: Vec<(String, TypeInfo)> = sub_captures
            .iter()
            .map(|c| {
                lookup(c)
                    .map(|v| (c.clone(), g.ty(v).clone()))
                    .ok_or_else(|| {
                        node_err(n, format!("a subgraph reads '{c}', which is not defined"))
                    })
            })
            .collect::<Result<_, _>>()?;
        for a in &n.attribute {
            let name = a.name.clone().unwrap_or_default();
            if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
                return Err(node_err(
                    n,
                    format!("attribute '{name}' refers to a function attribute outside a function"),
                ));
            }
            if let Some(sub) = &a.g {
                let hints = self.formal_hints(&op_type, n, &|i| dtype_of(i), g, scope);
                let (sg, _) =
                    self.import_graph(sub, &hints, &capture_types, depth + 1, false, fresh)?;
                attrs.insert(name, Attr::Graph(Box::new(sg)));
                continue;
            }
            let v = attr_from_proto(a, &self.dir, &self.limits)
                .map_err(|e| node_err(n, format!("attribute '{name}': {e}")))?;
            attrs.insert(name, v);
        }
        if matches!(op_type.as_str(), "Loop" | "Scan") {
            attrs.insert("num_captures", Attr::Int(sub_captures.len() as i64));
        }
        let op = if op_type == "Constant" {
            Op::Constant {
                value: constant_value(&mut attrs).map_err(|e| node_err(n, e))?,
            }
        } else {
            let name = normalize(&op_type, self.opset, &mut attrs, &mut inputs, &dtype_of)
                .map_err(|e| node_err(n, e))?;
            if name == "Constant"
                || name == "graphc.Input"
                || !Op::ONNX_NAMES.contains(&name.as_str())
            {
                return Err(node_err(n, "operator is not supported"));
            }
            match Op::build(&name, &mut attrs) {
                Ok(Some(op)) => op,
                Ok(None) => return Err(node_err(n, "operator is not supported")),
                Err(e) => return Err(node_err(n, e.to_string())),
            }
        };
        if let Some(extra) = attrs.remaining().first() {
            return Err(node_err(n, format!("attribute '{extra}' is not supported")));
        }
        let in0_dtype = dtype_of(0);
        // Materialize inputs.
        let mut refs: Vec<Option<ValueRef>> = Vec::with_capacity(inputs.len() + sub_captures.len());
        for inp in inputs {
            refs.push(match inp {
                In::Absent => None,
                In::Name(s) => Some(
                    lookup(&s).ok_or_else(|| node_err(n, format!("input '{s}' is not defined")))?,
                ),
                In::Const(t) => {
                    *fresh += 1;
                    let name = format!(
                        "{}__graphc_const{}",
                        n.output.first().cloned().unwrap_or_default(),
                        fresh
                    );
                    let ty = TypeInfo {
                        dtype: t.dtype(),
                        shape: Shape::known(t.shape()),
                    };
                    let id = g.add_node(Node {
                        name: String::new(),
                        op: Op::Constant { value: t.clone() },
                        inputs: vec![],
                        outputs: vec![ValueInfo { name, ty }],
                    });
                    let v = ValueRef { node: id, port: 0 };
                    consts.insert(v, t);
                    Some(v)
                }
            });
        }
        for c in &sub_captures {
            refs.push(lookup(c));
        }
        // Type the outputs: inference merged with declarations.
        let n_out = n.output.len();
        let facts: Vec<Option<Fact>> = refs
            .iter()
            .map(|r| {
                r.map(|v| Fact {
                    ty: g.ty(v),
                    value: consts.get(&v),
                })
            })
            .collect();
        let inferred = infer_op(&op, &facts, n_out);
        let mut outputs = Vec::with_capacity(n_out);
        for (i, name) in n.output.iter().enumerate() {
            let decl = declared.get(name.as_str());
            let ty = match (&inferred, decl) {
                (Ok(tys), d) if i < tys.len() => match d {
                    Some(d) => merge(&tys[i], d)
                        .map_err(|e| node_err(n, format!("output '{name}': {e}")))?,
                    None => tys[i].clone(),
                },
                (Err(e), _) if !e.starts_with("not implemented") => {
                    return Err(node_err(n, e.clone()))
                }
                (_, Some(d)) => d.clone(),
                _ => TypeInfo {
                    dtype: in0_dtype.unwrap_or(DType::F32),
                    shape: Shape::Unranked,
                },
            };
            self.limits
                .check_type(&ty)
                .map_err(|e| node_err(n, format!("output '{name}': {e}")))?;
            outputs.push(ValueInfo {
                name: name.clone(),
                ty,
            });
        }
        drop(facts);
        let values: Vec<Option<&Tensor>> = refs
            .iter()
            .map(|r| r.and_then(|v| consts.get(&v)))
            .collect();
        let foldable = !matches!(op, Op::Constant { .. })
            && refs.iter().flatten().count() > 0
            && values
                .iter()
                .zip(&refs)
                .all(|(v, r)| r.is_none() || v.is_some())
            && values.iter().flatten().all(|t| t.len() <= FOLD_LIMIT)
            && outputs
                .iter()
                .all(|o| o.ty.shape.num_elements().is_some_and(|k| k <= FOLD_LIMIT));
        let folded = if foldable && !has_graphs {
            graphc_passes::eval::eval_op(&op, &values, n_out).ok()
        } else {
            None
        };
        let const_value = if let Op::Constant { value } = &op {
            Some(value.clone())
        } else {
            None
        };
        let id: NodeId = g.add_node(Node {
            name: n.name.clone().unwrap_or_default(),
            op,
            inputs: refs,
            outputs,
        });
        for (i, name) in n.output.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let v = ValueRef {
                node: id,
                port: i as u32,
            };
            if scope.insert(name.clone(), v).is_some() {
                return Err(node_err(n, format!("output '{name}' is already defined")));
            }
        }
        if let Some(t) = const_value {
            consts.insert(ValueRef { node: id, port: 0 }, t);
        }
        if let Some(outs) = folded {
            for (i, t) in outs.into_iter().enumerate() {
                consts.insert(
                    ValueRef {
                        node: id,
                        port: i as u32,
                    },
                    t,
                );
            }
        }
        Ok(())
    }

    /// Types for a subgraph's formal inputs that the model leaves undeclared.
    fn formal_hints(
        &self,
        op_type: &str,
        n: &NodeProto,
        dtype_of: &dyn Fn(usize) -> Option<DType>,
        g: &Graph,
        scope: &HashMap<String, ValueRef>,
    ) -> Vec<Option<TypeInfo>> {
        let ty_of = |i: usize| -> Option<TypeInfo> {
            let s = n.input.get(i)?;
            scope.get(s).map(|v| g.ty(*v).clone())
        };
        match op_type {
            "Loop" => {
                let mut h = vec![
                    Some(TypeInfo {
                        dtype: DType::I64,
                        shape: Shape::Ranked(vec![]),
                    }),
                    Some(TypeInfo {
                        dtype: DType::Bool,
                        shape: Shape::Ranked(vec![]),
                    }),
                ];
                h.extend((2..n.input.len()).map(ty_of));
                h
            }
            "Scan" => (0..n.input.len())
                .map(|i| {
                    dtype_of(i).map(|d| TypeInfo {
                        dtype: d,
                        shape: Shape::Unranked,
                    })
                })
                .collect(),
            _ => vec![],
        }
    }

    /// Adds `k` nodes to the model's count, failing past the node limit.
    fn count_nodes(&self, k: usize) -> Result<(), ImportError> {
        let total = self.nodes.get().saturating_add(k);
        self.nodes.set(total);
        self.limits.check_nodes(total).map_err(ImportError::Model)
    }

    /// How many nodes `n` becomes once model-local functions are inlined (1 for an
    /// operator), computed without expanding anything (memoized per function).
    fn inlined_len(&self, n: &NodeProto, depth: usize) -> Result<usize, ImportError> {
        let key = (
            n.domain.clone().unwrap_or_default(),
            n.op_type.clone().unwrap_or_default(),
        );
        let Some(f) = self.functions.get(&key) else {
            return Ok(1);
        };
        if let Some(&k) = self.inlined.borrow().get(&key) {
            return Ok(k);
        }
        self.limits
            .check_depth(depth + 1)
            .map_err(|e| node_err(n, format!("calling a function: {e}")))?;
        let mut total = 0usize;
        for b in &f.node {
            total = total.saturating_add(self.inlined_len(b, depth + 1)?);
        }
        self.inlined.borrow_mut().insert(key, total);
        Ok(total)
    }

    /// Replaces calls of model-local functions by their bodies (recursively).
    fn expand_functions(
        &self,
        nodes: &[NodeProto],
        depth: usize,
        fresh: &mut usize,
    ) -> Result<Vec<NodeProto>, ImportError> {
        let mut out = Vec::with_capacity(nodes.len());
        for n in nodes {
            let key = (
                n.domain.clone().unwrap_or_default(),
                n.op_type.clone().unwrap_or_default(),
            );
            let Some(f) = self.functions.get(&key) else {
                out.push(n.clone());
                continue;
            };
            self.limits
                .check_depth(depth + 1)
                .map_err(|e| node_err(n, format!("calling a function: {e}")))?;
            *fresh += 1;
            let prefix = format!("{}__{}_{}__", key.1, describe(n), fresh);
            let mut rename: HashMap<String, String> = HashMap::new();
            for (i, formal) in f.input.iter().enumerate() {
                rename.insert(formal.clone(), n.input.get(i).cloned().unwrap_or_default());
            }
            for (i, formal) in f.output.iter().enumerate() {
                rename.insert(formal.clone(), n.output.get(i).cloned().unwrap_or_default());
            }
            let call_attrs: HashMap<&str, &AttributeProto> = n
                .attribute
                .iter()
                .map(|a| (a.name.as_deref().unwrap_or(""), a))
                .collect();
            let defaults: HashMap<&str, &AttributeProto> = f
                .attribute_proto
                .iter()
                .map(|a| (a.name.as_deref().unwrap_or(""), a))
                .collect();
            let mut body = Vec::with_capacity(f.node.len());
            for b in &f.node {
                let mut b = b.clone();
                let map = |s: &String, rename: &mut HashMap<String, String>| -> String {
                    if s.is_empty() {
                        return String::new();
                    }
                    rename
                        .entry(s.clone())
                        .or_insert_with(|| format!("{prefix}{s}"))
                        .clone()
                };
                b.input = b.input.iter().map(|s| map(s, &mut rename)).collect();
                b.output = b.output.iter().map(|s| map(s, &mut rename)).collect();
                let mut attrs = Vec::with_capacity(b.attribute.len());
                for a in &b.attribute {
                    match a.ref_attr_name.as_deref() {
                        Some(r) if !r.is_empty() => {
                            if let Some(src) = call_attrs.get(r).or_else(|| defaults.get(r)) {
                                let mut a2 = (*src).clone();
                                a2.name = a.name.clone();
                                attrs.push(a2);
                            }
                        }
                        _ => attrs.push(a.clone()),
                    }
                }
                b.attribute = attrs;
                body.push(b);
            }
            out.extend(self.expand_functions(&body, depth + 1, fresh)?);
        }
        Ok(out)
    }
}

/// Merges an inferred type with a declared one: the more precise wins; a conflict is an
/// error.
fn merge(inferred: &TypeInfo, declared: &TypeInfo) -> Result<TypeInfo, String> {
    if inferred.dtype != declared.dtype {
        return Err(format!(
            "inferred {inferred} but the model declares {declared}"
        ));
    }
    let shape = match (&inferred.shape, &declared.shape) {
        (Shape::Unranked, s) | (s, Shape::Unranked) => s.clone(),
        (Shape::Ranked(a), Shape::Ranked(b)) => {
            if a.len() != b.len() {
                return Err(format!(
                    "inferred {inferred} but the model declares {declared}"
                ));
            }
            Shape::Ranked(
                a.iter()
                    .zip(b)
                    .map(|(x, y)| match (x, y) {
                        (Dim::Known(p), Dim::Known(q)) if p != q => Err(format!(
                            "inferred {inferred} but the model declares {declared}"
                        )),
                        (Dim::Known(_), _) => Ok(x.clone()),
                        (_, Dim::Known(_)) => Ok(y.clone()),
                        (Dim::Sym(_), _) => Ok(x.clone()),
                        _ => Ok(y.clone()),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    Ok(TypeInfo {
        dtype: inferred.dtype,
        shape,
    })
}

/// The node order: file order where valid, otherwise the first topological order by file
/// position. Errors on undefined inputs, duplicate outputs and cycles.
fn topo_order(
    nodes: &[NodeProto],
    scope: &HashMap<String, ValueRef>,
) -> Result<Vec<usize>, ImportError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            if o.is_empty() {
                continue;
            }
            if scope.contains_key(o.as_str()) || producer.insert(o, i).is_some() {
                return Err(node_err(n, format!("output '{o}' is already defined")));
            }
        }
    }
    let mut succ: Vec<Vec<usize>> = vec![vec![]; nodes.len()];
    let mut indeg = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut deps: Vec<String> = n.input.iter().filter(|s| !s.is_empty()).cloned().collect();
        deps.extend(subgraph_free_vars(n));
        let mut seen = HashSet::new();
        for d in deps {
            if let Some(&j) = producer.get(d.as_str()) {
                if seen.insert(j) {
                    succ[j].push(i);
                    indeg[i] += 1;
                }
            } else if !scope.contains_key(&d) {
                return Err(node_err(n, format!("input '{d}' is not defined")));
            }
        }
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..nodes.len())
        .filter(|&i| indeg[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &succ[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.push(std::cmp::Reverse(j));
            }
        }
    }
    if order.len() != nodes.len() {
        let stuck = (0..nodes.len())
            .find(|&i| indeg[i] > 0)
            .expect("some node is on a cycle");
        return Err(node_err(
            &nodes[stuck],
            "the graph has a cycle through this node",
        ));
    }
    Ok(order)
}

/// Converts a non-graph attribute.
fn attr_from_proto(a: &AttributeProto, dir: &DataDir, limits: &Limits) -> Result<Attr, String> {
    let ty = a
        .r#type
        .and_then(|t| AttributeType::try_from(t).ok())
        .unwrap_or(AttributeType::Undefined);
    let ty = if ty == AttributeType::Undefined {
        // Older writers leave `type` unset: go by which field holds data.
        if a.f.is_some() {
            AttributeType::Float
        } else if a.i.is_some() {
            AttributeType::Int
        } else if a.s.is_some() {
            AttributeType::String
        } else if a.t.is_some() {
            AttributeType::Tensor
        } else if !a.floats.is_empty() {
            AttributeType::Floats
        } else if !a.ints.is_empty() {
            AttributeType::Ints
        } else if !a.strings.is_empty() {
            AttributeType::Strings
        } else {
            return Err("attribute has no type and no value".into());
        }
    } else {
        ty
    };
    let utf8 = |b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|_| "string is not valid UTF-8".to_string())
    };
    Ok(match ty {
        AttributeType::Float => Attr::Float(a.f.unwrap_or(0.0)),
        AttributeType::Int => Attr::Int(a.i.unwrap_or(0)),
        AttributeType::String => Attr::Str(utf8(a.s.as_deref().unwrap_or(&[]))?),
        AttributeType::Floats => Attr::Floats(a.floats.clone()),
        AttributeType::Ints => Attr::Ints(a.ints.clone()),
        AttributeType::Strings => Attr::Strs(
            a.strings
                .iter()
                .map(|s| utf8(s))
                .collect::<Result<_, _>>()?,
        ),
        AttributeType::Tensor => {
            let t = a.t.as_ref().ok_or("tensor attribute has no tensor")?;
            limits.check_proto_dims(&t.dims)?;
            Attr::Tensor(tensor_from_proto(t, dir)?)
        }
        other => {
            return Err(format!(
                "attributes of type {} are not supported",
                other.as_str_name()
            ))
        }
    })
}

/// The value of a `Constant` node from whichever of its attribute forms is present.
fn constant_value(attrs: &mut Attrs) -> Result<Tensor, String> {
    let forms = [
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
        "value_string",
        "value_strings",
        "sparse_value",
    ];
    let present: Vec<&str> = forms
        .iter()
        .copied()
        .filter(|f| attrs.contains(f))
        .collect();
    if present.len() != 1 {
        return Err(format!(
            "a Constant needs exactly one value attribute, found {}",
            present.len()
        ));
    }
    let a = attrs.take(present[0]).expect("present");
    let vec1 = |t: Result<Tensor, String>| t;
    match (present[0], a) {
        ("value", Attr::Tensor(t)) => Ok(t),
        ("value_float", Attr::Float(f)) => Ok(Tensor::scalar(f)),
        ("value_floats", Attr::Floats(v)) => vec1(Tensor::from_vec(&[v.len()], v)),
        ("value_int", Attr::Int(i)) => Ok(Tensor::scalar(i)),
        ("value_ints", Attr::Ints(v)) => vec1(Tensor::from_vec(&[v.len()], v)),
        ("value_string", Attr::Str(s)) => Ok(Tensor::scalar(s)),
        ("value_strings", Attr::Strs(v)) => vec1(Tensor::from_vec(&[v.len()], v)),
        (f, a) => Err(format!(
            "attribute '{f}' of kind {} is not supported",
            a.kind()
        )),
    }
}
