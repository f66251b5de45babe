use clap::Parser;

fn main() -> std::process::ExitCode {
    schoolsignal::cli::main(schoolsignal::cli::Cli::parse())
}
