fn main() -> std::process::ExitCode {
    fieldbook_server::cli::main()
}
