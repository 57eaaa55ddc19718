//! The `graphc` command: parses arguments and dispatches; errors print as one line.

use clap::Parser;

fn main() {
    let cli = graphc::cli::Cli::parse();
    if let Err(e) = graphc::cli::main_with_args(cli) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
