//! `rawrxd SCRIPT.lua ARGS…` end to end: exit codes and error reporting of the real binary.

use std::process::Command;

fn rawrxd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rawrxd"))
}

#[test]
fn script_error_is_one_clean_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.lua");
    std::fs::write(
        &script,
        "local rx = require 'rawrxd'\n\nrx.time.sleep('soon')\n",
    )
    .unwrap();
    let out = rawrxd().arg(&script).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("rawrxd: {}:3: bad argument", script.display());
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains(".rs:"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn script_return_value_is_the_exit_code_and_args_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ok.lua");
    std::fs::write(
        &script,
        "local rx = require 'rawrxd'\nreturn rx.args.code + #rx.args\n",
    )
    .unwrap();
    let out = rawrxd()
        .arg(&script)
        .args(["a", "b", "--code", "3"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_script_is_a_usage_error() {
    let out = rawrxd().arg("no/such/script.lua").output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/script.lua"));
}
