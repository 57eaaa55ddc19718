//! The printer. It never panics, even on a graph that fails verification (dangling value
//! references print as `%<invalid ...>`), so it can dump broken graphs while debugging.

use std::collections::HashSet;
use std::fmt::Write;

use super::elem::{write_string, TextElem};
use super::{is_bare_name, is_bare_sym};
use crate::ir::attr::Attr;
use crate::ir::graph::{Graph, Node, ValueRef};
use crate::ir::op::Op;
use crate::ir::tensor::Tensor;
use crate::ir::types::{Dim, Shape, TypeInfo};

/// Number of leading values shown for an abbreviated tensor.
const PREVIEW: usize = 4;

/// Header lines longer than this put one parameter per line.
const HEADER_WIDTH: usize = 100;

pub(super) fn print_graph(g: &Graph, inline_limit: usize) -> String {
    let mut p = Printer {
        out: String::new(),
        indent: 0,
        inline_limit,
    };
    p.graph(g);
    p.out.push('\n');
    p.out
}

struct Printer {
    out: String,
    indent: usize,
    inline_limit: usize,
}

impl Printer {
    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    fn graph(&mut self, g: &Graph) {
        let params: Vec<String> = g.inputs.iter().map(|&id| self.param(g, id)).collect();
        let start = self.out.len();
        self.out.push_str("graph ");
        write_string(&g.name, &mut self.out);
        self.out.push_str(" (");
        let inline_len: usize = params.iter().map(|p| p.len() + 2).sum();
        if self.out.len() - start + inline_len + self.indent * 2 <= HEADER_WIDTH {
            self.out.push_str(&params.join(", "));
        } else {
            self.indent += 1;
            for p in &params {
                self.newline();
                self.out.push_str(p);
                self.out.push(',');
            }
            self.indent -= 1;
            self.newline();
        }
        self.out.push_str(") {");
        self.indent += 1;
        let header: HashSet<_> = g.inputs.iter().collect();
        for (id, node) in g.nodes() {
            if !header.contains(&id) {
                self.newline();
                self.node(g, node);
            }
        }
        self.newline();
        self.out.push_str("return");
        for (i, o) in g.outputs.iter().enumerate() {
            self.out.push_str(if i == 0 { " " } else { ", " });
            self.value_ref(g, o.value);
            if !valid(g, o.value) || g.value(o.value).name != o.name {
                self.out.push_str(" as ");
                write_string(&o.name, &mut self.out);
            }
        }
        self.indent -= 1;
        self.newline();
        self.out.push('}');
    }

    /// One header parameter: `%x: f32[2] = <default> @name`.
    fn param(&mut self, g: &Graph, id: crate::ir::graph::NodeId) -> String {
        let mut s = String::new();
        if !g.contains(id) {
            let _ = write!(s, "%<invalid node {}>", id.index());
            return s;
        }
        let node = g.node(id);
        match node.outputs.first() {
            Some(v) => write_def(&mut s, &v.name, &v.ty),
            None => s.push_str("%<no output>"),
        }
        if let Op::Input { default: Some(t) } = &node.op {
            s.push_str(" = ");
            write_tensor(&mut s, t, self.inline_limit);
        } else if !matches!(node.op, Op::Input { .. }) {
            let _ = write!(s, " = <not an input: {}>", node.op.name());
        }
        if !node.name.is_empty() {
            s.push_str(" @");
            write_name(&mut s, &node.name);
        }
        s
    }

    fn node(&mut self, g: &Graph, node: &Node) {
        for (i, v) in node.outputs.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            write_def(&mut self.out, &v.name, &v.ty);
        }
        if !node.outputs.is_empty() {
            self.out.push_str(" = ");
        }
        self.out.push_str(node.op.name());
        let attrs = node.op.attrs();
        if !attrs.is_empty() {
            let multiline = attrs.iter().any(|(_, a)| matches!(a, Attr::Graph(_)));
            self.out.push_str(" {");
            self.indent += 1;
            for (i, (name, value)) in attrs.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                    if !multiline {
                        self.out.push(' ');
                    }
                }
                if multiline {
                    self.newline();
                }
                self.out.push_str(name);
                self.out.push_str(": ");
                self.attr(value);
            }
            self.indent -= 1;
            if multiline {
                self.newline();
            }
            self.out.push('}');
        }
        if !node.inputs.is_empty() {
            self.out.push_str(" (");
            for (i, inp) in node.inputs.iter().enumerate() {
                if i > 0 {
                    self.out.push_str(", ");
                }
                match inp {
                    Some(v) => self.value_ref(g, *v),
                    None => self.out.push('_'),
                }
            }
            self.out.push(')');
        }
        if !node.name.is_empty() {
            self.out.push_str(" @");
            write_name(&mut self.out, &node.name);
        }
    }

    fn attr(&mut self, a: &Attr) {
        let out = &mut self.out;
        match a {
            Attr::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Attr::Float(v) => v.write(out),
            Attr::Str(s) if crate::ir::types::DType::from_name(s).is_some() => out.push_str(s),
            Attr::Str(s) => write_string(s, out),
            Attr::Ints(v) => write_list(out, v),
            Attr::Floats(v) => write_list(out, v),
            Attr::Strs(v) => write_list(out, v),
            Attr::Tensor(t) => write_tensor(out, t, self.inline_limit),
            Attr::Graph(g) => self.graph(g),
        }
    }

    fn value_ref(&mut self, g: &Graph, v: ValueRef) {
        if valid(g, v) {
            self.out.push('%');
            write_name(&mut self.out, &g.value(v).name);
        } else {
            let _ = write!(
                self.out,
                "%<invalid node {} port {}>",
                v.node.index(),
                v.port
            );
        }
    }
}

fn valid(g: &Graph, v: ValueRef) -> bool {
    g.contains(v.node) && (v.port as usize) < g.node(v.node).outputs.len()
}

/// `%name: type`.
fn write_def(out: &mut String, name: &str, ty: &TypeInfo) {
    out.push('%');
    write_name(out, name);
    out.push_str(": ");
    write_type(out, ty);
}

/// A value or node name, bare when possible.
pub(super) fn write_name(out: &mut String, name: &str) {
    if is_bare_name(name) {
        out.push_str(name);
    } else {
        write_string(name, out);
    }
}

fn write_type(out: &mut String, ty: &TypeInfo) {
    out.push_str(ty.dtype.name());
    match &ty.shape {
        Shape::Unranked => out.push_str("[..]"),
        Shape::Ranked(dims) => {
            out.push('[');
            for (i, d) in dims.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match d {
                    Dim::Known(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Dim::Unknown => out.push('?'),
                    Dim::Sym(s) if is_bare_sym(s) => out.push_str(s),
                    Dim::Sym(s) => write_string(s, out),
                }
            }
            out.push(']');
        }
    }
}

fn write_list<T: TextElem>(out: &mut String, items: &[T]) {
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        x.write(out);
    }
    out.push(']');
}

/// `dtype[shape] [values]`, or `dtype[shape] #digest [v0, v1, ... N values]` when the tensor
/// has more than `inline_limit` elements.
fn write_tensor(out: &mut String, t: &Tensor, inline_limit: usize) {
    out.push_str(t.dtype().name());
    out.push('[');
    for (i, d) in t.shape().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{d}");
    }
    out.push_str("] ");
    let n = t.len();
    if n <= inline_limit {
        crate::dispatch!(t, a => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                x.write(out);
            }
            out.push(']');
        });
    } else {
        let _ = write!(out, "#{:016x} [", t.digest());
        crate::dispatch!(t, a => {
            for x in a.iter().take(PREVIEW) {
                x.write(out);
                out.push_str(", ");
            }
        });
        let _ = write!(out, "... {n} values]");
    }
}
