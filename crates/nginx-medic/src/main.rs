// The config engine allocates a string per token and directive; with glibc's allocator malloc
// and free were 40% of linting a 5,000-server config (bench/config.sh).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off before the first allocation (`alloc::no_huge_pages`):
/// mimalloc sets up its first arena at the runtime's first allocation, before `main`, and with
/// huge pages that faulted in 4 MiB (6 MiB of `--version`'s 13 MiB).
#[allow(unsafe_code)]
#[used]
// SAFETY: the loader calls the functions of `.init_array` before `main`, with the process
// single-threaded. This one makes one `prctl` system call through `nix`, which allocates
// nothing and touches no Rust runtime state, so running before the runtime is set up is sound.
#[link_section = ".init_array"]
static NO_HUGE_PAGES_AT_START: extern "C" fn() = {
    extern "C" fn no_huge_pages() {
        nginx_medic::alloc::no_huge_pages();
    }
    no_huge_pages
};

fn main() -> std::process::ExitCode {
    nginx_medic::cli::main()
}
