//! The parser: scannerless recursive descent over the text, one method per grammar rule (see
//! the module docs of `text`). It never panics: every malformed input is a [`ParseError`]
//! with a line and column, subgraph nesting is bounded, and nothing is allocated from sizes
//! written in the text (a tensor's data is read before its shape is trusted).

use std::collections::HashMap;

use super::elem::{with_elem, TextElem};
use super::is_name_char;
use super::shown_value;
use crate::ir::attr::{Attr, Attrs};
use crate::ir::graph::{Graph, GraphOutput, Node, ValueInfo, ValueRef};
use crate::ir::op::{BuildError, Op};
use crate::ir::tensor::Tensor;
use crate::ir::types::{DType, Dim, Shape, TypeInfo};
use crate::ir::verify;

/// A syntax or semantic error in IR text, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// Deepest subgraph nesting accepted.
const MAX_DEPTH: usize = 64;

pub(super) fn parse_graph_text(
    text: &str,
    constants: Option<&HashMap<u64, Tensor>>,
) -> Result<Graph, ParseError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        constants,
        depth: 0,
    };
    let start = p.pos();
    let g = p.graph()?;
    let end = p.pos();
    if end < text.len() {
        return Err(p.err_at(
            end,
            format!("expected end of input, found {}", p.found_at(end)),
        ));
    }
    // The checks above make this unreachable; it keeps "parse only returns verified graphs"
    // true by construction.
    verify::verify(&g)
        .map_err(|e| p.err_at(start, format!("the graph fails verification: {e}")))?;
    Ok(g)
}

/// Values defined so far in one graph: name, value, and where it was defined.
type Scope = HashMap<String, (ValueRef, usize)>;

pub(crate) struct Parser<'a> {
    src: &'a str,
    pos: usize,
    constants: Option<&'a HashMap<u64, Tensor>>,
    depth: usize,
}

impl<'a> Parser<'a> {
    // ---- lexical helpers ----

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                Some(';') => match self.rest().find('\n') {
                    Some(i) => self.pos += i + 1,
                    None => self.pos = self.src.len(),
                },
                _ => return,
            }
        }
    }

    /// Skips whitespace and returns the position of the next token.
    pub(super) fn pos(&mut self) -> usize {
        self.skip_ws();
        self.pos
    }

    /// Consumes `s` if it comes next.
    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), ParseError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.err(format!("expected '{s}', found {}", self.found_at(self.pos))))
        }
    }

    /// An identifier `[A-Za-z_][A-Za-z0-9_]*`, consumed.
    pub(super) fn ident(&mut self) -> Option<&'a str> {
        let id = self.peek_ident()?;
        self.pos += id.len();
        Some(id)
    }

    /// The identifier that comes next, not consumed.
    fn peek_ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let first = rest.chars().next()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        Some(&rest[..len])
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if self.peek_ident() == Some(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// A number token: `-`? then digits with an optional fraction and exponent, or a word
    /// (`inf`, `NaN`), or `NaN(0x<hex>)`. Returns its position and text.
    pub(super) fn number(&mut self) -> Result<(usize, &'a str), ParseError> {
        let start = self.pos();
        let bytes = self.src.as_bytes();
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let body = i;
        if bytes.get(i).is_some_and(|b| b.is_ascii_alphabetic()) {
            while bytes.get(i).is_some_and(|b| b.is_ascii_alphabetic()) {
                i += 1;
            }
            if &self.src[body..i] == "NaN" && self.src[i..].starts_with("(0x") {
                let close = self.src[i..].find(')').map(|j| i + j + 1);
                if let Some(end) = close.filter(|&e| {
                    self.src[i + 3..e - 1]
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit())
                }) {
                    i = end;
                }
            }
        } else {
            while let Some(&b) = bytes.get(i) {
                let exp_sign =
                    (b == b'+' || b == b'-') && i > body && matches!(bytes[i - 1], b'e' | b'E');
                if b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || exp_sign {
                    i += 1;
                } else {
                    break;
                }
            }
        }
        if i == body {
            return Err(self.err_at(
                start,
                format!("expected a number, found {}", self.found_at(start)),
            ));
        }
        self.pos = i;
        Ok((start, &self.src[start..i]))
    }

    /// A double-quoted string with escapes.
    pub(super) fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos();
        if !self.eat("\"") {
            return Err(self.err(format!("expected a string, found {}", self.found_at(start))));
        }
        let mut out = String::new();
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else {
                return Err(self.err_at(start, "unterminated string".into()));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else { continue };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        'u' => out.push(self.unicode_escape(at)?),
                        _ => return Err(self.err_at(at, format!("unknown escape '\\{e}'"))),
                    }
                }
                c => out.push(c),
            }
        }
    }

    /// The `{hex}` of a `\u{hex}` escape that starts at `at`.
    fn unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let rest = self.rest();
        let bad = || "bad unicode escape (expected \\u{hex})".to_string();
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.find('}').map(|j| &r[..j]));
        let code = inner
            .filter(|h| !h.is_empty() && h.len() <= 6)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err_at(at, bad()))?;
        let c = char::from_u32(code).ok_or_else(|| {
            self.err_at(at, format!("\\u{{{code:x}}} is not a unicode scalar value"))
        })?;
        self.pos += inner.map_or(0, str::len) + 2;
        Ok(c)
    }

    /// A name right after its sigil (`%` or `@`): bare or quoted.
    fn name(&mut self) -> Result<String, ParseError> {
        if self.peek() == Some('"') {
            return self.string();
        }
        let rest = self.rest();
        let mut len = 0;
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next_ok = chars.peek().is_some_and(|&(_, n)| is_name_char(n));
            if !is_name_char(c) || (c == ':' && !next_ok) {
                break;
            }
            len = i + c.len_utf8();
        }
        if len == 0 {
            return Err(self.err(format!(
                "expected a name, found {}",
                self.found_at(self.pos)
            )));
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }

    /// `%name`: returns where it starts and the name.
    fn value_name(&mut self) -> Result<(usize, String), ParseError> {
        let at = self.pos();
        if !self.eat("%") {
            return Err(self.err(format!(
                "expected a value (%name), found {}",
                self.found_at(at)
            )));
        }
        Ok((at, self.name()?))
    }

    /// The `:` between a value name and its type.
    fn type_colon(&mut self, name: &str) -> Result<(), ParseError> {
        match self.expect(":") {
            Err(mut e) if name.contains(':') => {
                e.message += " (a value name may contain ':', so put a space after it)";
                Err(e)
            }
            r => r,
        }
    }

    // ---- errors ----

    pub(super) fn err_at(&self, pos: usize, message: String) -> ParseError {
        let mut pos = pos.min(self.src.len());
        while !self.src.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &self.src[..pos];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        ParseError { line, col, message }
    }

    fn err(&mut self, message: String) -> ParseError {
        let pos = self.pos();
        self.err_at(pos, message)
    }

    /// Describes the token at `pos` for "found ..." messages.
    pub(super) fn found_at(&self, pos: usize) -> String {
        let rest = self.src.get(pos..).unwrap_or("");
        let Some(first) = rest.chars().next() else {
            return "end of input".into();
        };
        let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
        if word(first) {
            let len = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            let w: String = rest[..len].chars().take(24).collect();
            format!("'{w}'")
        } else {
            format!("'{first}'")
        }
    }

    // ---- types and tensors ----

    fn dtype(&mut self) -> Result<DType, ParseError> {
        let at = self.pos();
        match self.ident() {
            Some(name) => DType::from_name(name)
                .ok_or_else(|| self.err_at(at, format!("unknown element type '{name}'"))),
            None => Err(self.err_at(
                at,
                format!("expected an element type, found {}", self.found_at(at)),
            )),
        }
    }

    fn ty(&mut self) -> Result<TypeInfo, ParseError> {
        let dtype = self.dtype()?;
        self.expect("[")?;
        if self.eat("..") {
            self.expect("]")?;
            return Ok(TypeInfo {
                dtype,
                shape: Shape::Unranked,
            });
        }
        let mut dims = Vec::new();
        if !self.eat("]") {
            loop {
                let at = self.pos();
                let dim = match self.peek() {
                    Some('?') => {
                        self.pos += 1;
                        Dim::Unknown
                    }
                    Some('"') => Dim::Sym(self.string()?),
                    Some(c) if c.is_ascii_digit() => Dim::Known(self.usize()?),
                    _ => match self.ident() {
                        Some(s) => Dim::Sym(s.to_string()),
                        None => {
                            return Err(self.err_at(
                                at,
                                format!("expected a dimension, found {}", self.found_at(at)),
                            ))
                        }
                    },
                };
                dims.push(dim);
                if !self.eat(",") {
                    self.expect("]")?;
                    break;
                }
            }
        }
        Ok(TypeInfo {
            dtype,
            shape: Shape::Ranked(dims),
        })
    }

    fn usize(&mut self) -> Result<usize, ParseError> {
        let (at, tok) = self.number()?;
        tok.parse()
            .map_err(|_| self.err_at(at, format!("expected a dimension size, found '{tok}'")))
    }

    /// `dtype[d0,d1,...]` followed by the data or a digest.
    fn tensor(&mut self) -> Result<Tensor, ParseError> {
        let at = self.pos();
        let dtype = self.dtype()?;
        self.expect("[")?;
        let mut shape = Vec::new();
        if !self.eat("]") {
            loop {
                shape.push(self.usize()?);
                if !self.eat(",") {
                    self.expect("]")?;
                    break;
                }
            }
        }
        let ty = TypeInfo {
            dtype,
            shape: Shape::known(&shape),
        };
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let count = count.ok_or_else(|| self.err_at(at, format!("tensor {ty} is too large")))?;
        if self.eat("#") {
            return self.digest_tensor(at, &ty, count);
        }
        self.expect("[")?;
        with_elem!(dtype, T => {
            let values: Vec<T> = self.elems(|_| false)?;
            if values.len() != count {
                return Err(self.err_at(at, format!("tensor {ty} needs {count} values, found {}", values.len())));
            }
            Tensor::from_vec(&shape, values).map_err(|e| self.err_at(at, e))
        })
    }

    /// Elements up to `]` (consumed), or up to where `stop` sees a token it wants to handle.
    fn elems<T: TextElem>(
        &mut self,
        stop: impl Fn(&mut Self) -> bool,
    ) -> Result<Vec<T>, ParseError> {
        let mut values = Vec::new();
        if self.eat("]") {
            return Ok(values);
        }
        loop {
            if stop(self) {
                return Ok(values);
            }
            values.push(T::read(self)?);
            if !self.eat(",") {
                self.expect("]")?;
                return Ok(values);
            }
        }
    }

    /// After `#`: the digest, then `[v0, ..., ... N values]`; the data comes from the
    /// constants map.
    fn digest_tensor(
        &mut self,
        at: usize,
        ty: &TypeInfo,
        count: usize,
    ) -> Result<Tensor, ParseError> {
        let hex_len = self
            .rest()
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(self.rest().len());
        let digest = u64::from_str_radix(&self.rest()[..hex_len], 16)
            .ok()
            .filter(|_| hex_len == 16)
            .ok_or_else(|| {
                self.err(format!(
                    "expected 16 hex digits after '#', found {}",
                    self.found_at(self.pos)
                ))
            })?;
        self.pos += hex_len;
        self.expect("[")?;
        with_elem!(ty.dtype, T => { self.elems::<T>(|p| p.peek_ellipsis())?; });
        self.expect("...")?;
        let (n_at, n) = self.number()?;
        if n.parse::<usize>().ok() != Some(count) {
            return Err(self.err_at(n_at, format!("tensor {ty} has {count} values, not {n}")));
        }
        if !self.keyword("values") {
            return Err(self.err(format!(
                "expected 'values', found {}",
                self.found_at(self.pos)
            )));
        }
        self.expect("]")?;
        let Some(map) = self.constants else {
            return Err(self.err_at(
                at,
                format!("constant #{digest:016x} has no data; use parse_with_constants"),
            ));
        };
        let t = map.get(&digest).ok_or_else(|| {
            self.err_at(
                at,
                format!("constant #{digest:016x} is not in the constants map"),
            )
        })?;
        let found = TypeInfo {
            dtype: t.dtype(),
            shape: Shape::known(t.shape()),
        };
        if found != *ty {
            return Err(self.err_at(
                at,
                format!("constant #{digest:016x} is {found} in the constants map, not {ty}"),
            ));
        }
        Ok(t.clone())
    }

    fn peek_ellipsis(&mut self) -> bool {
        self.skip_ws();
        self.rest().starts_with("...")
    }

    // ---- attributes ----

    fn attr_value(&mut self) -> Result<Attr, ParseError> {
        let at = self.pos();
        match self.peek() {
            Some('"') => Ok(Attr::Str(self.string()?)),
            Some('[') => {
                self.pos += 1;
                self.attr_list()
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.attr_number(),
            _ => match self.peek_ident() {
                Some("graph") => {
                    if self.depth >= MAX_DEPTH {
                        return Err(self.err_at(
                            at,
                            format!("subgraphs nested deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                    self.depth += 1;
                    let g = self.graph();
                    self.depth -= 1;
                    Ok(Attr::Graph(Box::new(g?)))
                }
                Some("inf" | "NaN") => self.attr_number(),
                Some(name) if DType::from_name(name).is_some() => {
                    self.pos += name.len();
                    self.skip_ws();
                    if self.peek() == Some('[') {
                        self.pos = at;
                        Ok(Attr::Tensor(self.tensor()?))
                    } else {
                        Ok(Attr::Str(name.to_string()))
                    }
                }
                Some(name) => Err(self.err_at(
                    at,
                    format!("unexpected '{name}' in an attribute value (strings are quoted)"),
                )),
                None => Err(self.err_at(
                    at,
                    format!("expected an attribute value, found {}", self.found_at(at)),
                )),
            },
        }
    }

    /// An `Attr::Int` or an `Attr::Float`, told apart by their spelling.
    fn attr_number(&mut self) -> Result<Attr, ParseError> {
        let (at, tok) = self.number()?;
        let digits = tok.strip_prefix('-').unwrap_or(tok);
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            let v = tok
                .parse()
                .map_err(|_| self.err_at(at, format!("integer {tok} out of range")))?;
            return Ok(Attr::Int(v));
        }
        self.pos = at;
        Ok(Attr::Float(f32::read(self)?))
    }

    /// After `[`: a list of ints, floats or strings.
    fn attr_list(&mut self) -> Result<Attr, ParseError> {
        let at = self.pos - 1;
        let (mut ints, mut floats, mut strs) = (vec![], vec![], vec![]);
        let mut all_ints = true;
        if !self.eat("]") {
            loop {
                self.skip_ws();
                match self.peek() {
                    Some('"') => strs.push(self.string()?),
                    _ => match self.attr_number()? {
                        Attr::Int(v) => {
                            ints.push(v);
                            floats.push(v as f32);
                        }
                        Attr::Float(v) => {
                            all_ints = false;
                            floats.push(v);
                        }
                        _ => {}
                    },
                }
                if !self.eat(",") {
                    self.expect("]")?;
                    break;
                }
            }
        }
        match (strs.is_empty(), floats.is_empty()) {
            (false, false) => Err(self.err_at(at, "a list mixes strings and numbers".into())),
            (false, true) => Ok(Attr::Strs(strs)),
            _ if all_ints => Ok(Attr::Ints(ints)),
            _ => Ok(Attr::Floats(floats)),
        }
    }

    /// `{name: value, ...}` into an attribute bag, with each name's position.
    fn attrs(&mut self) -> Result<(Attrs, HashMap<String, usize>), ParseError> {
        let mut attrs = Attrs::new();
        let mut at_of = HashMap::new();
        self.expect("{")?;
        loop {
            if self.eat("}") {
                break;
            }
            let at = self.pos();
            let Some(name) = self.ident() else {
                return Err(self.err_at(
                    at,
                    format!("expected an attribute name, found {}", self.found_at(at)),
                ));
            };
            self.expect(":")?;
            let value = self.attr_value()?;
            if at_of.insert(name.to_string(), at).is_some() {
                return Err(self.err_at(at, format!("duplicate attribute '{name}'")));
            }
            attrs.insert(name, value);
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        Ok((attrs, at_of))
    }

    // ---- graphs ----

    fn graph(&mut self) -> Result<Graph, ParseError> {
        if !self.keyword("graph") {
            return Err(self.err(format!(
                "expected 'graph', found {}",
                self.found_at(self.pos)
            )));
        }
        let mut g = Graph::new(self.string()?);
        let mut scope = Scope::new();
        self.expect("(")?;
        while !self.eat(")") {
            self.param(&mut g, &mut scope)?;
            if !self.eat(",") {
                self.expect(")")?;
                break;
            }
        }
        self.expect("{")?;
        loop {
            let at = self.pos();
            match self.peek() {
                Some('%') => self.node(&mut g, &mut scope)?,
                _ => match self.peek_ident() {
                    Some("return") => break,
                    Some(_) => self.node(&mut g, &mut scope)?,
                    None => {
                        return Err(self.err_at(
                            at,
                            format!("expected a node or 'return', found {}", self.found_at(at)),
                        ))
                    }
                },
            }
        }
        self.keyword("return");
        self.skip_ws();
        if self.peek() == Some('%') {
            loop {
                let (at, name) = self.value_name()?;
                let value = lookup(self, &scope, at, &name)?;
                let export = if self.keyword("as") {
                    self.string()?
                } else {
                    name
                };
                g.outputs.push(GraphOutput {
                    name: export,
                    value,
                });
                if !self.eat(",") {
                    break;
                }
            }
        }
        self.expect("}")?;
        Ok(g)
    }

    /// A header parameter: an `input` node.
    fn param(&mut self, g: &mut Graph, scope: &mut Scope) -> Result<(), ParseError> {
        let (at, name) = self.value_name()?;
        self.type_colon(&name)?;
        let ty = self.ty()?;
        let mut default = None;
        if self.eat("=") {
            let t_at = self.pos();
            let t = self.tensor()?;
            if let Err(e) = verify::check_default(&ty, &t) {
                return Err(self.err_at(t_at, e));
            }
            default = Some(t);
        }
        let node_name = if self.eat("@") {
            self.name()?
        } else {
            String::new()
        };
        let id = g.add_node(Node {
            name: node_name,
            op: Op::Input { default },
            inputs: vec![],
            outputs: vec![ValueInfo {
                name: name.clone(),
                ty,
            }],
        });
        g.inputs.push(id);
        define(self, scope, name, ValueRef { node: id, port: 0 }, at)
    }

    /// `%a: t, %b: t = op {attrs} (args) @name`.
    fn node(&mut self, g: &mut Graph, scope: &mut Scope) -> Result<(), ParseError> {
        let mut results = Vec::new();
        if self.peek() == Some('%') {
            loop {
                let (at, name) = self.value_name()?;
                self.type_colon(&name)?;
                results.push((
                    at,
                    ValueInfo {
                        name,
                        ty: self.ty()?,
                    },
                ));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("=")?;
        }
        let op_at = self.pos();
        let Some(op_name) = self.ident() else {
            return Err(self.err_at(
                op_at,
                format!("expected an op name, found {}", self.found_at(op_at)),
            ));
        };
        self.skip_ws();
        let (mut attrs, attr_at) = if self.peek() == Some('{') {
            self.attrs()?
        } else {
            (Attrs::new(), HashMap::new())
        };
        let mut inputs = Vec::new();
        if self.eat("(") {
            while !self.eat(")") {
                let at = self.pos();
                if self.peek() == Some('%') {
                    let (at, name) = self.value_name()?;
                    inputs.push(Some(lookup(self, scope, at, &name)?));
                } else if self.keyword("_") {
                    inputs.push(None);
                } else {
                    return Err(self.err_at(
                        at,
                        format!("expected a value or '_', found {}", self.found_at(at)),
                    ));
                }
                if !self.eat(",") {
                    self.expect(")")?;
                    break;
                }
            }
        }
        let name = if self.eat("@") {
            self.name()?
        } else {
            String::new()
        };
        let op = self.build_op(op_at, op_name, &mut attrs, &attr_at)?;
        if let Op::Constant { value } = &op {
            let want = TypeInfo {
                dtype: value.dtype(),
                shape: Shape::known(value.shape()),
            };
            match results.as_slice() {
                [(_, v)] if v.ty == want => {}
                [(at, v)] => {
                    return Err(self.err_at(
                        *at,
                        format!("constant of type {want} defines a value of type {}", v.ty),
                    ))
                }
                _ => return Err(self.err_at(op_at, "a constant defines exactly one value".into())),
            }
        }
        let outputs: Vec<ValueInfo> = results.iter().map(|(_, v)| v.clone()).collect();
        let id = g.add_node(Node {
            name,
            op,
            inputs,
            outputs,
        });
        for (port, (at, v)) in results.into_iter().enumerate() {
            define(
                self,
                scope,
                v.name,
                ValueRef {
                    node: id,
                    port: port as u32,
                },
                at,
            )?;
        }
        Ok(())
    }

    fn build_op(
        &self,
        at: usize,
        name: &str,
        attrs: &mut Attrs,
        attr_at: &HashMap<String, usize>,
    ) -> Result<Op, ParseError> {
        if name == "input" {
            return Err(self.err_at(at, "input nodes are declared in the graph header".into()));
        }
        if !Op::TEXT_NAMES.contains(&name) {
            let hint = Op::ONNX_NAMES
                .iter()
                .position(|n| *n == name)
                .map(|i| format!(" (the text format spells it '{}')", Op::TEXT_NAMES[i]))
                .unwrap_or_default();
            return Err(self.err_at(at, format!("unknown op '{name}'{hint}")));
        }
        let op = match Op::build(name, attrs) {
            Ok(Some(op)) => op,
            Ok(None) => return Err(self.err_at(at, format!("unknown op '{name}'"))),
            Err(BuildError(e)) => return Err(self.err_at(at, format!("op '{name}': {e}"))),
        };
        if let Some(extra) = attrs.remaining().first() {
            let pos = attr_at.get(*extra).copied().unwrap_or(at);
            return Err(self.err_at(pos, format!("unknown attribute '{extra}' for op '{name}'")));
        }
        Ok(op)
    }
}

fn define(
    p: &Parser<'_>,
    scope: &mut Scope,
    name: String,
    v: ValueRef,
    at: usize,
) -> Result<(), ParseError> {
    if name.is_empty() {
        return Ok(());
    }
    if let Some(&(_, first)) = scope.get(&name) {
        let f = p.err_at(first, String::new());
        return Err(p.err_at(
            at,
            format!(
                "duplicate value name {} (first defined at {}:{})",
                shown_value(&name),
                f.line,
                f.col
            ),
        ));
    }
    scope.insert(name, (v, at));
    Ok(())
}

fn lookup(p: &Parser<'_>, scope: &Scope, at: usize, name: &str) -> Result<ValueRef, ParseError> {
    if name.is_empty() {
        return Err(p.err_at(at, "a value named \"\" cannot be referenced".into()));
    }
    scope
        .get(name)
        .map(|&(v, _)| v)
        .ok_or_else(|| p.err_at(at, format!("undefined value {}", shown_value(name))))
}
