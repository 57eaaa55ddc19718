//! `graphc optimize -o OUT.so`: the library's dependencies, its C header and API (the C and
//! Python examples of the repository, built and run here), two models in one program, and
//! results equal to the JIT's.

use std::path::{Path, PathBuf};
use std::process::Command;

use graphc::passes::eval::compare;
use graphc::passes::ir::Tensor;

use crate::support::repo;

/// A scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("graphc-so-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `graphc optimize MODEL -o DIR/NAME.so [extra]`.
fn build_library(model: &Path, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let so = dir.join(format!("{name}.so"));
    run(Command::new(env!("CARGO_BIN_EXE_graphc"))
        .arg("optimize")
        .arg(model)
        .arg("-o")
        .arg(&so)
        .args(extra));
    so
}

/// Builds `examples/c/run_model.c` against the library `so` (prefix `name`, header next to
/// it in `dir`) with warnings as errors; returns the program.
fn build_c_example(dir: &Path, name: &str, so: &Path) -> PathBuf {
    let exe = dir.join("run_model");
    run(
        Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O2", "-std=c11", "-Wall", "-Werror"])
            .arg("-I")
            .arg(dir)
            .arg(format!("-DMODEL={name}"))
            .arg(format!("-DMODEL_HEADER=\"{name}.h\""))
            .arg(repo().join("examples/c/run_model.c"))
            .arg(so)
            .arg(format!("-Wl,-rpath,{}", dir.display()))
            .arg("-o")
            .arg(&exe),
    );
    exe
}

/// Writes the graph in IR text `text` as an ONNX model (opset 18) at `path`.
fn write_text_model(path: &Path, text: &str) {
    let g = graphc::passes::ir::text::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let m = graphc::onnx::export_model(&g, 18).unwrap();
    graphc::onnx::write_model(path, &m).unwrap();
}

/// `graphc optimize MODEL -o OUT.so`, which must be refused: exit code 1 and one line on
/// stderr, returned.
fn refused(model: &Path, so: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_graphc"))
        .arg("optimize")
        .arg(model)
        .arg("-o")
        .arg(so)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

fn tiny_cnn() -> PathBuf {
    repo().join("examples/models/tiny_cnn.onnx")
}

/// `arange(n).reshape(shape) / n` in f32, what the C example feeds.
fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n).map(|i| (i as f64 / n as f64) as f32).collect(),
    )
    .unwrap()
}

/// The model's output on `input` through the JIT (`graphc run`).
fn jit_output(model: &Path, input: &Tensor, dir: &Path) -> Tensor {
    let inp = dir.join("jit_input.npy");
    graphc::npy::write_npy(&inp, input).unwrap();
    let out = dir.join("jit");
    run(Command::new(env!("CARGO_BIN_EXE_graphc"))
        .arg("run")
        .arg(model)
        .arg("--input")
        .arg(&inp)
        .arg("--output-dir")
        .arg(&out));
    graphc::npy::read_npy(&out.join("output_0.npy")).unwrap()
}

#[test]
fn library_depends_on_libc_only() {
    let dir = scratch("ldd");
    let so = build_library(&tiny_cnn(), &dir, "tiny_cnn", &[]);
    let ldd = run(Command::new("ldd").arg(&so));
    for line in ldd.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let lib = line.split_whitespace().next().unwrap();
        let allowed = [
            "linux-vdso.so",
            "libc.so",
            "libm.so",
            "libpthread.so",
            "ld-linux",
        ]
        .iter()
        .any(|a| lib.contains(a));
        assert!(allowed, "{} depends on {lib}:\n{ldd}", so.display());
    }
    // Only the prefixed API is exported.
    let nm = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    for line in nm.lines() {
        let sym = line.split_whitespace().last().unwrap_or("");
        assert!(sym.starts_with("tiny_cnn_"), "unprefixed export {sym}");
    }
    assert!(dir.join("tiny_cnn.h").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_example_matches_the_jit() {
    let dir = scratch("c");
    let so = build_library(
        &tiny_cnn(),
        &dir,
        "tiny_cnn",
        &["--input-shape", "image=1,3,32,32"],
    );
    let exe = build_c_example(&dir, "tiny_cnn", &so);
    let out = run(Command::new(&exe).arg(&dir));
    assert!(out.contains("run with NULL inputs: 1 "), "{out}");
    assert!(out.contains("run with a misaligned workspace: 2 "), "{out}");
    assert!(out.contains("set_threads(-1): 6 "), "{out}");
    let bytes = std::fs::read(dir.join("output_0.bin")).unwrap();
    let got: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want = jit_output(&tiny_cnn(), &ramp(&[1, 3, 32, 32]), &dir);
    let got = Tensor::from_vec(want.shape(), got).unwrap();
    // The same kernels run in both: identical results.
    compare(&got, &want, 0.0, 0.0).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Python that runs the example (numpy in the cached virtualenv made by
/// scripts/fetch-python-env.sh, or `GRAPHC_PYTHON`).
fn python() -> PathBuf {
    let p = std::env::var_os("GRAPHC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/pyenv/bin/python"));
    assert!(
        p.exists(),
        "no Python with numpy at {}: run scripts/fetch-python-env.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

#[test]
fn python_example_matches_the_jit() {
    let dir = scratch("py");
    let so = build_library(&tiny_cnn(), &dir, "tiny_cnn", &[]);
    let input = Tensor::from_vec(
        &[1, 3, 32, 32],
        (0..3072)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect(),
    )
    .unwrap();
    let inp = dir.join("x.npy");
    graphc::npy::write_npy(&inp, &input).unwrap();
    let out = dir.join("py");
    let stdout = run(Command::new(python())
        .arg(repo().join("examples/python/run_so.py"))
        .arg(&so)
        .arg(&inp)
        .args(["--threads", "2", "--output-dir"])
        .arg(&out));
    assert!(stdout.contains("output 0 'probs'"), "{stdout}");
    let got = graphc::npy::read_npy(&out.join("output_0.npy")).unwrap();
    let want = jit_output(&tiny_cnn(), &input, &dir);
    compare(&got, &want, 0.0, 0.0).unwrap();
    // A wrong input shape is refused with one line, not a crash.
    let bad = dir.join("bad.npy");
    graphc::npy::write_npy(&bad, &ramp(&[1, 3, 8, 8])).unwrap();
    let o = Command::new(python())
        .arg(repo().join("examples/python/run_so.py"))
        .arg(&so)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be float32[1, 3, 32, 32]"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_models_link_into_one_program() {
    let dir = scratch("two");
    build_library(
        &tiny_cnn(),
        &dir,
        "small",
        &["--input-shape", "image=1,3,32,32"],
    );
    build_library(
        &tiny_cnn(),
        &dir,
        "big",
        &["--input-shape", "image=2,3,32,32"],
    );
    let src = dir.join("two.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stdlib.h>
#include "small.h"
#include "big.h"
int main(void) {
    const small_tensor_info *a = small_input_info(0);
    const big_tensor_info *b = big_input_info(0);
    if (!a || !b || small_input_info(1) != NULL) return 2;
    float *xa = calloc(1, a->bytes), *xb = calloc(1, b->bytes);
    float *ya = calloc(1, small_output_info(0)->bytes), *yb = calloc(1, big_output_info(0)->bytes);
    const void *ia[] = {xa}; void *oa[] = {ya};
    const void *ib[] = {xb}; void *ob[] = {yb};
    if (small_set_threads(1) || big_set_threads(2)) return 3;
    int ra = small_run(ia, oa, NULL), rb = big_run(ib, ob, NULL);
    printf("%d %d %lld %lld %d %d\n", ra, rb, (long long)a->shape[0], (long long)b->shape[0],
           small_get_threads(), big_get_threads());
    small_release();
    big_release();
    return ra || rb;
}
"#,
    )
    .unwrap();
    let exe = dir.join("two");
    run(
        Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O2", "-std=c11", "-Wall", "-Werror"])
            .arg("-I")
            .arg(&dir)
            .arg(&src)
            .arg(dir.join("small.so"))
            .arg(dir.join("big.so"))
            .arg(format!("-Wl,-rpath,{}", dir.display()))
            .arg("-o")
            .arg(&exe),
    );
    let out = run(&mut Command::new(&exe));
    assert_eq!(out.trim(), "0 0 1 2 1 2");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_without_kernels_is_refused_naming_the_ops() {
    let dir = scratch("refuse");
    let model = dir.join("mish.onnx");
    // Mish on f16 has no kernel (the f32 engine does not take f16 and the typed kernels have
    // no Mish): the library cannot be built, and the error names the op.
    write_text_model(
        &model,
        r#"graph "g" (%x: f16[4,6]) {
  %y: f16[4,6] = mish (%x)
  return %y
}
"#,
    );
    let err = refused(&model, &dir.join("mish.so"));
    assert!(
        err.contains("no kernel for") && err.contains("Mish"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An input whose value decides a shape (Slice's `starts`) must be fixed for a library: the
/// error names it and `--bind`; bound, it leaves the library's inputs and the library
/// computes what the JIT computes with the same value fed at run time.
#[test]
fn a_shape_input_is_named_then_bound() {
    let dir = scratch("bind");
    let model = dir.join("slice.onnx");
    // `y` typed `out`: `[..]` leaves it to inference (unknown without `starts`).
    let slice = |out: &str| {
        format!(
            r#"graph "g" (%x: f32[5,7], %starts: i64[2]) {{
  %ends: i64[2] = constant {{value: i64[2] [5, 6]}}
  %y: f32{out} = slice (%x, %starts, %ends)
  return %y
}}
"#
        )
    };
    write_text_model(&model, &slice("[..]"));
    let err = refused(&model, &dir.join("unbound.so"));
    assert!(
        err.contains("data-dependent shape") && err.contains("'starts'") && err.contains("--bind"),
        "{err}"
    );
    // With the output's shape declared, the shape is static but the Slice kernel needs
    // constant starts: the error names the input too.
    let declared = dir.join("declared.onnx");
    write_text_model(&declared, &slice("[4,4]"));
    let err = refused(&declared, &dir.join("declared.so"));
    assert!(
        err.contains("no kernel for") && err.contains("'starts'") && err.contains("--bind"),
        "{err}"
    );

    let starts = dir.join("starts.npy");
    graphc::npy::write_npy(&starts, &Tensor::from_vec(&[2], vec![1i64, 2]).unwrap()).unwrap();
    let so = build_library(
        &model,
        &dir,
        "slice",
        &["--bind", &format!("starts={}", starts.display())],
    );
    assert!(so.exists());
    let header = std::fs::read_to_string(dir.join("slice.h")).unwrap();
    assert!(
        header.contains(" *   0: x ") && !header.contains("starts"),
        "{header}"
    );

    // `run --engine so --bind` against the JIT fed `starts` at run time.
    let x = dir.join("x.npy");
    graphc::npy::write_npy(&x, &ramp(&[5, 7])).unwrap();
    let mut outs = Vec::new();
    for (engine, flag) in [("so", "--bind"), ("jit", "--input")] {
        let o = dir.join(engine);
        run(Command::new(env!("CARGO_BIN_EXE_graphc"))
            .args(["run", "--engine", engine])
            .arg(&model)
            .arg("--input")
            .arg(format!("x={}", x.display()))
            .arg(flag)
            .arg(format!("starts={}", starts.display()))
            .arg("--output-dir")
            .arg(&o));
        outs.push(graphc::npy::read_npy(&o.join("output_0.npy")).unwrap());
    }
    assert_eq!(outs[0].shape(), &[4, 4]);
    compare(&outs[0], &outs[1], 0.0, 0.0).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An If whose condition the optimizer folds (a test on a shape, as exported function bodies
/// have) and whose branches give different shapes to a later Reshape: the branch taken is
/// inlined and the passes run again, so the library has static shapes, and its result is
/// the reference evaluator's.
#[test]
fn an_if_on_a_shape_is_inlined() {
    let dir = scratch("if");
    let model = dir.join("if.onnx");
    write_text_model(
        &model,
        r#"graph "g" (%x: f32[6]) {
  %n: i64[] = size (%x)
  %six: i64[] = constant {value: i64[] [6]}
  %c: bool[] = equal (%n, %six)
  %s: i64[..] = if {
    then_branch: graph "then" (%a: f32[6]) {
      %sh: i64[1] = shape (%a)
      %two: i64[1] = constant {value: i64[1] [2]}
      %d: i64[1] = div (%sh, %two)
      %t: i64[2] = concat {axis: 0} (%two, %d)
      return %t
    },
    else_branch: graph "else" (%b: f32[6]) {
      %e: i64[1] = shape (%b)
      return %e
    }
  } (%c, %x)
  %r: f32[..] = reshape (%x, %s)
  %y: f32[..] = tanh (%r)
  return %y
}
"#,
    );
    let x = dir.join("x.npy");
    graphc::npy::write_npy(&x, &ramp(&[6])).unwrap();
    let mut outs = Vec::new();
    for engine in ["so", "reference"] {
        let o = dir.join(engine);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_graphc"));
        cmd.args(["run", "--engine", engine]).arg(&model);
        if engine == "reference" {
            cmd.arg("--no-optimize");
        }
        run(cmd.arg("--input").arg(&x).arg("--output-dir").arg(&o));
        outs.push(graphc::npy::read_npy(&o.join("output_0.npy")).unwrap());
    }
    assert_eq!(outs[0].shape(), &[2, 3]);
    compare(&outs[0], &outs[1], 1e-6, 1e-7).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Outputs whose shape the data decides (NonZero, Compress) next to a static one: the header
/// declares their bounds, `NAME_run` refuses the model with its own code, and the C and
/// Python examples (through `NAME_run_with_shapes`) get the shapes and values the JIT gets.
#[test]
fn outputs_shaped_by_the_data_report_their_shape() {
    let dir = scratch("bounded");
    let model = dir.join("bounded.onnx");
    write_text_model(
        &model,
        r#"graph "g" (%x: f32[2,5]) {
  %half: f32[] = constant {value: f32[] [0.5]}
  %nz: i64[2,?] = non_zero (%x)
  %big: bool[2,5] = greater (%x, %half)
  %sel: f32[?] = compress (%x, %big)
  %r: f32[2,5] = relu (%x)
  return %nz, %sel, %r
}
"#,
    );
    let so = build_library(&model, &dir, "bounded", &[]);
    let header = std::fs::read_to_string(dir.join("bounded.h")).unwrap();
    assert!(header.contains("0: nz i64[2,<=10]"), "{header}");
    assert!(header.contains("1: sel f32[<=10]"), "{header}");
    assert!(header.contains("2: r f32[2,5]"), "{header}");

    // The JIT's outputs on the C example's input, arange(10) / 10: one zero, four above 0.5.
    let input = ramp(&[2, 5]);
    let inp = dir.join("x.npy");
    graphc::npy::write_npy(&inp, &input).unwrap();
    let jit = dir.join("jit");
    run(Command::new(env!("CARGO_BIN_EXE_graphc"))
        .arg("run")
        .arg(&model)
        .arg("--input")
        .arg(&inp)
        .arg("--output-dir")
        .arg(&jit));
    let want: Vec<Tensor> = (0..3)
        .map(|i| graphc::npy::read_npy(&jit.join(format!("output_{i}.npy"))).unwrap())
        .collect();
    assert_eq!(want[0].shape(), &[2, 9]);
    assert_eq!(want[1].shape(), &[4]);

    // The C example.
    let exe = build_c_example(&dir, "bounded", &so);
    let out = run(Command::new(&exe).arg(&dir));
    assert!(
        out.contains("output 0 'nz': dtype 7, shape [2, 9] (decided by the data)"),
        "{out}"
    );
    assert!(
        out.contains("output 1 'sel': dtype 1, shape [4] (decided by the data)"),
        "{out}"
    );
    assert!(
        out.contains("output 2 'r': dtype 1, shape [2, 5] ->"),
        "{out}"
    );
    let bytes = |i: usize| std::fs::read(dir.join(format!("output_{i}.bin"))).unwrap();
    let nz: Vec<i64> = bytes(0)
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    compare(&Tensor::from_vec(&[2, 9], nz).unwrap(), &want[0], 0.0, 0.0).unwrap();
    let sel: Vec<f32> = bytes(1)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    compare(&Tensor::from_vec(&[4], sel).unwrap(), &want[1], 0.0, 0.0).unwrap();

    // The Python example on an input with more zeros.
    let x2 = Tensor::from_vec(&[2, 5], vec![0f32, 0.9, 0., 0., 0.7, -1., 0., 2., 0., 0.]).unwrap();
    let inp2 = dir.join("x2.npy");
    graphc::npy::write_npy(&inp2, &x2).unwrap();
    let py = dir.join("py");
    run(Command::new(python())
        .arg(repo().join("examples/python/run_so.py"))
        .arg(&so)
        .arg(&inp2)
        .arg("--output-dir")
        .arg(&py));
    let nz = graphc::npy::read_npy(&py.join("output_0.npy")).unwrap();
    let want_nz = Tensor::from_vec(&[2, 4], vec![0i64, 0, 1, 1, 1, 4, 0, 2]).unwrap();
    compare(&nz, &want_nz, 0.0, 0.0).unwrap();
    let sel = graphc::npy::read_npy(&py.join("output_1.npy")).unwrap();
    compare(
        &sel,
        &Tensor::from_vec(&[3], vec![0.9f32, 0.7, 2.]).unwrap(),
        0.0,
        0.0,
    )
    .unwrap();

    // NAME_run cannot report shapes: it refuses the model with ERR_NEEDS_SHAPES.
    // SAFETY: the library was just built with this API; the buffers have its declared sizes.
    unsafe {
        let lib = libloading::Library::new(&so).unwrap();
        type RunFn = unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8) -> i32;
        let run_plain: libloading::Symbol<RunFn> = lib.get(b"bounded_run\0").unwrap();
        let x = [0f32; 10];
        let (mut a, mut b, mut c) = ([0i64; 20], [0f32; 10], [0f32; 10]);
        let ins = [x.as_ptr().cast::<u8>()];
        let outs = [
            a.as_mut_ptr().cast::<u8>(),
            b.as_mut_ptr().cast(),
            c.as_mut_ptr().cast(),
        ];
        assert_eq!(
            run_plain(ins.as_ptr(), outs.as_ptr(), std::ptr::null_mut()),
            7
        );
        assert!(
            header.contains("#define BOUNDED_ERR_NEEDS_SHAPES 7"),
            "{header}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A model with string inputs: the library takes them as arrays of C string pointers; the
/// Python example passes numpy str arrays so (non-ASCII and empty strings included).
#[test]
fn string_inputs_are_arrays_of_c_strings() {
    let dir = scratch("strings");
    let model = dir.join("strings.onnx");
    write_text_model(
        &model,
        r#"graph "g" (%x: string[2,3], %y: string[3]) {
  %z: bool[2,3] = equal (%x, %y)
  return %z
}
"#,
    );
    let so = build_library(&model, &dir, "strings", &[]);
    let header = std::fs::read_to_string(dir.join("strings.h")).unwrap();
    assert!(header.contains("0: x string[2,3]"), "{header}");
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    run(Command::new(python())
        .arg("-c")
        .arg(format!(
            "import numpy as np; np.save({:?}, np.array([['a', 'héllo', ''], ['ab', 'b', 'c']])); np.save({:?}, np.array(['a', 'b', '']))",
            x.display().to_string(),
            y.display().to_string()
        )));
    let out = dir.join("py");
    run(Command::new(python())
        .arg(repo().join("examples/python/run_so.py"))
        .arg(&so)
        .arg(&x)
        .arg(&y)
        .arg("--output-dir")
        .arg(&out));
    let got = graphc::npy::read_npy(&out.join("output_0.npy")).unwrap();
    let want = Tensor::from_vec(&[2, 3], vec![true, false, true, false, true, false]).unwrap();
    compare(&got, &want, 0.0, 0.0).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
