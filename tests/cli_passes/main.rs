//! End-to-end tests of pass pipelines in `tessera inspect`: banners of `--print-before`,
//! `--print-after` and `--print-changed` (`print`), the files of `--dump-dir` and their
//! `passes.json`, `--stop-after`, `--timing`, pipeline errors, a failing pass whose input IR
//! is kept (`dump`), and the mixed-precision pass selected by the precision flags
//! (`precision`).

#[path = "../common/mod.rs"]
mod common;
mod dump;
mod helpers;
mod precision;
mod print;
