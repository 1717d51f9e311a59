//! The `vigil` binary; everything lives in the library so that tests can build the parts.

fn main() -> std::process::ExitCode {
    vigil::cli::main()
}
