//! Compiled models as shared libraries: `graphc optimize MODEL -o OUT.so`.
//!
//! The [`program`](super::program) is built into a `cranelift_object` module (position
//! independent), and the system C compiler links it with the runtime
//! (`runtime/graphc_rt.c`, compiled with the model's prefix and hidden visibility) and a small
//! generated C file holding the model's metadata and the exported API. The API is declared in
//! a header written next to the library (`OUT.h`); every exported symbol starts with the
//! model's name, so that several models link into one program. The library needs libc (and
//! libpthread/libm where they are separate) and nothing else.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use cranelift_codegen::settings::{self, Configurable};
use cranelift_module::default_libcall_names;
use cranelift_object::{ObjectBuilder, ObjectModule};
use graphc_passes::ir::{DType, Graph};

use super::kernel::Target;
use super::program::{compile, prepare, CompileError, CompileOptions, CompiledOutput, Program};

/// The runtime's C source, compiled into every library.
const RUNTIME_C: &str = include_str!("../../runtime/graphc_rt.c");

/// Error codes of the library's functions (also in the header).
pub const ERROR_CODES: &[(&str, i32, &str)] = &[
    ("OK", 0, "success"),
    (
        "ERR_NULL_ARGUMENT",
        1,
        "a required pointer argument is NULL",
    ),
    (
        "ERR_ALIGNMENT",
        2,
        "the workspace is not aligned to 64 bytes",
    ),
    (
        "ERR_OUT_OF_MEMORY",
        3,
        "the workspace could not be allocated",
    ),
    ("ERR_THREADS", 4, "the thread pool could not be started"),
    (
        "ERR_CPU",
        5,
        "this CPU lacks the instruction set the library was compiled for",
    ),
    ("ERR_ARGUMENT", 6, "an argument is out of range"),
    (
        "ERR_NEEDS_SHAPES",
        7,
        "the data decides the shape of some outputs: call run_with_shapes",
    ),
];

/// How a library is built.
#[derive(Clone, Debug)]
pub struct SoOptions {
    /// The symbol prefix (a C identifier).
    pub name: String,
    /// CPU features the code may use; the library checks them when it runs.
    pub target: Target,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct SoReport {
    /// The library.
    pub library: PathBuf,
    /// The C header.
    pub header: PathBuf,
    /// Workspace bytes a run needs.
    pub workspace_bytes: usize,
    /// Size of the library file.
    pub library_bytes: u64,
}

/// Why a library could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SoError {
    /// The model does not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The name is not a C identifier.
    #[error(
        "--name '{0}' is not a C identifier (letters, digits and '_', not starting with a digit)"
    )]
    BadName(String),
    /// The C compiler or linker failed, or a file could not be written.
    #[error("{0}")]
    Build(String),
}

/// Whether `s` is a C identifier.
pub fn is_c_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A C identifier made from a file stem (`light-resnet50` -> `light_resnet50`).
pub fn default_name(stem: &str) -> String {
    let mut s: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "model_");
    }
    s
}

/// Compiles `g` (verified, every shape static) into the shared library `out` and its header.
pub fn write_shared_library(g: &Graph, out: &Path, opts: &SoOptions) -> Result<SoReport, SoError> {
    if !is_c_identifier(&opts.name) {
        return Err(SoError::BadName(opts.name.clone()));
    }
    let name = &opts.name;
    let internal = |e: String| SoError::Compile(CompileError::Internal(e));
    let mut flags = settings::builder();
    flags
        .set("is_pic", "true")
        .map_err(|e| internal(e.to_string()))?;
    flags
        .set("opt_level", "speed")
        .map_err(|e| internal(e.to_string()))?;
    let isa = cranelift_native::builder()
        .map_err(|e| internal(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| internal(e.to_string()))?;
    let builder = ObjectBuilder::new(isa, format!("{name}.o"), default_libcall_names())
        .map_err(|e| internal(e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    let copts = CompileOptions {
        target: opts.target,
        prefix: format!("{name}_"),
        rt_prefix: format!("{name}_rt_"),
        allow_fallback: false,
        profile: false,
    };
    let g = &prepare(g);
    let program = compile(&mut module, g, &copts)?;
    let object = module
        .finish()
        .emit()
        .map_err(|e| internal(format!("writing the object file: {e}")))?;

    let dir = tempdir()?;
    let build = |what: &str, e: std::io::Error| SoError::Build(format!("{what}: {e}"));
    let obj_path = dir.path.join("model.o");
    std::fs::write(&obj_path, object).map_err(|e| build("writing the object file", e))?;
    let rt_path = dir.path.join("graphc_rt.c");
    std::fs::write(&rt_path, RUNTIME_C).map_err(|e| build("writing the runtime", e))?;
    let api_path = dir.path.join("api.c");
    std::fs::write(&api_path, api_source(g, &program, name, opts.target))
        .map_err(|e| build("writing the API source", e))?;

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&cc)
        .args([
            "-shared",
            "-fPIC",
            "-O2",
            "-std=gnu11",
            "-fvisibility=hidden",
        ])
        .arg(format!("-DGRAPHC_RT_PREFIX={name}_rt_"))
        .arg("-o")
        .arg(out)
        .arg(&obj_path)
        .arg(&rt_path)
        .arg(&api_path)
        .args([
            "-lpthread",
            "-lm",
            "-Wl,--no-undefined",
            "-Wl,-z,noexecstack",
        ])
        .output()
        .map_err(|e| {
            SoError::Build(format!(
                "cannot run the C compiler '{cc}' (set CC to choose another): {e}"
            ))
        })?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(SoError::Build(format!(
            "the C compiler '{cc}' failed linking {}: {}",
            out.display(),
            err.lines()
                .find(|l| l.contains("error"))
                .unwrap_or(err.trim())
        )));
    }
    let header = out.with_extension("h");
    std::fs::write(&header, header_source(g, &program, name))
        .map_err(|e| build(&format!("writing {}", header.display()), e))?;
    let library_bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(SoReport {
        library: out.to_path_buf(),
        header,
        workspace_bytes: program.workspace_bytes,
        library_bytes,
    })
}

/// A temporary folder removed on drop.
struct TempDir {
    path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn tempdir() -> Result<TempDir, SoError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "graphc-so-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&path)
        .map_err(|e| SoError::Build(format!("creating {}: {e}", path.display())))?;
    Ok(TempDir { path })
}

/// A C string literal.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

struct Io {
    name: String,
    dtype: DType,
    /// The shape, or its upper bound when the data decides a dim.
    dims: Vec<usize>,
    /// The dim the data decides, if any.
    varying: Option<usize>,
}

impl Io {
    fn bounded(&self) -> bool {
        self.varying.is_some()
    }

    /// `f32[1,3]`, with `<=` before the dim the data decides: `i64[2,<=6]`.
    fn describe(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .enumerate()
            .map(|(k, d)| {
                if self.varying == Some(k) {
                    format!("<={d}")
                } else {
                    d.to_string()
                }
            })
            .collect();
        format!("{}[{}]", self.dtype, dims.join(","))
    }
}

fn ios(g: &Graph, outputs: &[CompiledOutput]) -> (Vec<Io>, Vec<Io>) {
    let inputs = g
        .inputs
        .iter()
        .map(|&id| {
            let o = &g.node(id).outputs[0];
            Io {
                name: o.name.clone(),
                dtype: o.ty.dtype,
                dims: o.ty.shape.as_known().unwrap_or_default(),
                varying: None,
            }
        })
        .collect();
    let outputs = g
        .outputs
        .iter()
        .zip(outputs)
        .map(|(o, c)| Io {
            name: o.name.clone(),
            dtype: c.dtype,
            dims: c.dims.clone(),
            varying: c.varying,
        })
        .collect();
    (inputs, outputs)
}

fn api_source(g: &Graph, program: &Program, name: &str, target: Target) -> String {
    let (inputs, outputs) = ios(g, &program.outputs);
    let workspace = program.workspace_bytes;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* Generated by graphc: the API of model '{name}'. */\n\
         #include <stddef.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <pthread.h>\n\n\
         #define API __attribute__((visibility(\"default\")))\n\
         typedef struct graphc_pool graphc_pool;\n\
         graphc_pool *{name}_rt_pool_new(int nthreads);\n\
         void {name}_rt_pool_free(graphc_pool *p);\n\
         int {name}_rt_pool_threads(const graphc_pool *p);\n\
         int {name}_rt_available_threads(void);\n\
         int32_t {name}_entry(void *pool, void *host, const void *const *inputs, void *const *outputs, void *workspace);\n\n\
         typedef struct {{ const char *name; int32_t dtype; int32_t rank; const int64_t *shape; size_t bytes; int32_t bounded; }} {name}_tensor_info;\n"
    );
    for (kind, list) in [("input", &inputs), ("output", &outputs)] {
        for (i, io) in list.iter().enumerate() {
            let dims: Vec<String> = io.dims.iter().map(|d| d.to_string()).collect();
            let dims = if dims.is_empty() {
                "0".to_string()
            } else {
                dims.join(", ")
            };
            let _ = writeln!(s, "static const int64_t {kind}{i}_shape[] = {{{dims}}};");
        }
        let _ = writeln!(s, "static const {name}_tensor_info {kind}s_info[] = {{");
        for (i, io) in list.iter().enumerate() {
            let bytes = io.dims.iter().product::<usize>() * io.dtype.size();
            let _ = writeln!(
                s,
                "    {{{}, {}, {}, {kind}{i}_shape, {bytes}u, {}}},",
                c_string(&io.name),
                io.dtype as i32,
                io.dims.len(),
                io.bounded() as i32
            );
        }
        if list.is_empty() {
            let _ = writeln!(s, "    {{0, 0, 0, 0, 0, 0}},");
        }
        let _ = writeln!(s, "}};");
    }
    let ws = workspace.div_ceil(64) * 64;
    let cpu_check = if target.avx512 {
        "__builtin_cpu_supports(\"avx2\") && __builtin_cpu_supports(\"fma\") && __builtin_cpu_supports(\"avx512f\")"
    } else if target.avx2_fma {
        "__builtin_cpu_supports(\"avx2\") && __builtin_cpu_supports(\"fma\")"
    } else {
        "1"
    };
    let (ni, no) = (inputs.len(), outputs.len());
    let nb = outputs.iter().filter(|o| o.bounded()).count();
    // The entry function takes the outputs, then the dims array of each bounded output.
    let mut gather = String::new();
    for (j, o) in outputs.iter().enumerate() {
        if o.bounded() {
            let _ = writeln!(gather, "    outs[n++] = shapes[{j}];");
        }
    }
    let _ = write!(
        s,
        r#"
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static graphc_pool *pool;
static int threads_wanted;

API size_t {name}_num_inputs(void) {{ return {ni}; }}
API size_t {name}_num_outputs(void) {{ return {no}; }}
API const {name}_tensor_info *{name}_input_info(size_t i) {{ return i < {ni} ? &inputs_info[i] : NULL; }}
API const {name}_tensor_info *{name}_output_info(size_t i) {{ return i < {no} ? &outputs_info[i] : NULL; }}
API size_t {name}_workspace_size(void) {{ return {ws}u; }}

API int {name}_set_threads(int n) {{
    if (n < 0 || n > 256) return 6;
    pthread_mutex_lock(&lock);
    {name}_rt_pool_free(pool);
    pool = NULL;
    threads_wanted = n;
    pthread_mutex_unlock(&lock);
    return 0;
}}

API int {name}_get_threads(void) {{
    pthread_mutex_lock(&lock);
    int n = pool ? {name}_rt_pool_threads(pool)
                 : (threads_wanted > 0 ? threads_wanted : {name}_rt_available_threads());
    pthread_mutex_unlock(&lock);
    return n;
}}

API void {name}_release(void) {{
    pthread_mutex_lock(&lock);
    {name}_rt_pool_free(pool);
    pool = NULL;
    pthread_mutex_unlock(&lock);
}}

API const char *{name}_error_string(int code) {{
    switch (code) {{
"#
    );
    for (_, code, text) in ERROR_CODES {
        let _ = writeln!(s, "    case {code}: return {};", c_string(text));
    }
    let _ = write!(
        s,
        r#"    default: return "unknown error code";
    }}
}}

static int run(const void *const *inputs, void *const *outputs, int64_t *const *shapes,
               void *workspace) {{
    if ({ni} > 0 && !inputs) return 1;
    if ({no} > 0 && !outputs) return 1;
    for (size_t i = 0; i < {ni}; i++) if (!inputs[i]) return 1;
    for (size_t i = 0; i < {no}; i++) if (!outputs[i]) return 1;
    if ({nb} > 0 && !shapes) return 7;
    for (size_t j = 0; j < {no}; j++)
        if (outputs_info[j].bounded && !shapes[j]) return 1;
    if (((uintptr_t)workspace & 63u) != 0) return 2;
    void *outs[{no} + {nb} + 1];
    size_t n = 0;
    for (size_t j = 0; j < {no}; j++) outs[n++] = outputs[j];
{gather}
    if (!({cpu_check})) return 5;
    void *owned = NULL;
    if (!workspace) {{
        owned = aligned_alloc(64, {ws}u);
        if (!owned) return 3;
        workspace = owned;
    }}
    pthread_mutex_lock(&lock);
    if (!pool) pool = {name}_rt_pool_new(threads_wanted);
    int rc = pool ? (int){name}_entry(pool, NULL, inputs, outs, workspace) : 4;
    pthread_mutex_unlock(&lock);
    free(owned);
    if (rc == 0 && shapes)
        for (size_t j = 0; j < {no}; j++)
            if (shapes[j] && !outputs_info[j].bounded)
                for (int32_t d = 0; d < outputs_info[j].rank; d++)
                    shapes[j][d] = outputs_info[j].shape[d];
    return rc;
}}

API int {name}_run(const void *const *inputs, void *const *outputs, void *workspace) {{
    return run(inputs, outputs, NULL, workspace);
}}

API int {name}_run_with_shapes(const void *const *inputs, void *const *outputs,
                               int64_t *const *shapes, void *workspace) {{
    if (!shapes) return 1;
    return run(inputs, outputs, shapes, workspace);
}}
"#
    );
    s
}

fn header_source(g: &Graph, program: &Program, name: &str) -> String {
    let (inputs, outputs) = ios(g, &program.outputs);
    let upper = name.to_ascii_uppercase();
    let guard = format!("GRAPHC_{}_H", name.to_ascii_uppercase());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/* Generated by graphc: the C API of the compiled model '{name}'.\n \
         *\n \
         * Tensors are dense, row-major, little-endian buffers of the listed element type\n \
         * (ONNX TensorProto.DataType codes: 1 float, 7 int64, 9 bool, ...) and shape. A string\n \
         * input (code 8) is an array of `const char *`, one NUL-terminated string per element.\n \
         */"
    );
    let _ = writeln!(s, "#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {{\n#endif\n");
    let _ = writeln!(s, "/* Inputs:");
    for (i, io) in inputs.iter().enumerate() {
        let _ = writeln!(
            s,
            " *   {i}: {} {}",
            io.name.replace("*/", "* /"),
            io.describe()
        );
    }
    let _ = writeln!(s, " * Outputs:");
    for (i, io) in outputs.iter().enumerate() {
        let _ = writeln!(
            s,
            " *   {i}: {} {}",
            io.name.replace("*/", "* /"),
            io.describe()
        );
    }
    if outputs.iter().any(|o| o.bounded()) {
        let _ = writeln!(
            s,
            " * (<=N: the data decides that dim, at most N; call {name}_run_with_shapes.)"
        );
    }
    let _ = writeln!(s, " */\n");
    for (c, code, text) in ERROR_CODES {
        let _ = writeln!(
            s,
            "#define {}_{c} {code} /* {text} */",
            name.to_ascii_uppercase()
        );
    }
    let _ = write!(
        s,
        r#"
/* One input or output. */
typedef struct {{
    const char *name;      /* the ONNX value name */
    int32_t dtype;         /* ONNX TensorProto.DataType */
    int32_t rank;
    const int64_t *shape;  /* rank entries; an upper bound when bounded */
    size_t bytes;          /* buffer size in bytes */
    int32_t bounded;       /* 1: the data decides the shape (an output; see run_with_shapes) */
}} {name}_tensor_info;

size_t {name}_num_inputs(void);
size_t {name}_num_outputs(void);
/* NULL when i is out of range. */
const {name}_tensor_info *{name}_input_info(size_t i);
const {name}_tensor_info *{name}_output_info(size_t i);

/* Bytes of the workspace {name}_run needs (a multiple of 64). */
size_t {name}_workspace_size(void);

/* Runs the model. inputs[i] and outputs[j] point at buffers of input_info(i)->bytes and
 * output_info(j)->bytes bytes; outputs must not overlap inputs or each other. workspace is
 * NULL (allocated and freed by the call) or {name}_workspace_size() bytes aligned to 64 that
 * no other call uses at the same time. Calls are serialized per model. Returns 0 or an error
 * code (see {name}_error_string); arguments are checked before anything runs. */
int {name}_run(const void *const *inputs, void *const *outputs, void *workspace);

/* {name}_run that also reports every output's shape: shapes[j] is NULL or points at
 * output_info(j)->rank int64_t that receive output j's dims. For an output whose shape the data
 * decides (output_info(j)->bounded, e.g. NonZero), shapes[j] is required, the buffer has room
 * for the bound its info declares, and the output is written densely (row-major for the
 * reported dims) at its start. {name}_run refuses such models ({upper}_ERR_NEEDS_SHAPES). */
int {name}_run_with_shapes(const void *const *inputs, void *const *outputs,
                           int64_t *const *shapes, void *workspace);

/* Threads the next runs use, the caller included (0: one per CPU, the default); 0 or an
 * error code. */
int {name}_set_threads(int n);
int {name}_get_threads(void);
/* Stops the worker threads (they start again with the next run). */
void {name}_release(void);
const char *{name}_error_string(int code);

#ifdef __cplusplus
}}
#endif

#endif
"#
    );
    s
}
