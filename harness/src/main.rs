use clap::Parser;

fn main() -> std::process::ExitCode {
    fleetstorm::run(fleetstorm::cli::Cli::parse()).into()
}
