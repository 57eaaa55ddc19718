//! Unit tests of the nn family, plus a runner over dumped ONNX node tests
//! (`NN_CASES=/dir`; skipped when unset).

use super::*;
use crate::ir::{Attr, Attrs};

fn run_case(text: &str) -> Result<(), String> {
    let mut op_type = "";
    let mut opset = 0i64;
    let mut attrs = Attrs::new();
    let mut inputs: Vec<Option<Tensor>> = Vec::new();
    let mut outputs: Vec<Tensor> = Vec::new();
    let parse_tensor = |rest: &str| -> Tensor {
        let (head, vals) = rest.split_once(" ;").unwrap();
        let mut it = head.split_whitespace();
        let dt = DType::from_name(it.next().unwrap()).unwrap();
        let shape: Vec<usize> = it.map(|s| s.parse().unwrap()).collect();
        let v: Vec<f64> = vals
            .split_whitespace()
            .map(|s| match s {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                s => s.parse().unwrap(),
            })
            .collect();
        if dt == DType::I64 || dt == DType::U64 {
            let v: Vec<i64> = vals.split_whitespace().map(|s| s.parse().unwrap()).collect();
            return Tensor::from_vec(&shape, v).unwrap().cast(dt);
        }
        Tensor::from_vec(&shape, v).unwrap().cast(dt)
    };
    for line in text.lines() {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "op" => op_type = rest,
            "opset" => opset = rest.parse().unwrap(),
            "attr" => {
                let mut p = rest.splitn(3, ' ');
                let (name, ty, v) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap_or(""));
                let a = match ty {
                    "int" => Attr::Int(v.parse().unwrap()),
                    "float" => Attr::Float(v.parse().unwrap()),
                    "str" => Attr::Str(v.into()),
                    "ints" => Attr::Ints(v.split_whitespace().map(|s| s.parse().unwrap()).collect()),
                    _ => Attr::Floats(v.split_whitespace().map(|s| s.parse().unwrap()).collect()),
                };
                attrs.insert(name, a);
            }
            "none" => inputs.push(None),
            "input" => inputs.push(Some(parse_tensor(rest))),
            "output" => outputs.push(parse_tensor(rest)),
            _ => {}
        }
    }
    for (from, to) in [("transA", "trans_a"), ("transB", "trans_b")] {
        if let Some(a) = attrs.take(from) {
            attrs.insert(to, a);
        }
    }
    if op_type == "Resize" && opset < 11 {
        inputs.insert(1, None);
    }
    let op = Op::build(op_type, &mut attrs).map_err(|e| e.0)?.ok_or("unknown op")?;
    if !attrs.remaining().is_empty() {
        return Err(format!("SKIP leftover attrs {:?}", attrs.remaining()));
    }
    let args: Vec<Option<&Tensor>> = inputs.iter().map(|t| t.as_ref()).collect();
    let got = eval(&op, &args, outputs.len())?;
    for (i, (g, e)) in got.iter().zip(&outputs).enumerate() {
        if g.dtype() != e.dtype() || g.shape() != e.shape() {
            return Err(format!("output {i}: got {}{:?}, expected {}{:?}", g.dtype(), g.shape(), e.dtype(), e.shape()));
        }
        let (gv, ev) = (f64_vec(g), f64_vec(e));
        for (k, (a, b)) in gv.iter().zip(&ev).enumerate() {
            let ok = if e.dtype().is_float() {
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-7 + 1e-3 * b.abs()
            } else {
                a == b
            };
            if !ok {
                return Err(format!("output {i}[{k}]: got {a}, expected {b}"));
            }
        }
    }
    Ok(())
}

#[test]
fn onnx_node_cases() {
    let Ok(dir) = std::env::var("NN_CASES") else { return };
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    let (mut pass, mut fail) = (0, 0);
    for p in entries {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if std::env::var("NN_FILTER").is_ok_and(|f| !name.contains(&f)) {
            continue;
        }
        eprintln!("RUN {name}");
        match std::panic::catch_unwind(|| run_case(&text)) {
            Ok(Ok(())) => pass += 1,
            Ok(Err(e)) => {
                fail += 1;
                println!("FAIL {name}: {e}");
            }
            Err(_) => {
                fail += 1;
                println!("PANIC {name}");
            }
        }
    }
    println!("pass {pass} fail {fail}");
}
