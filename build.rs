//! Compiles the runtime (the thread pool compiled models call) into the graphc binary, for
//! the JIT; `graphc optimize -o out.so` compiles the same source into each library.

fn main() {
    println!("cargo:rerun-if-changed=runtime/graphc_rt.c");
    cc::Build::new()
        .file("runtime/graphc_rt.c")
        .flag_if_supported("-std=c11")
        .opt_level(2)
        .warnings(true)
        .compile("graphc_rt");
}
