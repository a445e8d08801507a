// The config engine allocates a string per token and directive; with glibc's allocator malloc
// and free were 40% of linting a 5,000-server config (bench/config.sh).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    nginx_medic::cli::main()
}
