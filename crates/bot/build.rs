//! Lays the release binary's code out in the order of `link-order.txt`: the functions that
//! run in start-up, at idle and on the message path, hottest first (made by
//! `crates/bench/link-order.sh`). The kernel maps a binary's code 64 KB at a time around
//! each page a process touches, so the code that runs is resident with its neighbours:
//! spread over the whole `.text`, it takes most of it; packed at its start, a fraction
//! (docs/performance.md, Memory).
//!
//! Only for release builds on x86_64 Linux, whose default linker (LLD, since Rust 1.90)
//! reads the file; a function the file names that is not in the binary (the code changed
//! since the file was made) is skipped, and one the file does not name keeps its place
//! after those it does.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=link-order.txt");
    println!("cargo::rerun-if-env-changed=WEBEX_CHATBOT_LINK_ORDER");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    // `WEBEX_CHATBOT_LINK_ORDER=off` for a build with another linker (GNU ld does not know
    // the option).
    let wanted = env::var("WEBEX_CHATBOT_LINK_ORDER").as_deref() != Ok("off");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = Path::new(&dir).join("link-order.txt");
    if release && lld_target && wanted && order.is_file() {
        println!(
            "cargo::rustc-link-arg-bin=webex-chatbot=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo::rustc-link-arg-bin=webex-chatbot=-Wl,--no-warn-symbol-ordering");
    }
}
