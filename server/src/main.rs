// mimalloc returns freed memory to the OS far more readily than glibc's allocator, whose
// per-thread arenas kept evicted documents' memory resident (see the memory benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fieldbook_server::cli::main()
}
