//! The `renkei` binary run as a process in a working directory, for the tests that drive a
//! town through its commands alone (`onboard_binary`, `town_from_nothing`).

use std::path::Path;
use std::process::{Child, Command, Output};

/// `renkei ARGS` run in `dir`, to completion.
pub fn renkei(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Its standard output, after asserting that it succeeded (else both outputs).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A child process stopped when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
