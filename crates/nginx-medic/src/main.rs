fn main() -> std::process::ExitCode {
    nginx_medic::cli::main()
}
